// Reading evidence: payloads pretty-printed as JSON or XML and cut to a readable length, headers as pairs,
// the timing phases laid end to end for a waterfall drawn to scale.

export const PAYLOAD_SHOWN = 4000

export function prettyPayload(text: string): { text: string; kind: 'JSON' | 'XML' | 'text'; cut: boolean } {
  const raw = text.trim()
  let pretty = raw
  let kind: 'JSON' | 'XML' | 'text' = 'text'
  if (/^[[{]/.test(raw)) {
    try {
      pretty = JSON.stringify(JSON.parse(raw), null, 2)
      kind = 'JSON'
    } catch {
      // a truncated summary is no longer valid JSON: shown as it is
    }
  } else if (/^<[?!A-Za-z]/.test(raw)) {
    kind = 'XML'
    let depth = 0
    pretty = raw
      .replace(/>\s*</g, '>\n<')
      .split('\n')
      .map((line) => {
        if (/^<\//.test(line)) depth = Math.max(0, depth - 1)
        const out = '  '.repeat(depth) + line
        if (/^<[^!?/][^>]*>$/.test(line) && !line.endsWith('/>') && !/<\/[^>]+>$/.test(line)) depth += 1
        return out
      })
      .join('\n')
  }
  const cut = pretty.length > PAYLOAD_SHOWN
  return { text: cut ? `${pretty.slice(0, PAYLOAD_SHOWN)}\n…` : pretty, kind, cut }
}

/** Header pairs from the evidence's JSON (an object, or a list of [name, value] pairs). */
export function headerPairs(headers: unknown): [string, string][] {
  if (Array.isArray(headers)) return headers.filter((h): h is [string, string] => Array.isArray(h) && h.length >= 2).map(([k, v]) => [String(k), String(v)])
  if (headers && typeof headers === 'object') return Object.entries(headers as Record<string, unknown>).map(([k, v]) => [k, String(v)])
  return []
}

export interface Segment {
  label: string
  startMs: number
  ms: number
  left: string
  width: string
}

export function waterfall(timing: {
  dnsLookupMs: number | null; tcpConnectionMs: number | null; tlsHandshakeMs: number | null
  timeToFirstByteMs: number | null; contentDownloadMs: number | null; totalTimeMs: number
}): { segments: Segment[]; totalMs: number } {
  const parts: [string, number | null][] = [
    ['DNS', timing.dnsLookupMs], ['TCP', timing.tcpConnectionMs], ['TLS', timing.tlsHandshakeMs],
    ['Wait', timing.timeToFirstByteMs], ['Download', timing.contentDownloadMs],
  ]
  const reached = parts.filter((p): p is [string, number] => p[1] !== null)
  const sum = reached.reduce((a, [, ms]) => a + ms, 0)
  const totalMs = Math.max(timing.totalTimeMs, sum, 0.001)
  let start = 0
  const segments = reached.map(([label, ms]) => {
    const segment = {
      label, startMs: start, ms,
      left: `${((start / totalMs) * 100).toFixed(3)}%`,
      width: `${Math.max(0.4, (ms / totalMs) * 100).toFixed(3)}%`,
    }
    start += ms
    return segment
  })
  return { segments, totalMs }
}
