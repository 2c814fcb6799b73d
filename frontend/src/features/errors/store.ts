// The service error log: one page of communication errors from the server (filtered and paged there),
// the cursors behind "Previous", and the services' names for the filter and the rows.
import { defineStore } from 'pinia'
import { ref, shallowRef } from 'vue'
import { ApiError, request } from '@/api/client'
import { ErrorLogDocument, ErrorServicesDocument, type ErrorRowFragment } from './queries'
import { PAGE_SIZE, toVariables, type ErrorLogState } from './filters'

export const useErrorsStore = defineStore('errors', () => {
  const rows = shallowRef<ErrorRowFragment[]>([])
  const totalCount = ref(0)
  const hasNextPage = ref(false)
  const endCursor = ref<string | null>(null)
  const previous = ref<(string | null)[]>([])
  const loading = ref(false)
  const loaded = ref(false)
  const error = ref<string | null>(null)
  const services = shallowRef<{ id: string; slug: string; name: string }[]>([])
  let generation = 0

  async function load(state: ErrorLogState): Promise<void> {
    const mine = ++generation
    loading.value = true
    try {
      const data = await request(ErrorLogDocument, { ...toVariables(state), first: PAGE_SIZE, after: state.after })
      if (mine !== generation) return
      rows.value = data.communicationErrors.errors
      totalCount.value = data.communicationErrors.totalCount
      hasNextPage.value = data.communicationErrors.hasNextPage
      endCursor.value = data.communicationErrors.endCursor
      error.value = null
      loaded.value = true
    } catch (e) {
      if (mine === generation) error.value = e instanceof ApiError ? e.message : String(e)
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  async function loadServices(): Promise<void> {
    try {
      services.value = (await request(ErrorServicesDocument, {})).services
    } catch {
      // The filter falls back to the slugs in the URL; the log itself reports errors.
    }
  }

  return { rows, totalCount, hasNextPage, endCursor, previous, loading, loaded, error, services, load, loadServices }
})
