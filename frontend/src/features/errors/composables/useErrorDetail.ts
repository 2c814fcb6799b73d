// One communication error with its evidence; copy and export for a ticket, and the "Report to provider"
// template (the server's TEXT export of this error).
import { ref, shallowRef, watch } from 'vue'
import { ApiError, request } from '@/api/client'
import { useAnnouncer } from '@/composables/useAnnouncer'
import { saveBlob } from '@/features/jobs/composables/useCsvExport'
import { ErrorDetailDocument, ExportErrorsDocument, type ErrorDetailQuery, type ExportFormat } from '../queries'

export function useErrorDetail(id: () => string) {
  const { announce } = useAnnouncer()
  const error = shallowRef<ErrorDetailQuery['communicationError'] | null>(null)
  const problem = ref<string | null>(null)
  const busy = ref<string | null>(null)
  const report = ref<string | null>(null)

  async function load(): Promise<void> {
    try {
      error.value = (await request(ErrorDetailDocument, { id: id() })).communicationError
      problem.value = null
    } catch (e) {
      problem.value = e instanceof ApiError ? e.message : String(e)
    }
  }
  watch(id, () => {
    report.value = null
    void load()
  }, { immediate: true })

  async function exported(format: ExportFormat) {
    return (await request(ExportErrorsDocument, { ids: [id()], format })).exportCommunicationErrors
  }

  async function run(what: string, action: () => Promise<void>): Promise<void> {
    busy.value = what
    problem.value = null
    try {
      await action()
    } catch (e) {
      problem.value = e instanceof ApiError ? e.message : (e as Error).message
    } finally {
      busy.value = null
    }
  }

  const exportJson = () => run('export', async () => {
    const file = await exported('JSON')
    saveBlob(new Blob([file.content], { type: file.contentType }), file.filename)
    announce(`Saved ${file.filename}`)
  })
  const copy = () => run('copy', async () => {
    const file = await exported('JSON')
    await navigator.clipboard.writeText(file.content)
    announce('The error and its evidence were copied to the clipboard')
  })
  const makeReport = () => run('report', async () => {
    report.value = (await exported('TEXT')).content
    announce('The report to the provider is ready below')
  })
  const copyReport = () => run('copy-report', async () => {
    if (report.value) await navigator.clipboard.writeText(report.value)
    announce('The report was copied to the clipboard')
  })

  return { error, problem, busy, report, exportJson, copy, makeReport, copyReport }
}
