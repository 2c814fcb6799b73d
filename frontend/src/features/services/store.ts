// The connected services panel: every service with its latest check, today's errors and a short usage
// trend; live status and resource figures are applied at most once per animation frame, and only the
// cards that changed are replaced (so 200 cards re-render one by one, not all at once).
import { defineStore } from 'pinia'
import { ref, shallowRef } from 'vue'
import { ApiError, request } from '@/api/client'
import { FrameBatcher } from '@/composables/frameBatcher'
import {
  ServiceSparklineDocument,
  ServicesPanelDocument,
  type ServiceCardFieldsFragment,
  type ServiceResourceFiguresFragment,
  type ServiceStatus,
  type SpeedRating,
} from './queries'

/** Cards re-rendered per animation frame at most: a burst of 200 samples is spread over a few frames so
 * no frame's work grows past the 50 ms long-task budget. */
export const CARDS_PER_FRAME = 10

/** Points a card's sparkline keeps (one a minute from history, then one per live sample). */
export const SPARK_POINTS = 30

export interface ServiceCard extends ServiceCardFieldsFragment {
  speedRating: SpeedRating | null
  /** Errors since midnight UTC; `errorsTodayAtLeast` when the fingerprints were capped. */
  errorsToday: number
  errorsTodayAtLeast: boolean
  cpuTrend: number[]
  memoryTrend: number[]
}

interface Change {
  /** The card as a refetch returned it (before any live change queued after it). */
  card?: ServiceCard
  status?: { status: ServiceStatus | null; reason: string }
  metrics?: ServiceResourceFiguresFragment
}

export function sameCard(a: ServiceCard, b: ServiceCard): boolean {
  const { resources: ra, ...restA } = a
  const { resources: rb, ...restB } = b
  // Live samples are newer than a refetch's figures: a card whose sample is at least as new keeps it.
  const resourcesSame = (ra?.timestamp ?? '') >= (rb?.timestamp ?? '') && !!ra === !!rb
  return resourcesSame && JSON.stringify(restA) === JSON.stringify(restB)
}

export function startOfTodayUtc(now = new Date()): string {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())).toISOString()
}

function pushPoint(trend: number[], value: number): number[] {
  const next = trend.length >= SPARK_POINTS ? trend.slice(trend.length - SPARK_POINTS + 1) : trend.slice()
  next.push(value)
  return next
}

export const useServicesStore = defineStore('services', () => {
  const cards = shallowRef<ServiceCard[]>([])
  const loading = ref(false)
  const loaded = ref(false)
  const error = ref<string | null>(null)
  const loadedAt = ref<number | null>(null)
  let index = new Map<string, number>()
  const sparkLoaded = new Set<string>()
  let inFlight: Promise<void> | null = null

  const queued = new Map<string, Change>()
  const batcher = new FrameBatcher<string, Change>((batch) => {
    queued.clear()
    let next: ServiceCard[] | null = null
    let done = 0
    for (const [id, change] of batch) {
      if (done >= CARDS_PER_FRAME) {
        queue(id, change) // the next frame's share
        continue
      }
      done += 1
      const at = index.get(id)
      if (at === undefined) continue
      next ??= cards.value.slice()
      let card = change.card ?? next[at]!
      if (change.status) card = { ...card, status: change.status.status, statusReason: change.status.reason }
      if (change.metrics) {
        card = {
          ...card,
          resources: change.metrics,
          cpuTrend: pushPoint(card.cpuTrend, change.metrics.cpuPercent),
          memoryTrend: pushPoint(card.memoryTrend, change.metrics.memoryPercent),
        }
      }
      next[at] = card
    }
    if (next) cards.value = next
  })

  async function load(): Promise<void> {
    if (inFlight) return inFlight
    loading.value = true
    inFlight = (async () => {
      try {
        const data = await request(ServicesPanelDocument, { today: startOfTodayUtc() })
        const ratings = new Map(data.checkStates.map((c) => [c.serviceId, c.speedRating]))
        const errors = new Map<string, number>()
        let counted = 0
        for (const f of data.errorPatterns.fingerprints) {
          errors.set(f.serviceId, (errors.get(f.serviceId) ?? 0) + f.count)
          counted += f.count
        }
        const capped = counted < data.errorPatterns.totalErrors
        const before = new Map(cards.value.map((c) => [c.id, c]))
        const next = data.services.map((s): ServiceCard => {
          const old = before.get(s.id)
          const card = {
            ...s,
            speedRating: ratings.get(s.id) ?? null,
            errorsToday: errors.get(s.id) ?? 0,
            errorsTodayAtLeast: capped,
            cpuTrend: old?.cpuTrend ?? (s.resources ? [s.resources.cpuPercent] : []),
            memoryTrend: old?.memoryTrend ?? (s.resources ? [s.resources.memoryPercent] : []),
          }
          // An unchanged card keeps its object, so a refetch re-renders only the cards that changed.
          return old && sameCard(old, card) ? old : card
        })
        const sameList = next.length === cards.value.length && next.every((c, i) => cards.value[i]!.id === c.id)
        if (sameList) {
          // The same services in the same order: changed cards go through the frame batcher like live changes.
          next.forEach((card, i) => card !== cards.value[i] && queue(card.id, { card }))
        } else {
          cards.value = next
          index = new Map(next.map((c, i) => [c.id, i]))
        }
        error.value = null
        loaded.value = true
        loadedAt.value = Date.now()
      } catch (e) {
        error.value = e instanceof ApiError ? e.message : String(e)
      } finally {
        loading.value = false
        inFlight = null
      }
    })()
    return inFlight
  }

  /** The last half hour of a card's usage, fetched once when the card first scrolls into view. */
  async function loadSparkline(id: string): Promise<void> {
    const card = cards.value[index.get(id) ?? -1]
    if (!card || !card.resources || sparkLoaded.has(id)) return
    sparkLoaded.add(id)
    try {
      const since = new Date(Date.now() - SPARK_POINTS * 60_000).toISOString()
      const data = await request(ServiceSparklineDocument, { service: card.slug, since })
      const points = data.resourceHistory.points.slice(-SPARK_POINTS)
      const at = index.get(id)
      if (at === undefined || !points.length) return
      const next = cards.value.slice()
      const now = next[at]!
      // History first, then whatever arrived live meanwhile (its last value is the current one).
      next[at] = {
        ...now,
        cpuTrend: [...points.map((p) => p.cpuAvg), ...now.cpuTrend].slice(-SPARK_POINTS),
        memoryTrend: [...points.map((p) => p.memoryPercentAvg), ...now.memoryTrend].slice(-SPARK_POINTS),
      }
      cards.value = next
    } catch {
      sparkLoaded.delete(id) // tried again when the card is seen next
    }
  }

  // Both kinds of change of one service within a frame are kept (the batcher keeps the latest per key).
  function queue(id: string, patch: Change): void {
    // A refetched card replaces what was queued before it; live changes queued after it still apply.
    const change = patch.card ? { ...patch } : { ...queued.get(id), ...patch }
    queued.set(id, change)
    batcher.push(id, change)
  }

  function applyStatus(id: string, status: ServiceStatus | null, reason: string): void {
    queue(id, { status: { status, reason } })
  }

  function applyMetrics(id: string, metrics: ServiceResourceFiguresFragment): void {
    queue(id, { metrics })
  }

  return { cards, loading, loaded, error, loadedAt, load, loadSparkline, applyStatus, applyMetrics }
})
