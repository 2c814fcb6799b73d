// A job's execution log: the last lines (filtered by level and text on the server), then new lines as
// they are stored (jobLogAppended); after a reconnect the subscription resumes after the last line seen.
import { onScopeDispose, ref, shallowRef, watch, type Ref } from 'vue'
import { ApiError, request } from '@/api/client'
import { useResync, useSubscription } from '@/api/live'
import { readable } from '@/composables/format'
import { JobLogDocument, JobLogFollowDocument, type LogLevel, type LogLineFragment } from '../queries'

export const LEVELS: LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL']
const RANK = Object.fromEntries(LEVELS.map((l, i) => [l, i])) as Record<LogLevel, number>
export const TAIL = 1000
const PAGE = 10_000

export function mergeLines(current: LogLineFragment[], incoming: LogLineFragment[]): LogLineFragment[] {
  const last = current[current.length - 1]?.sequence ?? 0
  const fresh = incoming.filter((l) => l.sequence > last)
  return fresh.length ? current.concat(fresh) : current
}

export function formatLog(lines: LogLineFragment[]): string {
  return lines
    .map((l) => `${l.timestamp} ${l.level.padEnd(8)} ${l.message}${l.stackTrace ? `\n${readable(l.stackTrace)}` : ''}`)
    .join('\n')
}

export function useJobLog(id: Ref<string>) {
  const lines = shallowRef<LogLineFragment[]>([])
  const lastSequence = ref(0)
  const minLevel = ref<LogLevel | null>(null)
  const search = ref('')
  const follow = ref(true)
  const error = ref<string | null>(null)
  const loading = ref(false)

  function accepts(line: LogLineFragment): boolean {
    const text = search.value.trim().toLowerCase()
    return (!minLevel.value || RANK[line.level] >= RANK[minLevel.value]) && (!text || line.message.toLowerCase().includes(text))
  }

  async function load(): Promise<void> {
    loading.value = true
    const wanted = id.value
    try {
      const page = (
        await request(JobLogDocument, {
          id: wanted, last: TAIL, afterSequence: 0, first: TAIL, minLevel: minLevel.value, search: search.value.trim() || null,
        })
      ).jobLogs
      if (wanted !== id.value) return
      lines.value = page.lines
      lastSequence.value = page.lastSequence
      error.value = null
    } catch (e) {
      error.value = e instanceof ApiError ? e.message : String(e)
    } finally {
      loading.value = false
    }
  }

  let stop = (): void => {}
  onScopeDispose(() => stop())
  function subscribe(): void {
    stop()
    if (!follow.value) return
    const from = lastSequence.value
    stop = useSubscription(JobLogFollowDocument, () => ({ id: id.value, afterSequence: from }), (data) => {
      const incoming = data.jobLogAppended.lines
      const newest = incoming[incoming.length - 1]?.sequence ?? 0
      if (newest > lastSequence.value) lastSequence.value = newest
      const shown = incoming.filter(accepts)
      if (shown.length) lines.value = mergeLines(lines.value, shown)
    })
  }

  watch([id, minLevel], async () => {
    await load()
    subscribe()
  }, { immediate: true })
  watch(follow, subscribe)
  useResync(() => void load())

  /** The whole log (every level), fetched page by page. */
  async function everything(): Promise<LogLineFragment[]> {
    const all: LogLineFragment[] = []
    let after = 0
    for (;;) {
      const page = (await request(JobLogDocument, { id: id.value, last: null, afterSequence: after, first: PAGE })).jobLogs
      all.push(...page.lines)
      if (page.lines.length < PAGE) return all
      after = page.lines[page.lines.length - 1]!.sequence
    }
  }

  return { lines, lastSequence, minLevel, search, follow, error, loading, load, everything }
}
