// The bench's view of the node's port, taken from the nodes' own timestamps instead of a prober.
// An external prober polling /readyz every 50 ms sends 1200 requests a minute: over the node's
// rate limit (1000 a minute per client address, every route, docs/node-facts.md §11), and from
// the same address as the action under test with host networking, where all local traffic is
// 127.0.0.1. So the bench sends the node nothing while it measures: each container's log says
// when its web server started serving ("Listening and serving HTTP", ms precision) and when it
// stopped (its "Shutting down due to" line, or Docker's `die` event when it was killed), and the
// port is up while some container serving on it is between the two.

/** One container's time on the node's port: from its web server's start to its stop (open while it runs). */
export interface Span {
  from: number
  to?: number
}

export interface Window {
  ms: number
  /** false when the port was still dark at the end */
  recovered: boolean
}

/**
 * Longest time in [start, end] that no span covers: from the end of one container's serving to
 * the start of the next. A hole still open at `end` counts as not recovered.
 */
export function longestGap(spans: Span[], start: number, end: number): Window {
  const sorted = spans.filter((s) => (s.to ?? Infinity) > start && s.from < end).sort((a, b) => a.from - b.from)
  let reach = start
  let best: Window = { ms: 0, recovered: true }
  for (const s of sorted) {
    const to = s.to ?? Infinity
    if (to <= reach) continue
    if (s.from > reach && s.from - reach > best.ms) best = { ms: s.from - reach, recovered: true }
    reach = to
    if (reach >= end) break
  }
  if (reach < end && end - reach >= best.ms) best = { ms: end - reach, recovered: false }
  return best
}

/** True when some span covers `t`. */
export const servingAt = (spans: Span[], t: number): boolean => spans.some((s) => s.from <= t && (s.to ?? Infinity) > t)
