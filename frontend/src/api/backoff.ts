/** Delay before reconnect attempt `retries` (0-based): exponential from 0.5 s, capped at 30 s, with jitter. */
export function backoffDelay(retries: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 500 * 2 ** Math.min(retries, 16))
  return Math.round(base / 2 + (random() * base) / 2)
}
