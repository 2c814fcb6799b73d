import { describe, expect, it } from 'vitest'
import { byUrgency, fromQuery, matchersFor, origin, parseMatchers, toFilter, toQuery } from '@/features/alerts/filters'
import type { AlertRowFragment } from '@/features/alerts/queries'
import { pathFromHash } from '@/hashPath'

function alert(patch: Partial<AlertRowFragment>): AlertRowFragment {
  return {
    id: 'a1', rule: 'jobs.failed', severity: 'ERROR', status: 'FIRING', summary: 's', description: '', occurrences: 1, episode: 1,
    labels: {}, tenantId: null, service: null, jobType: null, firstFiredAt: null, episodeStartedAt: null, lastFiredAt: null,
    changedAt: null, acknowledgedAt: null, acknowledgedBy: null, acknowledgeComment: null, resolvedAt: null, resolvedBy: null,
    resolveComment: null, silencedBy: null, ...patch,
  }
}

describe('alert history filters', () => {
  it('round-trip through the URL and drop what is not a state, severity or range', () => {
    const state = fromQuery({ state: 'RESOLVED,NOPE,FIRING', severity: 'CRITICAL', service: 'crm', since: '7d', after: 'c1' })
    expect(state).toEqual({ states: ['RESOLVED', 'FIRING'], severities: ['CRITICAL'], service: 'crm', since: '7d', after: 'c1' })
    expect(fromQuery(toQuery(state))).toEqual(state)
    expect(fromQuery({ since: '3y' }).since).toBeNull()
  })
  it('become the API filter, "since" counted back from now', () => {
    const now = Date.parse('2026-12-03T12:00:00Z')
    const filter = toFilter({ states: [], severities: ['WARNING'], service: null, since: '24h', after: null }, now)
    expect(filter).toEqual({ statuses: null, severities: ['WARNING'], service: null, since: '2026-12-02T12:00:00.000Z' })
  })
})

describe('silence matchers', () => {
  it('come from the labels, severity aside, the rule always among them', () => {
    expect(matchersFor(alert({ labels: { rule: 'service.offline', severity: 'critical', service: 'crm' } }))).toEqual([
      'rule=service.offline', 'service=crm',
    ])
    expect(matchersFor(alert({ rule: 'jobs.failed', labels: { tenant: 't1' } }))).toEqual(['rule=jobs.failed', 'tenant=t1'])
  })
  it('are read one a line or comma separated, blanks ignored', () => {
    expect(parseMatchers(' service=crm \n\njob_type=~ERP_.*, tenant!=x')).toEqual(['service=crm', 'job_type=~ERP_.*', 'tenant!=x'])
  })
})

describe('active alerts', () => {
  it('sort most urgent first, then newest change', () => {
    const rows = [
      alert({ id: 'w', severity: 'WARNING', changedAt: '2026-12-03T10:00:00Z' }),
      alert({ id: 'c-old', severity: 'CRITICAL', changedAt: '2026-12-03T09:00:00Z' }),
      alert({ id: 'c-new', severity: 'CRITICAL', changedAt: '2026-12-03T11:00:00Z' }),
    ]
    expect(rows.sort(byUrgency).map((a) => a.id)).toEqual(['c-new', 'c-old', 'w'])
  })
  it('name where they come from', () => {
    expect(origin(alert({ service: 'crm', tenantId: 't1', jobType: 'ERP_SYNC' }))).toBe('crm · t1 · ERP_SYNC')
    expect(origin(alert({}))).toBe('—')
  })
})

describe('hash links', () => {
  it('map the e-mails\' /#/alerts/<id> to the path, and leave a sign-in key alone', () => {
    expect(pathFromHash('#/alerts/0f3a')).toBe('/alerts/0f3a')
    expect(pathFromHash('#key=b2x_abc')).toBeNull()
    expect(pathFromHash('')).toBeNull()
  })
})
