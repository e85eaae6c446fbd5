// When to send the leader its stop so that its lease release lands just before the waiting
// standby's next lock poll (docs/decisions.md, "The aimed stop"). Plain numbers only: the age of
// the standby's last poll comes from the DB server's own clock, so no two clocks are compared.

/** A waiting standby's lease polls come every refresh interval +/- this fraction (docs/node-facts.md). */
export const LEASE_POLL_JITTER = 0.1

/** Kept between the release and the earliest next poll: the release delay varies from stop to stop. */
export const AIM_MARGIN_MS = 40

interface AimInput {
  /** how long ago the standby's last lease poll started, as of now */
  pollAgeMs: number
  /** the lease refresh interval, which is also the standby's poll interval */
  intervalMs: number
  /** the poll interval's jitter as a fraction (the node uses 0.1) */
  jitter: number
  /** how long after the stop signal the leader's release lands (measured on the previous stop) */
  stopLatencyMs: number
  marginMs?: number
}

/**
 * How long to hold the stop, from now. The next poll comes no sooner than (1 - jitter) intervals
 * after the last; the release must land before that, less the margin. Undefined when this poll is
 * already too old for that (wait for the next one) or the numbers make no sense.
 */
export function aimDelay(a: AimInput): number | undefined {
  const margin = a.marginMs ?? AIM_MARGIN_MS
  const nums = [a.pollAgeMs, a.intervalMs, a.jitter, a.stopLatencyMs, margin]
  if (!nums.every(Number.isFinite) || a.intervalMs <= 0 || a.jitter < 0 || a.jitter >= 1) return undefined
  // a poll that started within the DB clock's granularity of now reads as slightly negative
  const age = Math.max(0, a.pollAgeMs)
  const delay = (1 - a.jitter) * a.intervalMs - age - Math.max(0, a.stopLatencyMs) - margin
  return delay >= 0 ? Math.floor(delay) : undefined
}
