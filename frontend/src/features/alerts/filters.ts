// The alert history's filters in the URL (?state=RESOLVED&severity=CRITICAL&service=crm&since=…&after=…),
// the looks of severities and states, and the silence form's defaults taken from an alert's labels.
import type { StatusLook } from '@/composables/status'
import type { AlertFilter, AlertRowFragment, AlertSeverity, AlertStatus } from './queries'

export const SEVERITIES: AlertSeverity[] = ['CRITICAL', 'ERROR', 'WARNING', 'INFO']
export const STATES: AlertStatus[] = ['FIRING', 'ACKNOWLEDGED', 'RESOLVED']
export const HISTORY_PAGE = 50
export const ACTIVE_SHOWN = 200

export const SEVERITY_LOOK: Record<AlertSeverity, StatusLook> = {
  CRITICAL: { label: 'Critical', tone: 'unhealthy', icon: 'stop' },
  ERROR: { label: 'Error', tone: 'unhealthy', icon: 'cross' },
  WARNING: { label: 'Warning', tone: 'degraded', icon: 'warn' },
  INFO: { label: 'Info', tone: 'info', icon: 'question' },
}
export const STATE_LOOK: Record<AlertStatus, StatusLook> = {
  FIRING: { label: 'Firing', tone: 'unhealthy', icon: 'warn' },
  ACKNOWLEDGED: { label: 'Acknowledged', tone: 'degraded', icon: 'clock' },
  RESOLVED: { label: 'Resolved', tone: 'healthy', icon: 'check' },
}
export const SEVERITY_RANK: Record<AlertSeverity, number> = { CRITICAL: 0, ERROR: 1, WARNING: 2, INFO: 3 }

/** How long a silence lasts: the API's duration syntax and its words. */
export const DURATIONS: { value: string; label: string }[] = [
  { value: '30m', label: '30 minutes' },
  { value: '1h', label: '1 hour' },
  { value: '2h', label: '2 hours' },
  { value: '8h', label: '8 hours' },
  { value: '1d', label: '1 day' },
  { value: '7d', label: '7 days' },
]
/** How far back the history reaches, when a "since" is chosen. */
export const SINCE: { value: string; label: string; hours: number }[] = [
  { value: '1h', label: 'Last hour', hours: 1 },
  { value: '24h', label: 'Last 24 hours', hours: 24 },
  { value: '7d', label: 'Last 7 days', hours: 24 * 7 },
  { value: '30d', label: 'Last 30 days', hours: 24 * 30 },
]

export interface AlertHistoryState {
  states: AlertStatus[]
  severities: AlertSeverity[]
  service: string | null
  since: string | null // a SINCE value
  after: string | null
}

type Query = Record<string, string | null | (string | null)[] | undefined>

function one(value: Query[string]): string | null {
  const v = Array.isArray(value) ? value[0] : value
  return v === undefined || v === null || v === '' ? null : v
}
function list<T extends string>(value: Query[string], allowed: readonly T[]): T[] {
  return (one(value) ?? '').split(',').filter((v): v is T => (allowed as readonly string[]).includes(v))
}

export function fromQuery(query: Query): AlertHistoryState {
  const since = one(query.since)
  return {
    states: list(query.state, STATES),
    severities: list(query.severity, SEVERITIES),
    service: one(query.service),
    since: since && SINCE.some((s) => s.value === since) ? since : null,
    after: one(query.after),
  }
}

export function toQuery(state: AlertHistoryState): Record<string, string> {
  const query: Record<string, string> = {}
  if (state.states.length) query.state = state.states.join(',')
  if (state.severities.length) query.severity = state.severities.join(',')
  if (state.service) query.service = state.service
  if (state.since) query.since = state.since
  if (state.after) query.after = state.after
  return query
}

/** The API's filter; `now` fixes the clock for "since". */
export function toFilter(state: AlertHistoryState, now = Date.now()): AlertFilter {
  const hours = SINCE.find((s) => s.value === state.since)?.hours
  return {
    statuses: state.states.length ? state.states : null,
    severities: state.severities.length ? state.severities : null,
    service: state.service,
    since: hours ? new Date(now - hours * 3_600_000).toISOString() : null,
  }
}

/** The alert's labels as silence matchers ("service=crm"), the severity aside (a silence outlives a change of it). */
export function matchersFor(alert: Pick<AlertRowFragment, 'labels' | 'rule'>): string[] {
  const labels = alert.labels && typeof alert.labels === 'object' ? (alert.labels as Record<string, unknown>) : {}
  const matchers = Object.entries(labels)
    .filter(([name, value]) => name !== 'severity' && (typeof value === 'string' || typeof value === 'number'))
    .map(([name, value]) => `${name}=${String(value)}`)
  if (!('rule' in labels) && !('alertname' in labels)) matchers.unshift(`rule=${alert.rule}`)
  return matchers
}

/** Matchers typed one a line (or comma separated) as the API takes them. */
export function parseMatchers(text: string): string[] {
  return text.split(/[\n,]/).map((m) => m.trim()).filter(Boolean)
}

/** "crm · tenant-a · ERP_SYNC": where the alert comes from. */
export function origin(alert: Pick<AlertRowFragment, 'service' | 'tenantId' | 'jobType'>): string {
  return [alert.service, alert.tenantId, alert.jobType].filter(Boolean).join(' · ') || '—'
}

/** Most urgent first, then the newest change. */
export function byUrgency(a: AlertRowFragment, b: AlertRowFragment): number {
  const rank = SEVERITY_RANK[a.severity ?? 'INFO'] - SEVERITY_RANK[b.severity ?? 'INFO']
  return rank || (b.changedAt ?? '').localeCompare(a.changedAt ?? '')
}
