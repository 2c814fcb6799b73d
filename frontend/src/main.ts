import { createPinia } from 'pinia'
import { createApp } from 'vue'
import App from './App.vue'
import { keyFromFragment, STORAGE_KEY, useSession } from './auth/session'
import { router } from './router'
import './styles/base.css'

const app = createApp(App)
app.use(createPinia())

// A sign-in link (`/#key=b2x_…` from `b2c up`): keep the key for this tab, then drop it from the URL
// and from history at once.
const linked = keyFromFragment(window.location.hash)
if (linked) {
  sessionStorage.setItem(STORAGE_KEY, linked)
  history.replaceState(history.state, '', window.location.pathname + window.location.search)
}
useSession()
app.use(router)
app.mount('#app')
