// What the action said of its handoffs: the "Handoffs" table of its job summary (src/report.ts),
// one row per leader change, whose note says whether the stop was aimed at the standby's next
// lock poll ("aimed (held N ms)") or why not ("not aimed: <why>").

export interface SummaryHandoff {
  stop: string
  /** from the stop signal to the standby holding the lock */
  lockTakenMs?: number
  aimed: boolean
  /** a swap starts the new node after the stop: nothing to aim at, by design */
  swap: boolean
  note: string
}

/** "123 ms", "1.23 s", "1.2 min" (formatMs in src/duration.ts) -> ms */
export function parseMs(s: string): number | undefined {
  const m = /^([\d.]+) (ms|s|min)$/.exec(s.trim())
  if (!m) return undefined
  return Math.round(Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000))
}

export function summaryHandoffs(summary: string): SummaryHandoff[] {
  const lines = summary.split('\n')
  const at = lines.findIndex((l) => l.trim() === '### Handoffs')
  if (at < 0) return []
  const out: SummaryHandoff[] = []
  for (const l of lines.slice(at + 4)) {
    if (!l.startsWith('|')) break
    const cells = l
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((c) => c.trim())
    if (cells.length < 6) continue
    const note = cells[5]
    out.push({
      stop: cells[2],
      lockTakenMs: parseMs(cells[3]),
      aimed: note.startsWith('aimed'),
      swap: note.startsWith('not aimed: swap'),
      note
    })
  }
  return out
}
