import { describe, expect, it } from 'vitest'
import { formatBytes, resourceLevel } from '@/composables/levels'
import { fromQuery, matches, toQuery } from '@/features/services/filters'
import { startOfTodayUtc } from '@/features/services/store'

describe('services panel filters in the URL', () => {
  it('round-trips and drops values that are no status or type', () => {
    const filter = fromQuery({ status: 'OFFLINE,DEGRADED,asleep', type: 'ERP,TOASTER' })
    expect(filter).toEqual({ statuses: ['OFFLINE', 'DEGRADED'], types: ['ERP'] })
    expect(toQuery(filter)).toEqual({ status: 'OFFLINE,DEGRADED', type: 'ERP' })
    expect(toQuery(fromQuery({}))).toEqual({})
  })

  it('matches a service without a status as Unknown and without a type as Other', () => {
    expect(matches({ statuses: ['UNKNOWN'], types: [] }, { status: null, type: 'ERP' })).toBe(true)
    expect(matches({ statuses: [], types: ['OTHER'] }, { status: 'ONLINE', type: null })).toBe(true)
    expect(matches({ statuses: ['ONLINE'], types: ['CRM'] }, { status: 'ONLINE', type: 'ERP' })).toBe(false)
  })
})

describe('resource levels against their thresholds', () => {
  it('is OK below 80 % of the limit, near it above, over it at the limit, critical at the second limit', () => {
    expect(resourceLevel(50, 80).look.tone).toBe('healthy')
    expect(resourceLevel(64, 80).look.label).toBe('Near limit')
    expect(resourceLevel(80, 80).look.label).toBe('Over limit')
    expect(resourceLevel(96, 90, 95).look.label).toBe('Critical')
    expect(resourceLevel(99, 0).words).toBe('no limit set')
  })

  it('reads bytes in binary units and midnight in UTC', () => {
    expect(formatBytes(4 * 1024 ** 3)).toMatch(/^4 GB$/)
    expect(formatBytes(512)).toBe('512 B')
    expect(startOfTodayUtc(new Date('2026-03-04T23:30:00+05:00'))).toBe('2026-03-04T00:00:00.000Z')
  })
})
