import { describe, expect, it } from 'vitest'
import { headerPairs, prettyPayload, waterfall, PAYLOAD_SHOWN } from '@/features/errors/evidence'
import { fromQuery, toQuery, toVariables } from '@/features/errors/filters'

describe('error evidence', () => {
  it('pretty-prints JSON and XML and cuts long payloads', () => {
    expect(prettyPayload('{"a":1,"b":[2]}')).toEqual({ text: '{\n  "a": 1,\n  "b": [\n    2\n  ]\n}', kind: 'JSON', cut: false })
    expect(prettyPayload('<a><b>1</b><c/></a>').text).toBe('<a>\n  <b>1</b>\n  <c/>\n</a>')
    expect(prettyPayload('{"cut": "in the mid').kind).toBe('text')
    const long = prettyPayload('x'.repeat(PAYLOAD_SHOWN + 10))
    expect(long.cut).toBe(true)
    expect(long.text.endsWith('…')).toBe(true)
  })

  it('reads headers as an object or as pairs', () => {
    expect(headerPairs({ Authorization: '****masked****' })).toEqual([['Authorization', '****masked****']])
    expect(headerPairs([['X-A', '1']])).toEqual([['X-A', '1']])
    expect(headerPairs(null)).toEqual([])
  })

  it('lays the phases end to end, to the scale of the total, skipping phases never reached', () => {
    const w = waterfall({ dnsLookupMs: 10, tcpConnectionMs: 30, tlsHandshakeMs: null, timeToFirstByteMs: 60, contentDownloadMs: null, totalTimeMs: 200 })
    expect(w.totalMs).toBe(200)
    expect(w.segments.map((s) => [s.label, s.startMs, s.left, s.width])).toEqual([
      ['DNS', 0, '0.000%', '5.000%'], ['TCP', 10, '5.000%', '15.000%'], ['Wait', 40, '20.000%', '30.000%'],
    ])
  })
})

describe('error log filters in the URL', () => {
  it('round-trips, drops unknown values and turns local times into instants', () => {
    const state = fromQuery({ service: 'crm', group: 'TIMEOUT,BOGUS', severity: 'ERROR', type: 'READ_TIMEOUT', from: '2026-01-02T08:00' })
    expect(state.groups).toEqual(['TIMEOUT'])
    expect(toQuery(state)).toEqual({ service: 'crm', group: 'TIMEOUT', severity: 'ERROR', type: 'READ_TIMEOUT', from: '2026-01-02T08:00' })
    const vars = toVariables(state)
    expect(vars.types).toEqual(['READ_TIMEOUT'])
    expect(vars.since).toBe(new Date('2026-01-02T08:00').toISOString())
    expect(fromQuery({ type: 'DROP TABLE', from: 'yesterday' })).toMatchObject({ type: null, from: null })
  })
})
