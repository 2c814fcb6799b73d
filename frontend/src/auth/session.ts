// Who is signed in: the API key (sessionStorage only: gone when the tab closes), its role and tenant.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { ApiError, configureClient, request } from '@/api/client'
import { connectLive, disconnectLive } from '@/api/live'
import { ViewerDocument, type Role, type ViewerQuery } from '@/generated/graphql'
import { STORAGE_KEY } from './storage'

const ROLE_RANK: Record<Role, number> = { VIEWER: 1, OPERATOR: 2, ADMIN: 3 }

export type Viewer = ViewerQuery['viewer']

const VIEWER_KEY = 'b2x.viewer'

/** Role and tenant of the tab's key as last confirmed by the gateway (so a reload needs no round trip first). */
function readViewer(key: string | null): Viewer | null {
  if (!key) return null
  try {
    const cached = JSON.parse(sessionStorage.getItem(VIEWER_KEY) ?? 'null') as { key: string; viewer: Viewer } | null
    return cached && cached.key === key.slice(0, 17) ? cached.viewer : null
  } catch {
    return null
  }
}

export const useSession = defineStore('session', () => {
  let live = false
  const key = ref<string | null>(sessionStorage.getItem(STORAGE_KEY))
  const viewer = ref<Viewer | null>(readViewer(key.value))
  const notice = ref<string | null>(null)

  configureClient(
    () => key.value,
    () => signOut('Your API key is no longer valid (revoked or expired). Sign in again.'),
  )

  function remember(plain: string, who: Viewer): void {
    key.value = plain
    viewer.value = who
    notice.value = null
    sessionStorage.setItem(STORAGE_KEY, plain)
    sessionStorage.setItem(VIEWER_KEY, JSON.stringify({ key: plain.slice(0, 17), viewer: who }))
  }

  async function signIn(candidate: string): Promise<void> {
    const trimmed = candidate.trim()
    if (!trimmed) throw new ApiError('paste an API key (it starts with b2x_)', 'BAD_USER_INPUT')
    remember(trimmed, (await request(ViewerDocument, {}, { key: trimmed })).viewer)
    live = true
    connectLive(trimmed)
  }

  /** Re-check a key kept from earlier in this tab; false when there is none or it stopped working. */
  async function restore(): Promise<boolean> {
    if (!key.value) return false
    if (viewer.value) {
      // Known from earlier in this tab (a reload): show the page at once, check the key meanwhile.
      if (!live) {
        const plain = key.value
        live = true
        connectLive(plain)
        request(ViewerDocument, {}, { key: plain }).then(
          (data) => remember(plain, data.viewer),
          (error) => {
            if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') signOut('Your API key is no longer valid. Sign in again.')
          },
        )
      }
      return true
    }
    try {
      await signIn(key.value)
      return true
    } catch (error) {
      if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') {
        signOut('Your API key is no longer valid (revoked or expired). Sign in again.')
        return false
      }
      throw error
    }
  }

  function signOut(message: string | null = null): void {
    key.value = null
    viewer.value = null
    live = false
    sessionStorage.removeItem(VIEWER_KEY)
    notice.value = message
    sessionStorage.removeItem(STORAGE_KEY)
    disconnectLive()
  }

  function can(role: Role): boolean {
    return viewer.value ? ROLE_RANK[viewer.value.role] >= ROLE_RANK[role] : false
  }

  /** Why the signed-in key may not take an action that needs `role`, or null when it may. */
  function whyNot(role: Role): string | null {
    if (can(role)) return null
    const name = viewer.value?.name ?? 'this key'
    return `Needs the ${role.toLowerCase()} role; your key “${name}” is a ${viewer.value?.role.toLowerCase() ?? 'viewer'}.`
  }

  const signedIn = computed(() => viewer.value !== null)
  return { key, viewer, notice, signedIn, signIn, restore, signOut, can, whyNot }
})
