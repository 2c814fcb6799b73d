// Loads the services panel and keeps it live: status changes and resource samples are applied in place
// (once per frame); a status change also refetches the rest (last OK, averages) at most every 5 s; a
// reconnect or polling tick refetches everything.
import { storeToRefs } from 'pinia'
import { onScopeDispose } from 'vue'
import { useResync, useSubscription } from '@/api/live'
import { useAnnouncer } from '@/composables/useAnnouncer'
import { serviceLook } from '@/composables/status'
import { throttle } from '@/composables/throttle'
import { ServicesHealthChangedDocument, ServicesResourcesUpdatedDocument } from '../queries'
import { useServicesStore } from '../store'

export function useServicesPanel() {
  const store = useServicesStore()
  const { announce } = useAnnouncer()
  const refresh = throttle(() => void store.load(), 5000)
  onScopeDispose(refresh.cancel)

  void store.load()
  useResync(() => void store.load())
  useSubscription(ServicesHealthChangedDocument, () => ({}), (data) => {
    const change = data.healthStatusChanged
    store.applyStatus(change.serviceId, change.status, change.reason)
    const name = store.cards.find((c) => c.id === change.serviceId)?.name ?? 'A service'
    announce(`${name} is now ${serviceLook(change.status).label}${change.reason ? `: ${change.reason}` : ''}`)
    refresh()
  })
  useSubscription(ServicesResourcesUpdatedDocument, () => ({}), (data) => {
    store.applyMetrics(data.resourceMetricsUpdated.serviceId, data.resourceMetricsUpdated.metrics)
  })
  return { ...storeToRefs(store), loadSparkline: store.loadSparkline }
}
