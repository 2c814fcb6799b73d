// The overview's quick action: retry the failed jobs of the last 24 hours that nobody has retried yet.
import { ref } from 'vue'
import { ApiError, request } from '@/api/client'
import { useAnnouncer } from '@/composables/useAnnouncer'
import { RetryFailedJobsDocument } from '../queries'

export const BULK_LIMIT = 50

export function useRetryFailed(after: () => void) {
  const busy = ref(false)
  const error = ref<string | null>(null)
  const result = ref<string | null>(null)
  const { announce } = useAnnouncer()

  async function retryFailed(): Promise<boolean> {
    busy.value = true
    error.value = null
    try {
      const since = new Date(Date.now() - 24 * 3600_000).toISOString()
      const r = (await request(RetryFailedJobsDocument, { filter: { createdAfter: since }, limit: BULK_LIMIT })).retryFailedJobs
      result.value =
        `${r.retried} failed ${r.retried === 1 ? 'job' : 'jobs'} retried; ${r.skipped} had already been retried` +
        (r.errors.length ? `; ${r.errors.length} refused: ${r.errors.join('; ')}` : '.')
      announce(result.value)
      after()
      return true
    } catch (e) {
      error.value = e instanceof ApiError ? e.message : String(e)
      return false
    } finally {
      busy.value = false
    }
  }

  return { busy, error, result, retryFailed }
}
