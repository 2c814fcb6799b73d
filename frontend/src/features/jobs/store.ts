// The job table's page: rows from the server (filtered, sorted, paged there), live row updates applied
// at most once per animation frame, and the cursors behind "Previous".
import { defineStore } from 'pinia'
import { computed, ref, shallowRef } from 'vue'
import { ApiError, request } from '@/api/client'
import type { JobStatus } from '@/generated/graphql'
import { FrameBatcher } from '@/composables/frameBatcher'
import { matches, toVariables, type JobListState } from './filters'
import { JobFacetsDocument, JobListDocument, type JobRowFragment } from './queries'

/** How far before a read of the rows their subscription resumes (browser and server clocks differ a little). */
const SINCE_MARGIN_MS = 10_000

export const useJobsStore = defineStore('jobs', () => {
  const rows = shallowRef<JobRowFragment[]>([])
  const totalCount = ref(0)
  const hasNextPage = ref(false)
  const endCursor = ref<string | null>(null)
  const counts = ref<Partial<Record<JobStatus, number>>>({})
  const loading = ref(false)
  const error = ref<string | null>(null)
  const newJobs = ref(0)
  const facets = ref<{ jobTypes: string[]; tenantIds: string[] }>({ jobTypes: [], tenantIds: [] })
  /** Cursors of the pages before this one (null = the first page). */
  const previous = ref<(string | null)[]>([])
  const loadedState = ref<JobListState | null>(null)
  /** Where the rows' subscription resumes: shortly before the rows on screen were read. */
  const readSince = ref<string | null>(null)
  let index = new Map<string, number>()
  const unseen = new Set<string>()
  let generation = 0

  const batcher = new FrameBatcher<string, JobRowFragment>((batch) => {
    let next: JobRowFragment[] | null = null
    for (const [id, job] of batch) {
      const at = index.get(id)
      if (at === undefined) continue
      next ??= rows.value.slice()
      next[at] = job
    }
    if (next) rows.value = next
  })

  async function load(state: JobListState): Promise<void> {
    const mine = ++generation
    loading.value = true
    // Changes after this moment reach the rows' subscription even if it starts after the read (its `since`);
    // the margin covers a browser clock a little behind or ahead of the server's.
    const asked = new Date(Date.now() - SINCE_MARGIN_MS).toISOString()
    try {
      const data = await request(JobListDocument, { ...toVariables(state), first: state.size, after: state.after })
      if (mine !== generation) return
      readSince.value = asked
      rows.value = data.jobs.nodes
      index = new Map(data.jobs.nodes.map((job, i) => [job.id, i]))
      totalCount.value = data.jobs.totalCount
      hasNextPage.value = data.jobs.pageInfo.hasNextPage
      endCursor.value = data.jobs.pageInfo.endCursor
      counts.value = Object.fromEntries(data.jobStatusCounts.map((c) => [c.status, c.count]))
      newJobs.value = 0
      unseen.clear()
      error.value = null
      loadedState.value = state
    } catch (e) {
      if (mine === generation) error.value = e instanceof ApiError ? e.message : String(e)
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  async function loadFacets(): Promise<void> {
    try {
      facets.value = (await request(JobFacetsDocument, {})).jobFacets
    } catch {
      // The filters still work by typing; the list of choices is a convenience.
    }
  }

  /** A change of a row on screen: applied on the next animation frame, the latest per row winning. */
  function applyRow(job: JobRowFragment): void {
    if (index.has(job.id)) batcher.push(job.id, job)
  }

  /** A job created or moved into a filtered status elsewhere: counted for a "new jobs" notice on page 1. */
  function noticeChange(
    change: string,
    previousStatus: JobStatus | null,
    job: { id: string; status: JobStatus; jobType: string; tenantId: string },
  ): void {
    const state = loadedState.value
    if (!state || state.after || index.has(job.id) || unseen.has(job.id) || !matches(state, job)) return
    if (change === 'created' || (previousStatus !== null && !matches(state, { ...job, status: previousStatus }))) {
      unseen.add(job.id)
      newJobs.value = unseen.size
    }
  }

  const firstRow = computed(() => previous.value.length * (loadedState.value?.size ?? 0) + 1)
  return {
    rows, totalCount, hasNextPage, endCursor, counts, loading, error, newJobs, facets, previous, firstRow,
    readSince, load, loadFacets, applyRow, noticeChange,
  }
})
