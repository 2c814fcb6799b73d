/** Run `fn` at most once per `ms`; a call during the pause runs once when it ends (never lost). */
export function throttle(fn: () => void, ms: number): { (): void; cancel: () => void } {
  let last = 0
  let timer: ReturnType<typeof setTimeout> | null = null
  const run = (): void => {
    timer = null
    last = Date.now()
    fn()
  }
  const call = (): void => {
    if (timer) return
    const wait = last + ms - Date.now()
    if (wait <= 0) run()
    else timer = setTimeout(run, wait)
  }
  call.cancel = () => {
    if (timer) clearTimeout(timer)
    timer = null
  }
  return call
}
