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

// The lease loop when its connection dies (a Postgres restart, a failover): as the real node's
// loop() over database/sql and pgx (docs/node-facts.md §3), it learns it one refresh at a time
// and checks out a new connection on sql.ErrConnDone, the third refresh after the connection
// died; every error only logs, and it renews its own lease once the DB is back.
describe('lease lock: a dead lease connection', () => {
  interface Lease {
    getLease(initial: boolean): Promise<boolean>
    refresh(): Promise<void>
    release(expire?: boolean): Promise<void>
    timer: unknown
  }
  const { LeaseLock } = require('../../node-sim/lease.js') as {
    LeaseLock: new (o: Record<string, unknown>) => Lease
  }
  /** a Postgres whose sessions can be killed and which can refuse connections */
  function fakeDb(o: { leaseTakenBy?: () => boolean } = {}) {
    const conns: { n: number; _queryable: boolean; dead: boolean; sql: string[] }[] = []
    let down = false
    const db = {
      async connect() {
        if (down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432')
        const c = {
          n: conns.length + 1,
          _queryable: true,
          dead: false,
          sql: [] as string[],
          async query(sql: string) {
            if (!c._queryable) throw new Error('Client has encountered a connection error and is not queryable')
            if (c.dead) {
              c._queryable = false
              throw new Error('terminating connection due to administrator command')
            }
            c.sql.push(sql.split(' ')[0])
            return { rows: [], rowCount: sql.startsWith('INSERT') && !o.leaseTakenBy?.() ? 1 : 0 }
          },
          async end() {
            c._queryable = false
          }
        }
        conns.push(c)
        return c
      }
    }
    return {
      db,
      conns,
      restart: () => conns.forEach((c) => (c.dead = true)),
      setDown: (d: boolean) => (down = d)
    }
  }
  function newLease(db: unknown) {
    const lines: string[] = []
    const log = {
      named: () => log,
      debug: () => undefined,
      info: (m: string) => lines.push(`info ${m}`),
      warn: (m: string, f?: { err?: string }) => lines.push(`warn ${m}${f?.err ? `: ${f.err}` : ''}`),
      error: (m: string, f?: { err?: string }) => lines.push(`error ${m}${f?.err ? `: ${f.err}` : ''}`)
    }
    const lost: string[] = []
    const cfg = { version: '2.19.0', leaseDuration: 10_000, leaseRefreshInterval: 1000 }
    const appID = 'aaaaaaaa-1111-4111-8111-111111111111'
    const lease = new LeaseLock({ cfg, db, appID, log, onLost: async (m: string) => void lost.push(m) })
    lease.timer = 1 // refreshing, as after takeAndHold
    return { lease, lines, lost }
  }

  test('it keeps running, checks out a new connection on the third refresh, and renews once the DB is back', async () => {
    const pg = fakeDb()
    const { lease, lines, lost } = newLease(pg.db)
    expect(await lease.getLease(true)).toBe(true)
    pg.restart()
    pg.setDown(true)
    for (let i = 0; i < 3; i++) await lease.refresh()
    pg.setDown(false)
    await lease.refresh()
    expect(lines).toEqual([
      'error Error trying to refresh database lease: terminating connection due to administrator command',
      'error Error trying to refresh database lease: driver: bad connection',
      'warn DB connection was unexpectedly closed; checking out a new one: sql: connection is already closed',
      'warn Error trying to refresh connection: connect ECONNREFUSED 127.0.0.1:5432',
      'error Error trying to refresh database lease: sql: connection is already closed',
      'warn DB connection was unexpectedly closed; checking out a new one: sql: connection is already closed'
    ])
    expect(pg.conns.map((c) => c.n)).toEqual([1, 2])
    expect(pg.conns[1].sql).toContain('INSERT') // renewed on the new connection
    expect(lost).toEqual([])
  })

  test('another node took the lease while it was cut off: Fatal on the first refresh that reaches the DB', async () => {
    let taken = false
    const pg = fakeDb({ leaseTakenBy: () => taken })
    const { lease, lost } = newLease(pg.db)
    await lease.getLease(true)
    pg.restart()
    taken = true
    for (let i = 0; i < 3; i++) await lease.refresh()
    expect(lost).toEqual(['Another node has taken the lease, exiting immediately'])
  })

  test('a stop before it reconnected cannot release: the lease runs out', async () => {
    const pg = fakeDb()
    const { lease, lines } = newLease(pg.db)
    await lease.getLease(true)
    pg.restart()
    await lease.refresh()
    await lease.release()
    expect(lines.at(-1)).toBe('error Error trying to release lease on cancelled ctx: driver: bad connection')
    expect(pg.conns.flatMap((c) => c.sql)).not.toContain('UPDATE')
  })
})
