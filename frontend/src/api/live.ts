// One graphql-transport-ws connection for the whole app: reconnects with backoff, tells every screen to
// refetch after a reconnect (events may have been missed), shows its state, and polls when it cannot
// connect (a proxy that blocks websockets).
import { createClient, type Client } from 'graphql-ws'
import { ref, readonly, onScopeDispose, getCurrentScope } from 'vue'
import type { TypedDocument } from '@/generated/graphql'
import { backoffDelay } from './backoff'

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'polling'

/** After this many failed connection attempts in a row, screens poll until the socket is back. */
export const POLL_AFTER_FAILURES = 2
export const POLL_INTERVAL_MS = 5000

const state = ref<LiveState>('connecting')
const connectedAt = ref<number | null>(null)
let client: Client | null = null
let failures = 0
let everConnected = false
let pollTimer: ReturnType<typeof setInterval> | null = null
const refreshers = new Set<() => void>()

function refreshAll(): void {
  for (const refresh of refreshers) refresh()
}

function setPolling(on: boolean): void {
  if (on && !pollTimer) {
    pollTimer = setInterval(refreshAll, POLL_INTERVAL_MS)
  } else if (!on && pollTimer) {
    clearInterval(pollTimer)
    pollTimer = null
  }
}

function wsUrl(): string {
  const { protocol, host } = window.location
  return `${protocol === 'https:' ? 'wss' : 'ws'}://${host}/graphql`
}

/** Open the socket with this key (closing any earlier one). */
export function connectLive(key: string, url = wsUrl()): void {
  disconnectLive()
  failures = 0
  everConnected = false
  state.value = 'connecting'
  client = createClient({
    url,
    connectionParams: { Authorization: `Bearer ${key}` },
    lazy: false,
    keepAlive: 10_000,
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => true,
    retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, backoffDelay(retries))),
    on: {
      connected: () => {
        const resync = everConnected || failures > 0
        everConnected = true
        failures = 0
        connectedAt.value = Date.now()
        state.value = 'live'
        setPolling(false)
        if (resync) refreshAll()
      },
      closed: () => {
        if (!client) return
        failures += 1
        connectedAt.value = null
        const polling = failures >= POLL_AFTER_FAILURES
        state.value = polling ? 'polling' : everConnected ? 'reconnecting' : 'connecting'
        setPolling(polling)
      },
    },
  })
}

export function disconnectLive(): void {
  const old = client
  client = null
  setPolling(false)
  if (old) void old.dispose()
}

export const liveState = readonly(state)

/**
 * Subscribe for the life of the calling scope (component or effect scope). `onData` gets every event;
 * the subscription is re-sent by graphql-ws after a reconnect.
 */
export function useSubscription<R, V>(
  document: TypedDocument<R, V>,
  variables: () => V,
  onData: (data: R) => void,
): () => void {
  let stop: (() => void) | null = null
  const start = (): void => {
    stop?.()
    if (!client) return
    stop = client.subscribe<R>(
      { query: document as string, variables: variables() as Record<string, unknown> },
      {
        next: (value) => value.data && onData(value.data as R),
        error: () => {},
        complete: () => {},
      },
    )
  }
  start()
  const dispose = (): void => {
    stop?.()
    stop = null
  }
  if (getCurrentScope()) onScopeDispose(dispose)
  return dispose
}

/** Register a refetch that runs after every reconnect and on each polling tick; released with the scope. */
export function useResync(refresh: () => void): void {
  refreshers.add(refresh)
  if (getCurrentScope()) onScopeDispose(() => refreshers.delete(refresh))
}

/**
 * A subscription that runs once to its end (e.g. a connection test): unlike `useSubscription` it reports the
 * server's refusal and its completion, and is not re-sent after a reconnect. Returns the function that stops it.
 */
export function runOnce<R, V>(
  document: TypedDocument<R, V>,
  variables: V,
  handlers: { next: (data: R) => void; error: (message: string, code: string) => void; complete: () => void },
): () => void {
  if (!client) {
    handlers.error('the live connection is not open; try again when it is', 'NETWORK_ERROR')
    return () => {}
  }
  let done = false
  const stop = client.subscribe<R>(
    { query: document as string, variables: variables as Record<string, unknown> },
    {
      next: (value) => {
        const first = value.errors?.[0] as { message: string; extensions?: { code?: string } } | undefined
        if (first) {
          done = true
          handlers.error(first.message, first.extensions?.code ?? 'INTERNAL_SERVER_ERROR')
        } else if (value.data) handlers.next(value.data as R)
      },
      error: (error) => {
        if (done) return
        done = true
        const list = Array.isArray(error) ? (error as { message: string; extensions?: { code?: string } }[]) : null
        if (list?.[0]) handlers.error(list[0].message, list[0].extensions?.code ?? 'INTERNAL_SERVER_ERROR')
        else handlers.error('the live connection dropped during the test', 'NETWORK_ERROR')
      },
      complete: () => {
        if (done) return
        done = true
        handlers.complete()
      },
    },
  )
  return () => {
    done = true
    stop()
  }
}
