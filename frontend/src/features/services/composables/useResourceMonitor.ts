// One service's resources: the current figures and a live chart fed by `resourceMetricsUpdated`, the
// history of the chosen range, the thresholds (edited by ThresholdsEditor) and the resource alert history, which
// `resourceAlertTriggered` refreshes.
import { onScopeDispose, ref, shallowRef, watch } from 'vue'
import { ApiError, request } from '@/api/client'
import { useResync, useSubscription } from '@/api/live'
import { useAnnouncer } from '@/composables/useAnnouncer'
import { throttle } from '@/composables/throttle'
import {
  ServiceResourceAlertTriggeredDocument,
  ServiceResourceMonitorDocument,
  ServicesResourcesUpdatedDocument,
  type ServiceResourceFiguresFragment,
  type ServiceResourceMonitorQuery,
} from '../queries'
import { since, type Range } from '../ranges'

/** Live samples the live chart keeps (5 minutes at the default 5 s sampling period). */
export const LIVE_POINTS = 60
export const ALERTS_SHOWN = 50

export interface LiveSample {
  at: string
  cpu: number
  memory: number
}

export function useResourceMonitor(service: () => string, range: () => Range) {
  const { alert } = useAnnouncer()
  const data = shallowRef<ServiceResourceMonitorQuery | null>(null)
  const current = shallowRef<ServiceResourceFiguresFragment | null>(null)
  const live = shallowRef<LiveSample[]>([])
  const error = ref<string | null>(null)
  const loading = ref(false)
  let generation = 0

  function sample(m: ServiceResourceFiguresFragment): void {
    const at = m.timestamp ?? new Date().toISOString()
    if (live.value.at(-1)?.at === at) return
    live.value = [...live.value, { at, cpu: m.cpuPercent, memory: m.memoryPercent }].slice(-LIVE_POINTS)
  }

  async function load(): Promise<void> {
    const mine = ++generation
    loading.value = true
    try {
      const result = await request(ServiceResourceMonitorDocument, {
        service: service(), since: since(range()), alerts: ALERTS_SHOWN,
      })
      if (mine !== generation) return
      data.value = result
      const metrics = result.resources[0]?.metrics ?? null
      if (metrics && (!current.value || (metrics.timestamp ?? '') >= (current.value.timestamp ?? ''))) {
        current.value = metrics
        sample(metrics)
      }
      error.value = null
    } catch (e) {
      if (mine === generation) error.value = e instanceof ApiError ? e.message : String(e)
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  const reloadSoon = throttle(() => void load(), 2000)
  onScopeDispose(reloadSoon.cancel)
  watch(() => [service(), range().key], () => void load(), { immediate: true })
  watch(service, () => {
    live.value = []
    current.value = null
  })
  useResync(() => void load())
  const timer = setInterval(() => void load(), 60_000)
  onScopeDispose(() => clearInterval(timer))
  useSubscription(ServicesResourcesUpdatedDocument, () => ({}), (event) => {
    if (event.resourceMetricsUpdated.serviceId !== data.value?.service.id) return
    current.value = event.resourceMetricsUpdated.metrics
    sample(event.resourceMetricsUpdated.metrics)
  })
  useSubscription(ServiceResourceAlertTriggeredDocument, () => ({}), (event) => {
    if (event.resourceAlertTriggered.serviceId !== data.value?.service.id) return
    alert(`Resource alert: ${event.resourceAlertTriggered.alert.message}`)
    reloadSoon()
  })
  return { data, current, live, error, loading, reload: load }
}
