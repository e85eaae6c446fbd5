// The node's HTTP health (docs/node-facts.md §5): plain /readyz 200 means every service is ready
// (its `?full` form answers 200 even when not, so only the plain status is read); /health
// 200 or 207 lists the checks, and a long-running node often has one failing for good, so a
// failing check is evidence, not a veto. /health 204 comes from the start-up reporter during
// migrations and is NOT ready. Every route shares the node's rate limit: a 429 says nothing.

export interface Check {
  name: string
  output: string
}

export interface HealthProbe {
  at: number
  /** HTTP status of /readyz, or undefined when nothing answered */
  readyz?: number
  /** HTTP status of /health */
  health?: number
  /** names of the failing checks */
  failing: string[]
  /** the failing checks with their output, when /health answered with its JSON body */
  checks?: Check[]
  error?: string
}

interface Answer {
  status?: number
  headers?: Headers
  error?: string
}

/** GET /readyz (plain: its status is the readiness). */
export async function probeReady(baseUrl: string, timeoutMs = 2000): Promise<Answer> {
  try {
    const r = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(timeoutMs) })
    await r.arrayBuffer().catch(() => undefined)
    return { status: r.status, headers: r.headers }
  } catch (e) {
    return { error: errorText(e) }
  }
}

/** GET /health?failing as JSON: the failing checks with their output (undefined unless 200/207 with a body). */
export async function probeHealth(baseUrl: string, timeoutMs = 2000): Promise<Answer & { checks?: Check[] }> {
  try {
    const r = await fetch(`${baseUrl}/health?failing`, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { accept: 'application/json' }
    })
    const text = await r.text()
    const checks = r.status === 200 || r.status === 207 ? parseChecks(text) : undefined
    return { status: r.status, headers: r.headers, checks }
  } catch (e) {
    return { error: errorText(e) }
  }
}

export async function probe(baseUrl: string, timeoutMs = 1000, withHealth = true): Promise<HealthProbe> {
  const at = Date.now()
  const out: HealthProbe = { at, failing: [] }
  const r = await probeReady(baseUrl, timeoutMs)
  out.readyz = r.status
  if (r.error !== undefined) {
    out.error = r.error
    return out
  }
  if (withHealth) {
    const h = await probeHealth(baseUrl, timeoutMs)
    out.health = h.status
    out.error = h.error
    out.checks = h.checks
    out.failing = (h.checks ?? []).map((c) => c.name)
  }
  return out
}

/** Failing checks (name and output) in a JSON:API /health body; undefined when it is not one. */
export function parseChecks(body: string): Check[] | undefined {
  try {
    const j = JSON.parse(body) as {
      data?: Array<{ attributes?: { name?: string; status?: string; output?: string } }>
    }
    if (!j || typeof j !== 'object' || !Array.isArray(j.data)) return undefined
    return j.data
      .filter((d) => d.attributes?.status === 'failing')
      .map((d) => ({ name: d.attributes?.name ?? '?', output: d.attributes?.output ?? '' }))
  } catch {
    return undefined
  }
}

/** Names of failing checks in a JSON:API /health body. */
export function failingChecks(body: string): string[] {
  return (parseChecks(body) ?? []).map((c) => c.name)
}

/** Ready: plain /readyz 200. Failing /health checks are judged by the health gate against the leader's. */
export function isReady(p: HealthProbe): boolean {
  return p.readyz === 200
}

/** "name (output)" for a summary line */
export function describeChecks(checks: Check[]): string {
  return checks.map((c) => (c.output ? `${c.name} (${c.output})` : c.name)).join(', ')
}

function errorText(e: unknown): string {
  const err = e as { cause?: { code?: string }; name?: string; message?: string }
  if (err.name === 'TimeoutError') return 'timeout'
  return err.cause?.code ?? err.message ?? String(e)
}
