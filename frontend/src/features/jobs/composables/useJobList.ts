// The job table bound to the URL: reading the route's query loads the page; changing a filter, the sort
// or the page pushes a new URL (so the back button and shared links work).
import { computed, onScopeDispose, watch } from 'vue'
import { useRoute, useRouter } from 'vue-router'
import { storeToRefs } from 'pinia'
import { useResync, useSubscription } from '@/api/live'
import { fromQuery, toQuery, type JobListState, type Query } from '../filters'
import { JobListChangedDocument, JobRowChangedDocument } from '../queries'
import { useJobsStore } from '../store'

export function useJobList() {
  const route = useRoute()
  const router = useRouter()
  const store = useJobsStore()
  const state = computed<JobListState>(() => fromQuery(route.query as Query))
  const key = computed(() => JSON.stringify(toQuery(state.value)))

  watch(key, () => void store.load(state.value), { immediate: true })
  void store.loadFacets()
  useResync(() => void store.load(state.value))
  // One subscription for the rows on screen, renewed when they change; one for the "new jobs" notice.
  const rowIds = computed(() => store.rows.map((row) => row.id).join(','))
  let stopRows = (): void => {}
  watch(rowIds, (ids) => {
    stopRows()
    stopRows = ids
      ? useSubscription(
        JobRowChangedDocument,
        () => ({ ids: ids.split(','), since: store.readSince }),
        (data) => store.applyRow(data.jobStatusChanged.job),
      )
      : () => {}
  }, { immediate: true })
  onScopeDispose(() => stopRows())
  useSubscription(JobListChangedDocument, () => ({}), (data) => {
    const event = data.jobStatusChanged
    store.noticeChange(event.change, event.previousStatus, event.job)
  })

  function navigate(next: JobListState): void {
    void router.push({ path: '/jobs', query: toQuery(next) })
  }

  /** A new filter or sort starts again at the first page. */
  function update(patch: Partial<JobListState>): void {
    store.previous = []
    navigate({ ...state.value, ...patch, after: null })
  }

  function sortBy(field: JobListState['sort']): void {
    const dir = state.value.sort === field && state.value.dir === 'DESC' ? 'ASC' : 'DESC'
    update({ sort: field, dir })
  }

  function nextPage(): void {
    if (!store.endCursor) return
    store.previous = [...store.previous, state.value.after]
    navigate({ ...state.value, after: store.endCursor })
  }

  function previousPage(): void {
    const stack = [...store.previous]
    const before = stack.pop() ?? null
    store.previous = stack
    navigate({ ...state.value, after: before })
  }

  function firstPage(): void {
    store.previous = []
    navigate({ ...state.value, after: null })
  }

  return { state, ...storeToRefs(store), update, sortBy, nextPage, previousPage, firstPage, reload: () => store.load(state.value) }
}
