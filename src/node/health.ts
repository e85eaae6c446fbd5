// The node's HTTP health (docs/node-facts.md §5): plain /readyz 200 means every service is ready
// (its `?full` form answers 200 even when not, so only the plain status is read); newer nodes
// add /public-readyz, the same status and nothing else, which stays open where a node puts its
// detailed routes behind authentication (docs/node-facts.md §5, chainlink PR #23339): it is asked
// first, /readyz where it is missing. /health 200 or 207 lists the checks, and a long-running node
// often has one failing for good, so a failing check is evidence, not a veto. /health 204 comes
// from the start-up reporter during migrations and is NOT ready. 401 or 403 (a route behind
// authentication) says nothing about the node: no evidence, never a failure. Every route shares
// the node's rate limit: a 429 says nothing either.

export interface Check {
  name: string
  output: string
}

export interface HealthProbe {
  at: number
  /** HTTP status of the readiness route that answered (`readyRoute`), or undefined when nothing answered */
  readyz?: number
  /** which readiness route gave `readyz` */
  readyRoute?: ReadyRoute
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

/** The readiness routes, preferred first: status only where the node has it, else the plain /readyz. */
export type ReadyRoute = '/public-readyz' | '/readyz'
export const READY_ROUTES: readonly ReadyRoute[] = ['/public-readyz', '/readyz']

type ReadyKind = 'ready' | 'not-ready' | 'unknown'

/** 401 or 403: the route is behind authentication; its answer says nothing about the node */
export const isAuthStatus = (status: number | undefined): boolean => status === 401 || status === 403

/**
 * Pure: what one answer of a readiness route says. `elsewhere`: this route gives no evidence on
 * this node, ask the other one: 401/403 (behind authentication), or /public-readyz 404 (a node
 * older than the route; the start-up reporter of a node that has it answers 503 there, and an
 * older reporter's 404 on every path is answered again by /readyz). 429 and a timeout are
 * unknown; anything else that is not 200 (503, 404 of /readyz, 204, a refused connection) is
 * not ready.
 */
export function judgeReadyAnswer(route: ReadyRoute, a: { status?: number; error?: string }): ReadyKind | 'elsewhere' {
  if (a.status === 200) return 'ready'
  if (isAuthStatus(a.status) || (route === '/public-readyz' && a.status === 404)) return 'elsewhere'
  if (a.status === 429 || a.error === 'timeout') return 'unknown'
  return 'not-ready'
}

interface Readiness {
  kind: ReadyKind
  /** the route whose answer this is */
  route: ReadyRoute
  status?: number
  headers?: Headers
  error?: string
  /** the route to ask first next time: the one that gave evidence on this node */
  next: ReadyRoute
}

/**
 * One look at the node's readiness: `prefer` first; when its answer gives no evidence, the other
 * route at once (if `more()` allows another request). Both without evidence (both behind
 * authentication): unknown, never "not ready".
 */
export async function readiness(
  prefer: ReadyRoute,
  get: (route: ReadyRoute) => Promise<Answer>,
  more: () => Promise<boolean> = async () => true
): Promise<Readiness> {
  const a = await get(prefer)
  const k = judgeReadyAnswer(prefer, a)
  if (k !== 'elsewhere') return { kind: k, route: prefer, ...a, next: prefer }
  const other = READY_ROUTES.find((r) => r !== prefer)!
  if (!(await more())) return { kind: 'unknown', route: prefer, ...a, next: other }
  const b = await get(other)
  const k2 = judgeReadyAnswer(other, b)
  if (k2 === 'elsewhere') return { kind: 'unknown', route: other, ...b, next: prefer }
  return { kind: k2, route: other, ...b, next: other }
}

/** GET a readiness route (plain: its status is the readiness). */
export async function probeReady(baseUrl: string, timeoutMs = 2000, route: ReadyRoute = '/readyz'): Promise<Answer> {
  try {
    const r = await fetch(`${baseUrl}${route}`, { signal: AbortSignal.timeout(timeoutMs) })
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
  const r = await readiness(READY_ROUTES[0], (route) => probeReady(baseUrl, timeoutMs, route))
  out.readyz = r.status
  out.readyRoute = r.route
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

/** Ready: the readiness route 200. Failing /health checks are judged by the health gate against the leader's. */
export function isReady(p: HealthProbe): boolean {
  return p.readyz === 200
}

/** "/public-readyz 200" or "/readyz 503": what a probe's readiness route answered */
export function describeReady(p: { readyz?: number; readyRoute?: ReadyRoute; error?: string }): string {
  const route = p.readyRoute ?? '/readyz'
  if (p.readyz === undefined) return `${route} did not answer (${p.error ?? 'no request made'})`
  return `${route} ${p.readyz}${isAuthStatus(p.readyz) ? ' (behind authentication on both readiness routes)' : ''}`
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
