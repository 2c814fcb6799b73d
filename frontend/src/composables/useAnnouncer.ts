// One polite and one assertive live region for the whole app (rendered by App.vue): status changes
// are read out by screen readers without moving focus.
import { ref } from 'vue'

export const politeMessage = ref('')
export const assertiveMessage = ref('')

function say(target: typeof politeMessage, text: string): void {
  // Clearing first makes a repeated message be announced again.
  target.value = ''
  requestAnimationFrame(() => {
    target.value = text
  })
}

export function useAnnouncer(): { announce: (text: string) => void; alert: (text: string) => void } {
  return { announce: (text) => say(politeMessage, text), alert: (text) => say(assertiveMessage, text) }
}
