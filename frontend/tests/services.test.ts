import { describe, expect, it } from 'vitest'
import { formatBytes, resourceLevel } from '@/composables/levels'
import { fromQuery, matches, toQuery } from '@/features/services/filters'
import { LATENCY_RANGES, RESOURCE_RANGES, bucketLabel, pickRange, since } from '@/features/services/ranges'
import { sameCard, startOfTodayUtc, type ServiceCard } from '@/features/services/store'

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

describe('history ranges', () => {
  it('falls back to the default range and labels buckets by their width', () => {
    expect(pickRange(LATENCY_RANGES, '30d').hours).toBe(720)
    expect(pickRange(LATENCY_RANGES, 'forever').key).toBe('24h')
    expect(pickRange(RESOURCE_RANGES, '30d', '1h').key).toBe('1h') // resources keep 7 days at most
    expect(since(LATENCY_RANGES[0]!, Date.parse('2026-01-02T12:00:00Z'))).toBe('2026-01-02T11:00:00.000Z')
    expect(bucketLabel(null, 'HOUR', LATENCY_RANGES[1]!)).toBe('—')
  })
})

describe('a refetched card', () => {
  const card = (cpu: number, at: string, status: 'ONLINE' | 'OFFLINE' = 'ONLINE'): ServiceCard => ({
    id: 's1', slug: 'erp', name: 'ERP', type: 'ERP', status, statusReason: '', lastChecked: null, lastSuccessful: null,
    averageLatencyMs: 10, uptimePercent: 100, enabled: true, thresholds: null, speedRating: null, errorsToday: 0,
    errorsTodayAtLeast: false, cpuTrend: [], memoryTrend: [],
    resources: {
      cpuPercent: cpu, cpuAverage: 0, cpuPeak: 0, memoryUsedBytes: 0, memoryTotalBytes: 0, memoryPercent: 0, memoryPeakBytes: 0,
      connectionPoolActive: 0, connectionPoolTotal: 0, threadCount: 0, queueDepth: 0, processingRatePerMinute: 0, timestamp: at,
    },
  })

  it('keeps the shown card when only older resource figures came back, and not when anything else changed', () => {
    expect(sameCard(card(50, '2026-01-02T12:00:05Z'), card(40, '2026-01-02T12:00:00Z'))).toBe(true)
    expect(sameCard(card(50, '2026-01-02T12:00:00Z'), card(40, '2026-01-02T12:00:05Z'))).toBe(false)
    expect(sameCard(card(50, '2026-01-02T12:00:05Z'), card(50, '2026-01-02T12:00:05Z', 'OFFLINE'))).toBe(false)
  })
})
