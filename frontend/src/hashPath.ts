/** The path of a hash-routing link's fragment (`#/alerts/<id>` → `/alerts/<id>`); null for any other fragment. */
export function pathFromHash(hash: string): string | null {
  const m = /^#(\/[^#]*)$/.exec(hash)
  return m ? m[1]! : null
}
