// The simulator's pure parts with a fake clock: the rate limiter (ulule/limiter's fixed window),
// the sliding 60 s count the bench reads, and the HealthChecker knobs.
import { describe, expect, test } from '@jest/globals'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
interface Limiter {
  take(key: string): { reached: boolean; remaining: number; resetAt: number }
}
const { createRateLimiter, maxInWindow } = require('../../node-sim/requests.js') as {
  createRateLimiter(o: { limit: number; periodMs: number; now: () => number }): Limiter
  maxInWindow(times: number[], windowMs?: number): number
}
interface Health {
  start(): void
  ready(): boolean
  checks(): { name: string; status: string; output: string }[]
}
const { createHealth } = require('../../node-sim/health.js') as {
  createHealth(o: {
    failing?: string[]
    never?: string[]
    later?: { name: string; afterMs: number }
    lagMs?: number
    now: () => number
  }): Health
}

describe('rate limiter', () => {
  test('1000 per window per key; the window starts at the key first request and every request counts', () => {
    let t = 5000
    const rl = createRateLimiter({ limit: 1000, periodMs: 60000, now: () => t })
    const reached = []
    for (let i = 0; i < 1002; i++) {
      reached.push(rl.take('172.17.0.1').reached)
      t += 10 // 1002 requests in ~10 s
    }
    expect(reached.indexOf(true)).toBe(1000)
    expect(rl.take('10.0.0.9').reached).toBe(false) // another address has its own budget
    t = 5000 + 59999
    expect(rl.take('172.17.0.1').reached).toBe(true) // still the first window
    t = 5000 + 60000
    expect(rl.take('172.17.0.1')).toMatchObject({ reached: false, remaining: 999, resetAt: 125000 })
  })
})

describe('request counts', () => {
  test('the most requests any 60 s window saw, sliding', () => {
    expect(maxInWindow([])).toBe(0)
    expect(maxInWindow([0, 1000, 59999, 60000, 60001])).toBe(4)
    expect(maxInWindow([0, 30000, 61000, 62000, 89999])).toBe(4)
  })
})

describe('health checks', () => {
  const failing = (h: Health) =>
    h
      .checks()
      .filter((c) => c.status === 'failing')
      .map((c) => c.name)

  test('degraded: ready, one named check failing for good with an output', () => {
    const h = createHealth({ failing: ['EVM.1337.HeadTracker'], now: () => 0 })
    expect(h.ready()).toBe(true)
    expect(failing(h)).toEqual(['EVM.1337.HeadTracker'])
    expect(h.checks().find((c) => c.name === 'EVM.1337.HeadTracker')?.output).toMatch(/no new heads/)
    const names = h.checks().map((c) => c.name)
    expect(names).toEqual([...names].sort())
  })

  test('a check that starts failing later, and a /readyz lag, count from the web server start', () => {
    let t = 0
    const h = createHealth({ later: { name: 'EVM.1337.LogPoller', afterMs: 5000 }, lagMs: 2000, now: () => t })
    t = 100
    h.start()
    expect([h.ready(), failing(h)]).toEqual([false, ['EVM.1337']])
    t = 2100
    expect([h.ready(), failing(h)]).toEqual([true, []])
    t = 5100
    expect([h.ready(), failing(h)]).toEqual([true, ['EVM.1337.LogPoller']])
  })

  test('never-ready: not ready and failing', () => {
    const h = createHealth({ never: ['EVM.1337.HeadTracker'], now: () => 0 })
    expect([h.ready(), failing(h)]).toEqual([false, ['EVM.1337.HeadTracker']])
  })
})
