// What fires now, for the whole app: the nav link's count and the banner of critical alerts. Loaded once
// signed in, refreshed (at most once a second) on every `alertTriggered` event and after a reconnect.
import { defineStore } from 'pinia'
import { ref, shallowRef } from 'vue'
import { ApiError, request } from '@/api/client'
import { FiringAlertsDocument, type FiringAlertsQuery } from './queries'

export const BANNER_SHOWN = 3

export const useFiringStore = defineStore('firing-alerts', () => {
  const firing = ref<number | null>(null)
  const critical = shallowRef<FiringAlertsQuery['critical']['nodes']>([])
  const criticalCount = ref(0)
  const error = ref<string | null>(null)
  let generation = 0

  async function load(): Promise<void> {
    const mine = ++generation
    try {
      const data = await request(FiringAlertsDocument, { first: BANNER_SHOWN })
      if (mine !== generation) return
      firing.value = data.firing.totalCount
      critical.value = data.critical.nodes
      criticalCount.value = data.critical.totalCount
      error.value = null
    } catch (e) {
      if (mine === generation) error.value = e instanceof ApiError ? e.message : String(e)
    }
  }

  return { firing, critical, criticalCount, error, load }
})
