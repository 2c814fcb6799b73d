// Runs before the router reads the address (main.ts imports it right after the sign-in link): links made for
// hash routing — the notification e-mails' `http://<gateway>/#/alerts/<id>` — open the same path here, which
// uses the history API: `/#/alerts/<id>` becomes `/alerts/<id>` in place (no extra history entry).
import { pathFromHash } from './hashPath'

function follow(): boolean {
  const path = pathFromHash(window.location.hash)
  if (!path) return false
  history.replaceState(history.state, '', path)
  return true
}

follow()
window.addEventListener('hashchange', () => {
  // A hash link opened in a tab where the app already runs: let the router take the new address.
  if (follow()) window.dispatchEvent(new PopStateEvent('popstate', { state: history.state }))
})
