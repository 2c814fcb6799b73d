// The management overview's figures: health summary and the 7-day job trend, loaded together.
import { defineStore } from 'pinia'
import { ref } from 'vue'
import { ApiError, request } from '@/api/client'
import { OverviewDocument, type OverviewQuery } from './queries'

export const TREND_DAYS = 7

export const useOverviewStore = defineStore('overview', () => {
  const data = ref<OverviewQuery | null>(null)
  const error = ref<string | null>(null)
  const loading = ref(false)
  const loadedAt = ref<number | null>(null)
  let inFlight: Promise<void> | null = null

  async function load(): Promise<void> {
    if (inFlight) return inFlight
    loading.value = true
    inFlight = (async () => {
      try {
        data.value = await request(OverviewDocument, { days: TREND_DAYS })
        error.value = null
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

  return { data, error, loading, loadedAt, load }
})
