// One job with its retry chain, kept current by a subscription to that job and refetched after a
// reconnect; retry and cancel with the server's refusal message.
import { onScopeDispose, ref, watch, type Ref } from 'vue'
import { ApiError, request } from '@/api/client'
import { useResync, useSubscription } from '@/api/live'
import { useAnnouncer } from '@/composables/useAnnouncer'
import { JOB_STATUS } from '@/composables/status'
import { throttle } from '@/composables/throttle'
import { CancelJobDocument, JobDetailChangedDocument, JobDetailDocument, RetryJobDocument, type JobDetailQuery } from '../queries'

export function useJobDetail(id: Ref<string>) {
  const details = ref<JobDetailQuery['jobDetails'] | null>(null)
  const error = ref<string | null>(null)
  const { announce } = useAnnouncer()

  async function load(): Promise<void> {
    const wanted = id.value
    try {
      const data = await request(JobDetailDocument, { id: wanted })
      if (wanted !== id.value) return
      details.value = data.jobDetails
      error.value = null
    } catch (e) {
      if (wanted === id.value) error.value = e instanceof ApiError ? e.message : String(e)
    }
  }

  watch(id, () => {
    details.value = null
    void load()
  }, { immediate: true })
  useResync(() => void load())

  // Events carry the job's row, not its steps, stack trace or attempts: those are re-read, at most every 2 s.
  const reload = throttle(() => void load(), 2000)
  let stop = (): void => {}
  onScopeDispose(() => {
    stop()
    reload.cancel()
  })
  watch(id, (current) => {
    stop()
    stop = useSubscription(JobDetailChangedDocument, () => ({ id: current }), (data) => {
      const event = data.jobStatusChanged
      if (!details.value || event.jobId !== id.value) return
      const before = details.value.job.status
      const previous = details.value.job
      details.value = {
        ...details.value,
        job: { ...event.job, steps: previous.steps, errorStackTrace: event.job.errorStackTrace ?? previous.errorStackTrace },
        attempts: details.value.attempts.map((a) => (a.id === event.job.id ? { ...a, status: event.job.status } : a)),
      }
      if (before !== event.job.status) announce(`Job ${event.job.id.slice(0, 8)} is now ${JOB_STATUS[event.job.status].label}`)
      reload()
    })
  }, { immediate: true })

  /** Retry; returns the new attempt's id, or throws ApiError with the server's message. */
  async function retry(): Promise<{ id: string; created: boolean; attempt: number }> {
    const result = (await request(RetryJobDocument, { id: id.value })).retryJob
    await load()
    announce(result.created ? `Attempt ${result.job.attempt} queued` : `This job was already retried as attempt ${result.job.attempt}`)
    return { id: result.job.id, created: result.created, attempt: result.job.attempt }
  }

  async function cancel(reason: string): Promise<void> {
    const job = (await request(CancelJobDocument, { id: id.value, reason: reason.trim() || null })).cancelJob
    await load()
    announce(job.status === 'CANCELLED' ? 'Job cancelled' : 'Cancellation requested; the worker stops the job within seconds')
  }

  return { details, error, load, retry, cancel }
}
