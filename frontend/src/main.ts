import './auth/link'
import './hashLink'
import { createPinia } from 'pinia'
import { createApp } from 'vue'
import App from './App.vue'
import { useSession } from './auth/session'
import { router } from './router'
import './styles/base.css'

const app = createApp(App)
app.use(createPinia())
useSession()
app.use(router)
app.mount('#app')
