// Coalesces a burst of updates into at most one flush per animation frame: the latest value per key wins.
export class FrameBatcher<K, V> {
  private pending = new Map<K, V>()
  private scheduled = false

  constructor(
    private readonly flush: (batch: Map<K, V>) => void,
    private readonly schedule: (callback: () => void) => unknown = (cb) => requestAnimationFrame(cb),
  ) {}

  push(key: K, value: V): void {
    this.pending.set(key, value)
    if (this.scheduled) return
    this.scheduled = true
    this.schedule(() => {
      this.scheduled = false
      const batch = this.pending
      this.pending = new Map()
      if (batch.size) this.flush(batch)
    })
  }

  get size(): number {
    return this.pending.size
  }
}
