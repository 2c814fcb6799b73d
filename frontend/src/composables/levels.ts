// How close a resource figure is to its alert threshold, and how a latency rates: tone + icon + words.
import type { StatusLook } from '@/composables/status'
import type { SpeedRating } from '@/generated/graphql'

/** A figure at or above this share of its limit is "near the limit". */
export const NEAR_SHARE = 0.8

export interface Level {
  look: StatusLook
  words: string
}

/** `limit` 0 means the threshold is off; `critical` (memory) is the second, harder limit. */
export function resourceLevel(percent: number, limit: number, critical = 0): Level {
  if (critical > 0 && percent >= critical)
    return { look: { label: 'Critical', tone: 'unhealthy', icon: 'cross' }, words: `at or above the ${critical} % critical limit` }
  if (limit > 0 && percent >= limit)
    return { look: { label: 'Over limit', tone: 'unhealthy', icon: 'cross' }, words: `at or above the ${limit} % limit` }
  if (limit > 0 && percent >= limit * NEAR_SHARE)
    return { look: { label: 'Near limit', tone: 'degraded', icon: 'warn' }, words: `near the ${limit} % limit` }
  return {
    look: { label: 'OK', tone: 'healthy', icon: 'check' },
    words: limit > 0 ? `below the ${limit} % limit` : 'no limit set',
  }
}

export const SPEED: Record<SpeedRating, StatusLook> = {
  FAST: { label: 'Fast', tone: 'healthy', icon: 'check' },
  NORMAL: { label: 'Normal', tone: 'info', icon: 'check' },
  SLOW: { label: 'Slow', tone: 'degraded', icon: 'warn' },
}

const bytes = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 })
export function formatBytes(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—'
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let v = value
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u += 1
  }
  return `${bytes.format(v)} ${units[u]}`
}

export function formatMs(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—'
  return value < 10 ? `${value.toFixed(1)} ms` : `${Math.round(value).toLocaleString()} ms`
}
