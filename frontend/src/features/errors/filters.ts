// The error log's filters and page in the URL (?service=crm&group=TIMEOUT&severity=ERROR&from=…&after=…).
import { localDateTime } from '@/features/jobs/filters'
import type { StatusLook } from '@/composables/status'
import type { CommunicationErrorGroup, CommunicationErrorType, ErrorSeverity } from './queries'

export const GROUPS: CommunicationErrorGroup[] = ['NETWORK', 'TIMEOUT', 'PROTOCOL', 'AUTHENTICATION', 'DATA', 'SERVICE']
export const SEVERITIES: ErrorSeverity[] = ['WARNING', 'ERROR', 'CRITICAL']
export const TYPES: CommunicationErrorType[] = [
  'DNS_RESOLUTION_FAILED', 'CONNECTION_REFUSED', 'NETWORK_UNREACHABLE', 'HOST_UNREACHABLE', 'CONNECTION_TIMEOUT',
  'READ_TIMEOUT', 'WRITE_TIMEOUT', 'REQUEST_TIMEOUT', 'SSL_HANDSHAKE_FAILED', 'CERTIFICATE_INVALID',
  'CERTIFICATE_EXPIRED', 'HTTP_PROTOCOL_ERROR', 'AUTHENTICATION_FAILED', 'TOKEN_EXPIRED', 'PERMISSION_DENIED',
  'INVALID_CREDENTIALS', 'SERIALIZATION_FAILED', 'DESERIALIZATION_FAILED', 'SCHEMA_MISMATCH', 'ENCODING_ERROR',
  'PAYLOAD_TOO_LARGE', 'SERVICE_UNAVAILABLE', 'RATE_LIMITED', 'CIRCUIT_BREAKER_OPEN', 'UNKNOWN',
]
export const PAGE_SIZE = 50

export const GROUP_LABEL: Record<CommunicationErrorGroup, string> = {
  NETWORK: 'Network', TIMEOUT: 'Timeout', PROTOCOL: 'Protocol', AUTHENTICATION: 'Auth', DATA: 'Data', SERVICE: 'Service',
}
export const SEVERITY_LOOK: Record<ErrorSeverity, StatusLook> = {
  WARNING: { label: 'Warning', tone: 'degraded', icon: 'warn' },
  ERROR: { label: 'Error', tone: 'unhealthy', icon: 'cross' },
  CRITICAL: { label: 'Critical', tone: 'unhealthy', icon: 'stop' },
}

export function typeLabel(type: CommunicationErrorType | null | undefined): string {
  if (!type) return 'Unknown'
  const words = type.toLowerCase().replace(/_/g, ' ')
  return words.charAt(0).toUpperCase() + words.slice(1)
}

export interface ErrorLogState {
  service: string | null
  groups: CommunicationErrorGroup[]
  severities: ErrorSeverity[]
  type: CommunicationErrorType | null
  from: string | null // local datetime, as <input type="datetime-local"> holds it
  to: string | null
  after: string | null
}

type Query = Record<string, string | null | (string | null)[] | undefined>
const LOCAL_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/

function one(value: Query[string]): string | null {
  const v = Array.isArray(value) ? value[0] : value
  return v === undefined || v === null || v === '' ? null : v
}
function list<T extends string>(value: Query[string], allowed: readonly T[]): T[] {
  return (one(value) ?? '').split(',').filter((v): v is T => (allowed as readonly string[]).includes(v))
}

export function fromQuery(query: Query): ErrorLogState {
  const from = one(query.from)
  const to = one(query.to)
  const type = one(query.type)
  return {
    service: one(query.service),
    groups: list(query.group, GROUPS),
    severities: list(query.severity, SEVERITIES),
    type: type && (TYPES as string[]).includes(type) ? (type as CommunicationErrorType) : null,
    from: from && LOCAL_DATETIME.test(from) ? from : null,
    to: to && LOCAL_DATETIME.test(to) ? to : null,
    after: one(query.after),
  }
}

export function toQuery(state: ErrorLogState): Record<string, string> {
  const query: Record<string, string> = {}
  if (state.service) query.service = state.service
  if (state.groups.length) query.group = state.groups.join(',')
  if (state.severities.length) query.severity = state.severities.join(',')
  if (state.type) query.type = state.type
  if (state.from) query.from = state.from
  if (state.to) query.to = state.to
  if (state.after) query.after = state.after
  return query
}

/** The API's arguments: local datetimes become instants. */
export function toVariables(state: ErrorLogState) {
  return {
    service: state.service,
    groups: state.groups.length ? state.groups : null,
    severities: state.severities.length ? state.severities : null,
    types: state.type ? [state.type] : null,
    since: state.from ? new Date(state.from).toISOString() : null,
    until: state.to ? new Date(state.to).toISOString() : null,
  }
}

export { localDateTime }

const stamp = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  fractionalSecondDigits: 3, hour12: false,
})
/** 2026-01-02 14:22:05.342 style, in the browser's zone. */
export function formatMillis(value: string | null | undefined): string {
  return value ? stamp.format(new Date(value)) : '—'
}
