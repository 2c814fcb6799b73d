// Keeps Tab and Shift+Tab inside a modal dialog. showModal() makes the page behind inert, but Tab past the
// last control still leaves for the browser's own UI; this wraps it round to the first one instead.
import type { Ref } from 'vue'

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex="-1"])'

export function focusables(root: HTMLElement): HTMLElement[] {
  return [...root.querySelectorAll<HTMLElement>(FOCUSABLE)].filter(
    (el) => el.closest('dialog') === root && el.getClientRects().length > 0,
  )
}

export function useFocusTrap(dialog: Ref<HTMLDialogElement | null>): (event: KeyboardEvent) => void {
  return (event: KeyboardEvent) => {
    const root = dialog.value
    if (event.key !== 'Tab' || !root || (event.target as HTMLElement).closest('dialog') !== root) return
    const items = focusables(root)
    const first = items[0]
    const last = items[items.length - 1]
    if (!first || !last) return
    const active = document.activeElement
    if (event.shiftKey && (active === first || active === root)) {
      event.preventDefault()
      last.focus()
    } else if (!event.shiftKey && active === last) {
      event.preventDefault()
      first.focus()
    }
  }
}
