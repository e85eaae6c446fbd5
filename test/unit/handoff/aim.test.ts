import { describe, expect, test } from '@jest/globals'
import { aimDelay, AIM_MARGIN_MS } from '../../../src/handoff/aim.js'

// A waiting standby polls the lease every interval with +/-10% jitter (docs/node-facts.md): the
// next poll comes no sooner than 0.9 intervals after the last. The stop, sent after `aimDelay`,
// releases `stopLatencyMs` later; that must land before the earliest next poll, less the margin.
const base = { intervalMs: 1000, jitter: 0.1, stopLatencyMs: 100 }

describe("aimDelay: how long to hold the stop, from the age of the standby's last lease poll", () => {
  test.each([
    // [what, poll age, interval, jitter, stop latency, delay]
    ['poll seen at once', 0, 1000, 0.1, 100, 900 - 100 - AIM_MARGIN_MS],
    ['poll seen 60 ms late (a 10 ms sleep plus a slow query)', 60, 1000, 0.1, 100, 900 - 60 - 100 - AIM_MARGIN_MS],
    ['poll seen 300 ms ago', 300, 1000, 0.1, 100, 900 - 300 - 100 - AIM_MARGIN_MS],
    ['exactly on the edge: stop now', 900 - 100 - AIM_MARGIN_MS, 1000, 0.1, 100, 0],
    ['no jitter', 100, 1000, 0, 100, 1000 - 100 - 100 - AIM_MARGIN_MS],
    ['10 s interval', 2000, 10_000, 0.1, 250, 9000 - 2000 - 250 - AIM_MARGIN_MS],
    ['instant release', 0, 1000, 0.1, 0, 900 - AIM_MARGIN_MS],
    ['a fractional age rounds the hold down', 60.5, 1000, 0.1, 100, 899 - 60 - 100 - AIM_MARGIN_MS]
  ])('%s', (_what, pollAgeMs, intervalMs, jitter, stopLatencyMs, delay) => {
    const d = aimDelay({ pollAgeMs, intervalMs, jitter, stopLatencyMs })
    expect(d).toBe(delay)
    // the release lands before the earliest next poll, with the margin to spare
    expect(pollAgeMs + d! + stopLatencyMs).toBeLessThanOrEqual((1 - jitter) * intervalMs - AIM_MARGIN_MS)
  })

  test.each([
    ['poll too old to land before the next one', 800],
    ['one tick past the edge', 900 - 100 - AIM_MARGIN_MS + 1],
    ['older than a whole interval (the standby is not polling as it should)', 1500]
  ])('%s: no aim at this poll (wait for the next)', (_what, pollAgeMs) => {
    expect(aimDelay({ ...base, pollAgeMs })).toBeUndefined()
  })

  test('a release slower than the interval cannot be aimed', () => {
    expect(aimDelay({ ...base, pollAgeMs: 0, stopLatencyMs: 950 })).toBeUndefined()
  })

  test('a poll age from the future (clock granularity) counts as just now', () => {
    expect(aimDelay({ ...base, pollAgeMs: -3 })).toBe(aimDelay({ ...base, pollAgeMs: 0 }))
  })

  test('bad numbers give no aim rather than a wild delay', () => {
    expect(aimDelay({ ...base, pollAgeMs: NaN })).toBeUndefined()
    expect(aimDelay({ ...base, pollAgeMs: 0, intervalMs: 0 })).toBeUndefined()
    expect(aimDelay({ ...base, pollAgeMs: 0, stopLatencyMs: NaN })).toBeUndefined()
  })
})
