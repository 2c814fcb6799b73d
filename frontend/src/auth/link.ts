// Runs first (main.ts imports it before the router reads the address): a sign-in link (`/#key=b2x_…`
// from `b2c up`) leaves its key in sessionStorage for this tab and disappears from the address bar and
// history before anything else sees it. A link opened in a tab where the app already runs reloads it.
import { keyFromFragment, STORAGE_KEY } from './storage'

function takeKey(): boolean {
  const linked = keyFromFragment(window.location.hash)
  if (!linked) return false
  sessionStorage.setItem(STORAGE_KEY, linked)
  history.replaceState(history.state, '', window.location.pathname + window.location.search)
  return true
}

takeKey()
window.addEventListener('hashchange', () => {
  if (takeKey()) window.location.reload()
})
