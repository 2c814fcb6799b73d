// The services panel's filters live in the URL (`?status=OFFLINE,DEGRADED&type=ERP`), so links and the
// back button keep them; filtering is done here because live status changes move cards in and out.
import type { ServiceStatus, ServiceType } from './queries'

export const STATUSES: ServiceStatus[] = ['ONLINE', 'DEGRADED', 'OFFLINE', 'UNKNOWN']
export const TYPES: ServiceType[] = ['ERP', 'PIM', 'CRM', 'DATABASE', 'MESSAGE_QUEUE', 'CACHE', 'OTHER']

export const TYPE_LABEL: Record<ServiceType, string> = {
  ERP: 'ERP', PIM: 'PIM', CRM: 'CRM', DATABASE: 'Database', MESSAGE_QUEUE: 'Message queue', CACHE: 'Cache', OTHER: 'Other',
}

export interface ServiceFilter {
  statuses: ServiceStatus[]
  types: ServiceType[]
}

type Query = Record<string, string | null | (string | null)[] | undefined>

function list<T extends string>(value: Query[string], allowed: readonly T[]): T[] {
  const raw = Array.isArray(value) ? value.join(',') : (value ?? '')
  return raw.split(',').filter((v): v is T => (allowed as readonly string[]).includes(v))
}

export function fromQuery(query: Query): ServiceFilter {
  return { statuses: list(query.status, STATUSES), types: list(query.type, TYPES) }
}

export function toQuery(filter: ServiceFilter): Record<string, string> {
  const query: Record<string, string> = {}
  if (filter.statuses.length) query.status = filter.statuses.join(',')
  if (filter.types.length) query.type = filter.types.join(',')
  return query
}

export function matches(filter: ServiceFilter, card: { status: ServiceStatus | null; type: ServiceType | null }): boolean {
  return (
    (!filter.statuses.length || filter.statuses.includes(card.status ?? 'UNKNOWN')) &&
    (!filter.types.length || filter.types.includes(card.type ?? 'OTHER'))
  )
}
