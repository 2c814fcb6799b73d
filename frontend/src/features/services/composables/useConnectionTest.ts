// One connection test run from the dialog: phases arrive as they complete, then the result; earlier
// results of the service for comparison; the report exported as JSON or PDF by the server.
import { computed, onScopeDispose, ref, shallowRef } from 'vue'
import { ApiError, request } from '@/api/client'
import { runOnce } from '@/api/live'
import { useAnnouncer } from '@/composables/useAnnouncer'
import { saveBlob } from '@/features/jobs/composables/useCsvExport'
import {
  ConnectionTestServiceDocument,
  ExportConnectionTestDocument,
  RunConnectionTestDocument,
  type ExportFormat,
  type TestPhaseFragment,
  type TestResultFragment,
} from '../queries'

/** The phases a test goes through, in order, with the names people read. */
export const PHASES: { name: string; label: string }[] = [
  { name: 'dns', label: 'DNS lookup' },
  { name: 'tcp_connect', label: 'TCP connect' },
  { name: 'tls_handshake', label: 'TLS handshake' },
  { name: 'time_to_first_byte', label: 'First byte' },
  { name: 'content_download', label: 'Download' },
]
export const EARLIER = 5

export function phaseLabel(name: string): string {
  const label = PHASES.find((p) => p.name === name)?.label ?? name.replace(/_/g, ' ')
  return label.charAt(0).toUpperCase() + label.slice(1)
}

export type TestState = 'idle' | 'running' | 'done' | 'failed'

// A test starts by itself only when asked for with the Test button, not when its address is opened or
// reloaded (a reload must not run another test).
let requested: string | null = null
export function requestTest(slug: string): void {
  requested = slug
}
function takeRequest(slug: string): boolean {
  const asked = requested === slug
  requested = null
  return asked
}

export function useConnectionTest(service: () => string) {
  const { announce } = useAnnouncer()
  const info = shallowRef<{ id: string; slug: string; name: string; endpoint: string } | null>(null)
  const earlier = shallowRef<TestResultFragment[]>([])
  const phases = shallowRef<TestPhaseFragment[]>([])
  const result = shallowRef<TestResultFragment | null>(null)
  const state = ref<TestState>('idle')
  const error = ref<string | null>(null)
  const exporting = ref<ExportFormat | null>(null)
  let stop = (): void => {}
  onScopeDispose(() => stop())

  async function loadInfo(): Promise<void> {
    try {
      const data = await request(ConnectionTestServiceDocument, { service: service(), first: EARLIER + 1 })
      info.value = data.service
      earlier.value = data.connectionTests.results.filter((r) => r.id !== result.value?.id).slice(0, EARLIER)
    } catch (e) {
      error.value = e instanceof ApiError ? e.message : String(e)
    }
  }

  function run(): void {
    stop()
    phases.value = []
    result.value = null
    error.value = null
    state.value = 'running'
    announce('Connection test started')
    stop = runOnce(RunConnectionTestDocument, { service: service() }, {
      next: (data) => {
        const update = data.runConnectionTest
        if (update.phase) {
          phases.value = [...phases.value, update.phase]
          announce(`${phaseLabel(update.phase.name)} ${update.phase.status?.toLowerCase() ?? ''}`)
        }
        if (update.result) {
          result.value = update.result
          // The result carries the final list of phases (retries included).
          if (update.result.phases.length) phases.value = update.result.phases
        }
      },
      error: (message) => {
        state.value = 'failed'
        error.value = message
      },
      complete: () => {
        state.value = result.value ? 'done' : 'failed'
        if (!result.value) error.value = 'the test ended without a result'
        else announce(`Connection test ${result.value.success ? 'passed' : 'failed'}: ${result.value.summary}`)
        void loadInfo()
      },
    })
  }

  async function exportAs(format: ExportFormat): Promise<void> {
    if (!result.value) return
    exporting.value = format
    error.value = null
    try {
      const file = (await request(ExportConnectionTestDocument, { id: result.value.id, format })).exportConnectionTest
      const body = file.base64 ? Uint8Array.from(atob(file.content), (c) => c.charCodeAt(0)) : file.content
      saveBlob(new Blob([body], { type: file.contentType }), file.filename)
      announce(`Saved ${file.filename}`)
    } catch (e) {
      error.value = e instanceof ApiError ? e.message : String(e)
    } finally {
      exporting.value = null
    }
  }

  /** Completed share of the phases a test goes through (100 % once the result is in). */
  const progress = computed(() => {
    if (result.value) return 100
    const seen = new Set(phases.value.map((p) => p.name).filter((n) => PHASES.some((p) => p.name === n)))
    return Math.round((seen.size / PHASES.length) * 100)
  })

  return {
    info, earlier, phases, result, state, error, exporting, progress, loadInfo, run, exportAs,
    wasRequested: () => takeRequest(service()),
  }
}
