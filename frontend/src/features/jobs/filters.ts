// The job table's state as URL query parameters, so a view can be shared and the back button works.
import type { JobFilter, JobSort, JobSortField, JobStatus, SortDirection } from '@/generated/graphql'

export const STATUSES: JobStatus[] = ['QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED']
export const SORT_FIELDS: JobSortField[] = [
  'CREATED_AT', 'STARTED_AT', 'COMPLETED_AT', 'UPDATED_AT', 'STATUS', 'JOB_TYPE', 'TENANT_ID', 'PROGRESS', 'ID',
]
export const PAGE_SIZES = [25, 50, 100, 200] as const
export const DEFAULT_PAGE_SIZE = 50

export interface JobListState {
  status: JobStatus[]
  type: string[]
  tenant: string[]
  from: string | null // local datetime (YYYY-MM-DDTHH:mm) as typed in <input type="datetime-local">
  to: string | null
  q: string
  sort: JobSortField
  dir: SortDirection
  size: number
  after: string | null
}

export type Query = Record<string, string | null | (string | null)[] | undefined>

function one(value: Query[string]): string | null {
  const v = Array.isArray(value) ? value[0] : value
  return v === undefined || v === null || v === '' ? null : v
}

function list(value: Query[string]): string[] {
  const v = one(value)
  return v ? v.split(',').map((s) => s.trim()).filter(Boolean) : []
}

const LOCAL_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/

/** A time as <input type="datetime-local"> and the URL hold it: the browser's own zone, to the minute. */
export function localDateTime(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0')
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`
}

/** Read the table's state from the URL; anything malformed falls back to the default. */
export function fromQuery(query: Query): JobListState {
  const sort = one(query.sort)?.toUpperCase() as JobSortField | undefined
  const dir = one(query.dir)?.toUpperCase()
  const size = Number(one(query.size))
  const from = one(query.from)
  const to = one(query.to)
  return {
    status: list(query.status).map((s) => s.toUpperCase() as JobStatus).filter((s) => STATUSES.includes(s)),
    type: list(query.type),
    tenant: list(query.tenant),
    from: from && LOCAL_DATETIME.test(from) ? from : null,
    to: to && LOCAL_DATETIME.test(to) ? to : null,
    q: one(query.q) ?? '',
    sort: sort && SORT_FIELDS.includes(sort) ? sort : 'CREATED_AT',
    dir: dir === 'ASC' ? 'ASC' : 'DESC',
    size: (PAGE_SIZES as readonly number[]).includes(size) ? size : DEFAULT_PAGE_SIZE,
    after: one(query.after),
  }
}

/** The URL query of a state; defaults are left out so links stay short. */
export function toQuery(state: JobListState): Record<string, string> {
  const q: Record<string, string> = {}
  if (state.status.length) q.status = state.status.join(',')
  if (state.type.length) q.type = state.type.join(',')
  if (state.tenant.length) q.tenant = state.tenant.join(',')
  if (state.from) q.from = state.from
  if (state.to) q.to = state.to
  if (state.q.trim()) q.q = state.q.trim()
  if (state.sort !== 'CREATED_AT') q.sort = state.sort
  if (state.dir !== 'DESC') q.dir = state.dir
  if (state.size !== DEFAULT_PAGE_SIZE) q.size = String(state.size)
  if (state.after) q.after = state.after
  return q
}

function toIso(local: string | null): string | null {
  if (!local) return null
  const date = new Date(local)
  return Number.isNaN(date.getTime()) ? null : date.toISOString()
}

/** The GraphQL filter and sort of a state (times typed in the browser's zone, sent as UTC). */
export function toVariables(state: JobListState): { filter: JobFilter; sort: JobSort } {
  const filter: JobFilter = {}
  if (state.status.length) filter.status = state.status
  if (state.type.length) filter.jobType = state.type
  if (state.tenant.length) filter.tenantId = state.tenant
  const from = toIso(state.from)
  const to = toIso(state.to)
  if (from) filter.createdAfter = from
  if (to) filter.createdBefore = to
  if (state.q.trim()) filter.search = state.q.trim()
  return { filter, sort: { field: state.sort, direction: state.dir } }
}

/** The CSV export's URL parameters for the same filter and sort. */
export function exportParams(state: JobListState): URLSearchParams {
  const { filter, sort } = toVariables(state)
  const params = new URLSearchParams()
  if (filter.status) params.set('status', filter.status.join(','))
  if (filter.jobType) params.set('type', filter.jobType.join(','))
  if (filter.tenantId) params.set('tenant', filter.tenantId.join(','))
  if (filter.createdAfter) params.set('from', filter.createdAfter as string)
  if (filter.createdBefore) params.set('to', filter.createdBefore as string)
  if (filter.search) params.set('q', filter.search)
  params.set('sort', sort.field ?? 'CREATED_AT')
  params.set('dir', sort.direction ?? 'DESC')
  return params
}

/** Whether a job (as an event carries it) matches the filter, for "new jobs" notices. */
export function matches(state: JobListState, job: { status: JobStatus; jobType: string; tenantId: string }): boolean {
  return (
    (!state.status.length || state.status.includes(job.status)) &&
    (!state.type.length || state.type.includes(job.jobType)) &&
    (!state.tenant.length || state.tenant.includes(job.tenantId))
  )
}
