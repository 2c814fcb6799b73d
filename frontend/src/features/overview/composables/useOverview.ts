// Loads the overview and keeps it current: service status changes and job outcomes trigger a refetch
// (at most every 2 s), a reconnect or polling tick refetches too.
import { storeToRefs } from 'pinia'
import { useResync, useSubscription } from '@/api/live'
import { useAnnouncer } from '@/composables/useAnnouncer'
import { serviceLook } from '@/composables/status'
import { throttle } from '@/composables/throttle'
import { OverviewHealthChangedDocument, OverviewJobChangedDocument } from '../queries'
import { useOverviewStore } from '../store'
import { onScopeDispose } from 'vue'

const JOB_CHANGES = new Set(['created', 'started', 'completed', 'failed', 'cancelled', 'retry_queued', 'resync'])

export function useOverview() {
  const store = useOverviewStore()
  const { announce } = useAnnouncer()
  const refresh = throttle(() => void store.load(), 2000)
  onScopeDispose(refresh.cancel)

  void store.load()
  useResync(() => void store.load())
  useSubscription(OverviewHealthChangedDocument, () => ({}), (data) => {
    const change = data.healthStatusChanged
    announce(`${change.component} is now ${serviceLook(change.status).label}${change.reason ? `: ${change.reason}` : ''}`)
    refresh()
  })
  useSubscription(OverviewJobChangedDocument, () => ({}), (data) => {
    if (JOB_CHANGES.has(data.jobStatusChanged.change)) refresh()
  })
  return storeToRefs(store)
}
