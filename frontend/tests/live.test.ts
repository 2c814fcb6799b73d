import { describe, expect, it } from 'vitest'
import { backoffDelay } from '@/api/backoff'
import { keyFromFragment } from '@/auth/storage'
import { FrameBatcher } from '@/composables/frameBatcher'
import { formatDuration, readable } from '@/composables/format'
import { mergeLines } from '@/features/jobs/composables/useJobLog'

describe('live updates', () => {
  it('coalesces a burst into one flush per frame, the latest value per row winning', () => {
    const frames: (() => void)[] = []
    const flushed: Map<string, number>[] = []
    const batcher = new FrameBatcher<string, number>((b) => flushed.push(b), (cb) => frames.push(cb))
    for (let i = 0; i < 1000; i++) batcher.push(`job-${i % 3}`, i)
    expect(frames).toHaveLength(1)
    frames.shift()!()
    expect(flushed).toEqual([new Map([['job-0', 999], ['job-1', 997], ['job-2', 998]])])
    batcher.push('job-0', 1)
    expect(frames).toHaveLength(1)
  })

  it('backs off exponentially with jitter up to 30 s', () => {
    expect(backoffDelay(0, () => 0)).toBe(250)
    expect(backoffDelay(0, () => 1)).toBe(500)
    expect(backoffDelay(3, () => 1)).toBe(4000)
    expect(backoffDelay(40, () => 1)).toBe(30_000)
    expect(backoffDelay(40, () => 0)).toBe(15_000)
  })

  it('appends only log lines newer than the last one shown (a resubscription resends some)', () => {
    const line = (sequence: number) => ({ sequence, level: 'INFO' as const, message: `m${sequence}`, timestamp: '', stackTrace: null })
    const merged = mergeLines([line(1), line(2)], [line(2), line(3)])
    expect(merged.map((l) => l.sequence)).toEqual([1, 2, 3])
  })

  it('reads the key of a sign-in link and nothing else', () => {
    const key = 'b2x_abcdefghijkl_' + 'x'.repeat(32)
    expect(keyFromFragment(`#key=${key}`)).toBe(key)
    expect(keyFromFragment('#key=<script>')).toBeNull()
    expect(keyFromFragment('')).toBeNull()
  })

  it('lays stored stack traces out on lines again', () => {
    expect(readable('Traceback:\\n  File "x", line 1\\nValueError')).toBe('Traceback:\n  File "x", line 1\nValueError')
  })

  it('reads durations the way an operator says them', () => {
    expect(formatDuration(850)).toBe('850 ms')
    expect(formatDuration(245_000)).toBe('4 min 05 s')
    expect(formatDuration(7_800_000)).toBe('2 h 10 min')
  })
})
