// Downloads the filtered job list as CSV. The server pages through the whole list and streams it, so
// the export holds every matching job, not only the rows on screen.
import { ref } from 'vue'
import { authHeader } from '@/api/client'
import { useAnnouncer } from '@/composables/useAnnouncer'
import { exportParams, type JobListState } from '../filters'

export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob)
  const link = document.createElement('a')
  link.href = url
  link.download = filename
  document.body.append(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

export function useCsvExport() {
  const busy = ref(false)
  const error = ref<string | null>(null)
  const { announce } = useAnnouncer()

  async function exportCsv(state: JobListState): Promise<void> {
    busy.value = true
    error.value = null
    try {
      const response = await fetch(`/api/jobs.csv?${exportParams(state)}`, { headers: authHeader() })
      if (!response.ok) {
        const body = await response.json().catch(() => null)
        throw new Error(body?.errors?.[0]?.message ?? `the export failed (HTTP ${response.status})`)
      }
      const name = /filename="([^"]+)"/.exec(response.headers.get('content-disposition') ?? '')?.[1] ?? 'jobs.csv'
      saveBlob(await response.blob(), name)
      announce(`Exported ${response.headers.get('x-row-count') ?? 'the'} jobs to ${name}`)
    } catch (e) {
      error.value = (e as Error).message
    } finally {
      busy.value = false
    }
  }

  return { busy, error, exportCsv }
}
