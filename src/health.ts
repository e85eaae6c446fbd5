// The node's HTTP health (docs/node-facts.md §5): /readyz 200 means every service is ready;
// /health 204 comes from the start-up reporter during migrations and is NOT ready.

export interface HealthProbe {
  at: number
  /** HTTP status of /readyz, or undefined when nothing answered */
  readyz?: number
  /** HTTP status of /health */
  health?: number
  failing: string[]
  error?: string
}

export async function probe(baseUrl: string, timeoutMs = 1000, withHealth = true): Promise<HealthProbe> {
  const at = Date.now()
  const out: HealthProbe = { at, failing: [] }
  try {
    const r = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(timeoutMs) })
    out.readyz = r.status
    await r.arrayBuffer().catch(() => undefined)
  } catch (e) {
    out.error = errorText(e)
    return out
  }
  if (withHealth) {
    try {
      const r = await fetch(`${baseUrl}/health?failing`, {
        signal: AbortSignal.timeout(timeoutMs),
        headers: { accept: 'application/json' }
      })
      out.health = r.status
      const text = await r.text()
      out.failing = failingChecks(text)
    } catch (e) {
      out.error = errorText(e)
    }
  }
  return out
}

/** Names of failing checks in a JSON:API /health body. */
export function failingChecks(body: string): string[] {
  try {
    const j = JSON.parse(body) as { data?: Array<{ attributes?: { name?: string; status?: string } }> }
    return (j.data ?? []).filter((d) => d.attributes?.status === 'failing').map((d) => d.attributes?.name ?? '?')
  } catch {
    return []
  }
}

export function isReady(p: HealthProbe): boolean {
  return p.readyz === 200 && p.failing.length === 0 && (p.health === undefined || p.health === 200)
}

function errorText(e: unknown): string {
  const err = e as { cause?: { code?: string }; name?: string; message?: string }
  if (err.name === 'TimeoutError') return 'timeout'
  return err.cause?.code ?? err.message ?? String(e)
}
