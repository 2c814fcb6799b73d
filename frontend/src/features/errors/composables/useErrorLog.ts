// The error log bound to the URL: the route's query loads the page; a filter or page change pushes a new
// URL. There is no live event per stored error, so a reconnect or polling tick and "Refresh" reload it.
import { computed, watch } from 'vue'
import { useRoute, useRouter } from 'vue-router'
import { storeToRefs } from 'pinia'
import { useResync } from '@/api/live'
import { PAGE_SIZE, fromQuery, toQuery, type ErrorLogState } from '../filters'
import { useErrorsStore } from '../store'

export function useErrorLog() {
  const route = useRoute()
  const router = useRouter()
  const store = useErrorsStore()
  const state = computed<ErrorLogState>(() => fromQuery(route.query))
  const key = computed(() => JSON.stringify(toQuery(state.value)))
  watch(key, () => void store.load(state.value), { immediate: true })
  void store.loadServices()
  useResync(() => void store.load(state.value))

  function navigate(next: ErrorLogState): void {
    void router.push({ name: 'errors', query: toQuery(next) })
  }
  function update(patch: Partial<ErrorLogState>): void {
    store.previous = []
    navigate({ ...state.value, ...patch, after: null })
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
  const firstRow = computed(() => store.previous.length * PAGE_SIZE + 1)
  return { state, ...storeToRefs(store), update, nextPage, previousPage, firstRow, reload: () => store.load(state.value) }
}
