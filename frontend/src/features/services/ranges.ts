// The history ranges the screens offer (kept in the URL as ?range=24h); the server picks the bucket:
// minutes up to 6 h, hours up to 7 days, days beyond.
import type { HistoryBucket } from './queries'

export interface Range {
  key: string
  label: string
  hours: number
}

export const LATENCY_RANGES: Range[] = [
  { key: '1h', label: '1 hour', hours: 1 },
  { key: '24h', label: '24 hours', hours: 24 },
  { key: '7d', label: '7 days', hours: 24 * 7 },
  { key: '30d', label: '30 days', hours: 24 * 30 },
]
export const RESOURCE_RANGES: Range[] = LATENCY_RANGES.slice(0, 3)

export function pickRange(ranges: Range[], key: unknown, fallback = '24h'): Range {
  return ranges.find((r) => r.key === key) ?? ranges.find((r) => r.key === fallback) ?? ranges[0]!
}

export function since(range: Range, now = Date.now()): string {
  return new Date(now - range.hours * 3600_000).toISOString()
}

const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' })
const dayTime = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
const day = new Intl.DateTimeFormat(undefined, { weekday: 'short', month: 'short', day: 'numeric' })

/** A bucket's start as a chart label: the time for minutes, day and time for hours, the day for days. */
export function bucketLabel(start: string | null | undefined, bucket: HistoryBucket | null | undefined, range: Range): string {
  if (!start) return '—'
  const at = new Date(start)
  if (bucket === 'DAY') return day.format(at)
  return range.hours <= 24 ? time.format(at) : dayTime.format(at)
}
