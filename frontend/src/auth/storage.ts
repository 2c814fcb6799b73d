export const STORAGE_KEY = 'b2x.apiKey'

/** The key carried by a sign-in link (`/#key=b2x_…`), or null. */
export function keyFromFragment(hash: string): string | null {
  const params = new URLSearchParams(hash.replace(/^#/, ''))
  const key = params.get('key')
  return key && /^b2x_[a-z0-9]{12}_[A-Za-z0-9_-]{32,64}$/.test(key) ? key : null
}
