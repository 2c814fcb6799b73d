// GraphQL over fetch: one POST per operation, the API key in the Authorization header.
import type { TypedDocument } from '@/generated/graphql'

export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly status = 200,
  ) {
    super(message)
  }
}

type KeySource = () => string | null
type Unauthorised = () => void

let keySource: KeySource = () => null
let onUnauthorised: Unauthorised = () => {}

/** Called once by the session store: where the key comes from and what a 401 does. */
export function configureClient(key: KeySource, unauthorised: Unauthorised): void {
  keySource = key
  onUnauthorised = unauthorised
}

export function authHeader(key = keySource()): Record<string, string> {
  return key ? { Authorization: `Bearer ${key}` } : {}
}

function operationName(query: string): string | undefined {
  return /^(?:query|mutation|subscription)\s+(\w+)/.exec(query)?.[1]
}

/** Run one operation; throws ApiError with the server's message and `extensions.code`. */
export async function request<R, V>(
  document: TypedDocument<R, V>,
  variables: V,
  options: { key?: string; signal?: AbortSignal } = {},
): Promise<R> {
  const key = options.key ?? keySource()
  // Signed out (or never signed in): a request could only be refused, so it is not sent.
  if (!key) throw new ApiError('not signed in', 'UNAUTHENTICATED', 401)
  let response: Response
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...authHeader(key) },
      body: JSON.stringify({ query: document, variables, operationName: operationName(document) }),
      signal: options.signal,
    })
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error
    throw new ApiError('the gateway cannot be reached; retrying when it is back', 'NETWORK_ERROR', 0)
  }
  let body: { data?: R; errors?: { message: string; extensions?: { code?: string } }[] }
  try {
    body = await response.json()
  } catch {
    throw new ApiError(`the gateway answered ${response.status} without a GraphQL body`, 'BAD_RESPONSE', response.status)
  }
  const first = body.errors?.[0]
  if (response.status === 401 || first?.extensions?.code === 'UNAUTHENTICATED') {
    if (!options.key) onUnauthorised()
    throw new ApiError(first?.message ?? 'the API key is not valid', 'UNAUTHENTICATED', response.status)
  }
  if (first) throw new ApiError(first.message, first.extensions?.code ?? 'INTERNAL_SERVER_ERROR', response.status)
  if (!body.data) throw new ApiError('the gateway answered without data', 'BAD_RESPONSE', response.status)
  return body.data
}
