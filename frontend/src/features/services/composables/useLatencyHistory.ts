// A service's latency and availability over the chosen range, from the probes' rollups; refetched after a
// reconnect and every minute while open (a new bucket may have closed).
import { onScopeDispose, ref, shallowRef, watch } from 'vue'
import { ApiError, request } from '@/api/client'
import { useResync } from '@/api/live'
import { ServiceLatencyHistoryDocument, type ServiceLatencyHistoryQuery } from '../queries'
import { since, type Range } from '../ranges'

export function useLatencyHistory(service: () => string, range: () => Range) {
  const data = shallowRef<ServiceLatencyHistoryQuery | null>(null)
  const error = ref<string | null>(null)
  const loading = ref(false)
  let generation = 0

  async function load(): Promise<void> {
    const mine = ++generation
    loading.value = true
    try {
      const result = await request(ServiceLatencyHistoryDocument, { service: service(), since: since(range()) })
      if (mine !== generation) return
      data.value = result
      error.value = null
    } catch (e) {
      if (mine === generation) error.value = e instanceof ApiError ? e.message : String(e)
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  watch(() => [service(), range().key], () => void load(), { immediate: true })
  useResync(() => void load())
  const timer = setInterval(() => void load(), 60_000)
  onScopeDispose(() => clearInterval(timer))
  return { data, error, loading, reload: load }
}
