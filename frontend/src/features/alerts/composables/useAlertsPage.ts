// The alerts screen's data: the active alerts (firing or acknowledged, most urgent first) updated in place by
// `alertTriggered`, one page of the filtered history (filters and cursor in the URL), the silences.
import { computed, onScopeDispose, ref, shallowRef, watch } from 'vue'
import { useRoute, useRouter } from 'vue-router'
import { ApiError, request } from '@/api/client'
import { useResync, useSubscription } from '@/api/live'
import { useAnnouncer } from '@/composables/useAnnouncer'
import { throttle } from '@/composables/throttle'
import { ACTIVE_SHOWN, HISTORY_PAGE, byUrgency, fromQuery, toFilter, toQuery, type AlertHistoryState } from '../filters'
import {
  AlertChangedDocument,
  AlertListDocument,
  AlertServicesDocument,
  AlertSilencesDocument,
  ExpireSilenceDocument,
  type AlertRowFragment,
  type SilenceRowFragment,
} from '../queries'

function message(e: unknown): string {
  return e instanceof ApiError ? e.message : String(e)
}

export function useAlertsPage() {
  const route = useRoute()
  const router = useRouter()
  const { alert: shout } = useAnnouncer()
  const state = computed<AlertHistoryState>(() => fromQuery(route.query))

  const active = shallowRef<AlertRowFragment[]>([])
  const activeTotal = ref(0)
  const history = shallowRef<AlertRowFragment[]>([])
  const historyTotal = ref(0)
  const hasNextPage = ref(false)
  const endCursor = ref<string | null>(null)
  /** The filter (URL query) the history rows answer; differs from the URL's while a new filter loads. */
  const historyShows = ref<string | null>(null)
  const previous = ref<(string | null)[]>([])
  const silences = shallowRef<SilenceRowFragment[]>([])
  const includeExpired = ref(false)
  const services = shallowRef<{ id: string; slug: string; name: string }[]>([])
  const loaded = ref(false)
  const loading = ref(false)
  const error = ref<string | null>(null)
  const silenceError = ref<string | null>(null)
  let generation = 0

  let activeGeneration = 0
  async function loadActive(): Promise<void> {
    const mine = ++activeGeneration
    const data = await request(AlertListDocument, { filter: { active: true }, first: ACTIVE_SHOWN })
    if (mine !== activeGeneration) return
    active.value = [...data.alerts.nodes].sort(byUrgency)
    activeTotal.value = data.alerts.totalCount
  }
  let historyGeneration = 0
  async function loadHistory(): Promise<void> {
    const mine = ++historyGeneration // an answer to an earlier filter never overwrites the current one's
    const s = state.value
    const data = await request(AlertListDocument, { filter: toFilter(s), first: HISTORY_PAGE, after: s.after })
    if (mine !== historyGeneration) return
    history.value = data.alerts.nodes
    historyShows.value = new URLSearchParams(toQuery({ ...s, after: null })).toString()
    historyTotal.value = data.alerts.totalCount
    hasNextPage.value = data.alerts.pageInfo.hasNextPage
    endCursor.value = data.alerts.pageInfo.endCursor ?? null
  }
  async function loadSilences(): Promise<void> {
    try {
      silences.value = (await request(AlertSilencesDocument, { includeExpired: includeExpired.value })).silences
      silenceError.value = null
    } catch (e) {
      silenceError.value = message(e)
    }
  }
  async function load(): Promise<void> {
    const mine = ++generation
    loading.value = true
    try {
      await Promise.all([loadActive(), loadHistory(), loadSilences()])
      if (mine !== generation) return
      error.value = null
      loaded.value = true
    } catch (e) {
      if (mine === generation) error.value = message(e)
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  /** An alert changed (live or by an action here): move it in or out of the active list. */
  function apply(changed: AlertRowFragment): void {
    const rest = active.value.filter((a) => a.id !== changed.id)
    const was = rest.length < active.value.length
    const isActive = changed.status === 'FIRING' || changed.status === 'ACKNOWLEDGED'
    active.value = isActive ? [...rest, changed].sort(byUrgency) : rest
    activeTotal.value = Math.max(0, activeTotal.value + (isActive ? 1 : 0) - (was ? 1 : 0))
    // A row whose new state or severity the history's filter excludes leaves it (the throttled reload follows).
    const { states, severities } = state.value
    const fits = (!states.length || (changed.status !== null && changed.status !== undefined && states.includes(changed.status)))
      && (!severities.length || (changed.severity !== null && changed.severity !== undefined && severities.includes(changed.severity)))
    history.value = history.value.flatMap((a) => (a.id !== changed.id ? [a] : fits ? [changed] : []))
  }

  const historySoon = throttle(() => void loadHistory().catch((e) => (error.value = message(e))), 2000)
  onScopeDispose(historySoon.cancel)
  const activeSoon = throttle(() => void loadActive().catch((e) => (error.value = message(e))), 2000)
  onScopeDispose(activeSoon.cancel)

  useSubscription(AlertChangedDocument, () => ({}), (event) => {
    const changed = event.alertTriggered
    apply(changed)
    if (changed.status === 'FIRING' && changed.severity === 'CRITICAL') shout(`Critical alert: ${changed.summary}`)
    activeSoon() // the count and order as the server has them
    historySoon()
  })
  useResync(() => void load())
  watch(() => JSON.stringify(state.value), () => void loadHistory().catch((e) => (error.value = message(e))))
  watch(includeExpired, () => void loadSilences())
  void load()
  void request(AlertServicesDocument, {}).then((d) => (services.value = d.services), () => {})

  function update(patch: Partial<AlertHistoryState>): void {
    previous.value = []
    void router.replace({ query: toQuery({ ...state.value, after: null, ...patch }) })
  }
  function nextPage(): void {
    if (!endCursor.value) return
    previous.value = [...previous.value, state.value.after]
    void router.replace({ query: toQuery({ ...state.value, after: endCursor.value }) })
  }
  function previousPage(): void {
    const back = previous.value.slice(0, -1)
    const after = previous.value.at(-1) ?? null
    previous.value = back
    void router.replace({ query: toQuery({ ...state.value, after }) })
  }
  async function expire(id: string): Promise<void> {
    try {
      await request(ExpireSilenceDocument, { id })
      silenceError.value = null
      await loadSilences()
    } catch (e) {
      silenceError.value = message(e)
    }
  }

  return {
    state, active, activeTotal, history, historyShows, historyTotal, hasNextPage, silences, includeExpired, services, loaded, loading,
    error, silenceError, load, apply, update, nextPage, previousPage, expire, loadSilences,
  }
}
