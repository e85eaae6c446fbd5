/** Parses `1500ms`, `30s`, `5m`, `1h` or plain seconds (`45`, `2.5`) into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(text.trim())
  if (!m) return undefined
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h']
  return Math.round(Number(m[1]) * unit)
}

/** Go-style durations as Chainlink writes them in TOML and env (`10s`, `1m30s`, `500ms`). */
export function parseGoDuration(text: string): number | undefined {
  const s = text.trim()
  if (!s) return undefined
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  let total = 0
  let consumed = 0
  for (const m of s.matchAll(re)) {
    if (m.index !== consumed) return undefined
    total += Number(m[1]) * units[m[2]]
    consumed += m[0].length
  }
  if (consumed !== s.length || consumed === 0) return parseDuration(s)
  return Math.round(total)
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 120_000) return `${(ms / 1000).toFixed(2)} s`
  return `${(ms / 60_000).toFixed(1)} min`
}
