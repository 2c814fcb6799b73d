import { describe, expect, it } from 'vitest'
import { exportParams, fromQuery, localDateTime, matches, toQuery, toVariables } from '@/features/jobs/filters'

describe('job table state in the URL', () => {
  it('survives a round trip through the query string', () => {
    const query = {
      status: 'FAILED,RUNNING', type: 'ERP_ARTICLE_SYNC', tenant: 'tenant-north', from: '2026-01-02T08:00',
      to: '2026-01-03T08:00', q: 'timeout', sort: 'PROGRESS', dir: 'ASC', size: '100', after: 'abc',
    }
    const state = fromQuery(query)
    expect(toQuery(state)).toEqual(query)
    expect(fromQuery(toQuery(state))).toEqual(state)
  })

  it('drops malformed values instead of sending them to the server', () => {
    const state = fromQuery({ status: 'SLEEPING,failed', sort: 'DROP TABLE', size: '7', from: 'yesterday', dir: 'sideways' })
    expect(state.status).toEqual(['FAILED'])
    expect(state.sort).toBe('CREATED_AT')
    expect(state.dir).toBe('DESC')
    expect(state.size).toBe(50)
    expect(state.from).toBeNull()
    expect(toQuery(state)).toEqual({ status: 'FAILED' })
  })

  it('turns the state into the GraphQL filter and the CSV export parameters', () => {
    const state = fromQuery({ status: 'FAILED', q: '  timeout ', from: '2026-01-02T08:00' })
    const { filter, sort } = toVariables(state)
    expect(filter).toEqual({ status: ['FAILED'], search: 'timeout', createdAfter: new Date('2026-01-02T08:00').toISOString() })
    expect(sort).toEqual({ field: 'CREATED_AT', direction: 'DESC' })
    const params = exportParams(state)
    expect(params.get('status')).toBe('FAILED')
    expect(params.get('q')).toBe('timeout')
    expect(params.get('from')).toBe(filter.createdAfter)
  })

  it('tells whether a new job belongs on the filtered list', () => {
    const state = fromQuery({ status: 'QUEUED', tenant: 'tenant-a' })
    expect(matches(state, { status: 'QUEUED', jobType: 'X', tenantId: 'tenant-a' })).toBe(true)
    expect(matches(state, { status: 'QUEUED', jobType: 'X', tenantId: 'tenant-b' })).toBe(false)
  })
})

describe('local times', () => {
  it('writes a time the way datetime-local inputs and the URL hold it, in the browser zone', () => {
    const date = new Date(2026, 0, 2, 8, 5, 59)
    expect(localDateTime(date)).toBe('2026-01-02T08:05')
    expect(fromQuery({ from: localDateTime(date) }).from).toBe('2026-01-02T08:05')
  })
})
