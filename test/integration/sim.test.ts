// The node simulator (test/node-sim) against the real bed: Postgres, Docker Engine, the registry's
// images. Each test proves one behaviour of docs/node-facts.md that the action relies on, the way
// an operator would check it: what listens, what the logs say, exit codes, and what Postgres shows.
import { afterAll, afterEach, describe, expect, test } from '@jest/globals'
import { mkdtempSync, writeFileSync, chmodSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createDb,
  docker,
  removeContainers,
  simImage,
  sleep,
  uniqueName,
  waitFor,
  type TestDb
} from '../support/bed.js'
import {
  FAST_LEASE,
  FAST_LEASE_V1,
  FAST_TOML,
  WAITING_ADVISORY,
  WAITING_LEASE,
  advisoryHolders,
  heartbeats,
  query,
  runSim,
  startSim,
  writerRuns
} from '../support/sim.js'

const prefix = uniqueName('simtest')
let seq = 0
const name = (s: string) => `${prefix}-${++seq}-${s}`
const dbs: TestDb[] = []
const tmpDirs: string[] = []
async function freshDb(): Promise<TestDb> {
  const db = await createDb('simt')
  dbs.push(db)
  return db
}
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const gapMs = (a: Date, b: Date) => b.getTime() - a.getTime()

afterEach(() => removeContainers(prefix))
afterAll(async () => {
  await removeContainers(prefix)
  for (const db of dbs) await db.drop()
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true })
})

async function leaseRow(db: TestDb) {
  const rows = await query<{ client_id: string; live: boolean }>(
    db,
    'SELECT client_id, expires_at > now() AS live FROM lease_lock'
  )
  return rows[0]
}

describe('lease lock (v2)', () => {
  test('two nodes on one DB: only the leader listens; SIGTERM hands over within a refresh (default lease settings)', async () => {
    const db = await freshDb()
    const a = await startSim({ name: name('a'), tag: '2.20.0', db })
    const aId = await a.appId()
    await a.waitLog(/Listening and serving HTTP on 0\.0\.0\.0:6688/)
    const b = await startSim({ name: name('b'), tag: '2.20.0', db })
    await b.waitLog(new RegExp(`${esc(WAITING_LEASE)} logger=LeaseLock tryCount=0`))
    await b.waitLog(/tryCount=1\b/) // still waiting one refresh interval later

    // The leader serves, the standby has nothing on 6688
    expect(await a.http('/readyz')).toBe(200)
    const health = await fetch(`http://${await a.ip()}:6688/health`)
    expect(health.status).toBe(200)
    const checks = ((await health.json()) as { data: { id: string; attributes: { status: string } }[] }).data
    expect(checks.map((c) => c.id)).toEqual([...checks.map((c) => c.id)].sort())
    expect(checks.every((c) => c.attributes.status === 'passing')).toBe(true)
    expect(await b.http('/health')).toBe('refused')
    expect(await b.http('/readyz')).toBe('refused')

    // Postgres: the lease row and the connections carry the leader's app id
    expect(await leaseRow(db)).toEqual({ client_id: aId, live: true })
    const names = await query<{ application_name: string }>(
      db,
      'SELECT application_name FROM pg_stat_activity WHERE datname = current_database()'
    )
    expect(names.map((n) => n.application_name)).toContain(`Chainlink 2.20.0 |App|${aId}`)

    await a.container.stop({ t: 10 })
    expect(await a.exitCode()).toBe(0)
    const aLogs = await a.logs()
    expect(aLogs).toContain('Shutting down due to terminated signal received...')
    expect(aLogs).toMatch(/Graceful shutdown time: \d/)
    const bId = await b.appId()
    await b.waitLog(/Listening and serving HTTP/)
    expect(await b.http('/readyz')).toBe(200)
    await waitFor('standby writes', async () => (await heartbeats(db)).some((h) => h.app_id === bId))

    // One writer at a time, and the gap is a poll (<=1.1s) plus the boot (0.8s), far below the 10s lease
    const runs = writerRuns(await heartbeats(db))
    expect(runs.map((r) => r.appId)).toEqual([aId, bId])
    const gap = gapMs(runs[0].last, runs[1].first)
    expect(gap).toBeGreaterThan(800)
    expect(gap).toBeLessThan(3000)
  })

  test('SIGKILL releases nothing: the standby takes over only when the lease expires; a stopped standby exits 1', async () => {
    const db = await freshDb()
    const a = await startSim({ name: name('a'), tag: '2.20.0', db, env: FAST_LEASE })
    const aId = await a.appId()
    const b = await startSim({ name: name('b'), tag: '2.20.0', db, env: FAST_LEASE })
    await b.waitLog(/tryCount=0/)
    const c = await startSim({ name: name('c'), tag: '2.20.0', db, env: FAST_LEASE })
    await c.waitLog(/tryCount=0/)

    // A standby stopped while waiting (issue #6205)
    await c.container.stop({ t: 10 })
    expect(await c.exitCode()).toBe(1)
    expect(await c.logs()).toContain('opening db: failed to take initial lease on database: stopped')

    await a.container.kill()
    expect(await a.exitCode()).toBe(137)
    expect((await leaseRow(db)).live).toBe(true) // not released
    const bId = await b.appId(15000)
    const runs = writerRuns(
      await waitFor('standby writes', async () => {
        const rows = await heartbeats(db)
        return rows.some((h) => h.app_id === bId) && rows
      })
    )
    expect(runs.map((r) => r.appId)).toEqual([aId, bId])
    // lease 3s, last refresh at most 0.5s before the kill, boot 0.3s
    const gap = gapMs(runs[0].last, runs[1].first)
    expect(gap).toBeGreaterThan(2500)
    expect(gap).toBeLessThan(5000)
    // the waiting line follows the node's schedule: 0, 1, 2, 4 (powers of two), never 3
    const tries = [
      ...(await b.logs()).matchAll(/waiting for lease to expire\.\.\. logger=LeaseLock tryCount=(\d+)/g)
    ].map((m) => Number(m[1]))
    expect(tries.slice(0, 4)).toEqual([0, 1, 2, 4])
    expect(tries).not.toContain(3)
  })
})

describe('version gate and db commands', () => {
  test('an older version refuses a newer DB; db rollback with the newer binary + node_versions fix lets it start', async () => {
    const db = await freshDb()
    const a = await startSim({ name: name('new'), tag: '2.20.0', db, env: FAST_LEASE })
    await a.appId()
    await a.container.stop({ t: 10 })
    expect(await a.exitCode()).toBe(0)

    const old = await startSim({ name: name('old'), tag: '2.19.0', db, env: FAST_LEASE })
    expect(await old.exitCode()).toBe(1)
    const oldLogs = await old.logs()
    expect(oldLogs).toContain(
      'Application version (2.19.0) is lower than database version (2.20.0). Only Chainlink 2.20.0 or higher can be run on this database'
    )
    // it took the lease first (StartUpHealthReport runs after the lock) and exited without releasing it
    expect(oldLogs.indexOf('Starting StartUpHealthReport')).toBeLessThan(oldLogs.indexOf('Application version'))
    const kept = await leaseRow(db)
    expect(kept.live).toBe(true)
    expect(kept.client_id).not.toBe(await a.appId())
    expect(await query(db, 'SELECT version FROM node_versions')).toEqual([{ version: '2.20.0' }])

    const ver = await runSim({ name: name('ver'), tag: '2.20.0', db, cmd: ['node', 'db', 'version'] })
    expect(ver).toMatchObject({ code: 0, out: expect.stringContaining('Database version: 256') })
    const oldRollback = await runSim({
      name: name('rb-old'),
      tag: '2.19.0',
      db,
      cmd: ['node', 'db', 'rollback', '250']
    })
    expect(oldRollback.code).toBe(1)
    expect(oldRollback.out).toContain('migration 256 is not known to this binary')
    const rollback = await runSim({ name: name('rb'), tag: '2.20.0', db, cmd: ['local', 'db', 'rollback', '250'] })
    expect(rollback.code).toBe(0)
    const tables = await query<{ t255: string | null; t250: string | null }>(
      db,
      "SELECT to_regclass('sim_m0255')::text AS t255, to_regclass('sim_m0250')::text AS t250"
    )
    expect(tables).toEqual([{ t255: null, t250: 'sim_m0250' }])
    // rollback never touches node_versions (§10 step 4)
    expect(await query(db, 'SELECT version FROM node_versions')).toEqual([{ version: '2.20.0' }])
    await query(db, "UPDATE node_versions SET version = '2.19.0'")

    const again = await startSim({ name: name('old2'), tag: '2.19.0', db, env: FAST_LEASE })
    await again.appId()
    expect(await again.logs()).toContain('goose: no migrations to run. current version: 250')
    // db commands take no lock: they run while a leader holds the lease
    const live = await runSim({ name: name('ver2'), tag: '2.19.0', db, cmd: ['node', 'db', 'version'] })
    expect(live).toMatchObject({ code: 0, out: expect.stringContaining('Database version: 250') })
    expect(await again.http('/readyz')).toBe(200)
  })

  test('db status: one line per migration the binary ships, its newest last, on a DB ahead of it', async () => {
    const db = await freshDb()
    const a = await startSim({ name: name('st-new'), tag: '2.20.0', db, env: FAST_LEASE })
    await a.appId()
    const st = await runSim({ name: name('st'), tag: '2.19.0', db, cmd: ['node', 'db', 'status'] })
    expect(st.code).toBe(0)
    const lines = st.out.split('\n').filter((l) => l.includes('version:'))
    expect(lines.map((l) => /version:(\d+), path:([^,]+), type:sql, state:(\w+)/.exec(l)?.slice(1))).toEqual([
      ['1', '0001_initial.sql', 'applied'],
      ['78', '0078_only_one_version.sql', 'applied'],
      ['82', '0082_lease_lock.sql', 'applied'],
      ['95', '0095_sim_m0095.sql', 'applied'],
      ['150', '0150_sim_m0150.sql', 'applied'],
      ['165', '0165_sim_m0165.sql', 'applied'],
      ['240', '0240_sim_m0240.sql', 'applied'],
      ['241', '0241_sim_m0241.sql', 'applied'],
      ['250', '0250_sim_m0250.sql', 'applied']
    ])
  })
})

describe('v1 locking modes', () => {
  const advisoryFast = { ...FAST_LEASE_V1, ADVISORY_LOCK_CHECK_INTERVAL: '500ms' }

  test('advisorylock (1.2.0 default): pg_locks shows the lock on the leader backend; SIGTERM unlocks it', async () => {
    const db = await freshDb()
    const a = await startSim({ name: name('a'), tag: '1.2.0', db, env: advisoryFast })
    const aId = await a.appId()
    expect(await advisoryHolders(db)).toEqual([`Chainlink 1.2.0 |App|${aId}`])
    expect(await query(db, 'SELECT * FROM lease_lock')).toEqual([]) // no lease in this mode
    const b = await startSim({ name: name('b'), tag: '1.2.0', db, env: advisoryFast })
    await b.waitLog(new RegExp(`${esc(WAITING_ADVISORY)} logger=AdvisoryLock tryCount=0`))
    expect(await b.http('/health')).toBe('refused')

    await a.container.stop({ t: 10 })
    expect(await a.exitCode()).toBe(0)
    const bId = await b.appId()
    expect(await advisoryHolders(db)).toEqual([`Chainlink 1.2.0 |App|${bId}`])
    await waitFor('standby writes', async () => (await heartbeats(db)).some((h) => h.app_id === bId))
    const runs = writerRuns(await heartbeats(db))
    expect(runs.map((r) => r.appId)).toEqual([aId, bId])
    expect(gapMs(runs[0].last, runs[1].first)).toBeLessThan(2000)
  })

  test('dual (1.13.0 default): the leader holds lease and advisory lock; a standby waits on the lease first', async () => {
    const db = await freshDb()
    const a = await startSim({ name: name('a'), tag: '1.13.0', db, env: advisoryFast })
    const aId = await a.appId()
    expect(await leaseRow(db)).toEqual({ client_id: aId, live: true })
    expect(await advisoryHolders(db)).toEqual([`Chainlink 1.13.0 |App|${aId}`])
    const b = await startSim({ name: name('b'), tag: '1.13.0', db, env: advisoryFast })
    await b.waitLog(/tryCount=1\b/)
    const bLogs = await b.logs()
    expect(bLogs).toContain(WAITING_LEASE)
    expect(bLogs).not.toContain(WAITING_ADVISORY)

    // v1 dual: a graceful stop unlocks the advisory lock but leaves the lease to expire (§6)
    await a.container.stop({ t: 10 })
    expect(await a.exitCode()).toBe(0)
    expect(await advisoryHolders(db)).toEqual([])
    const bId = await b.appId(15000)
    expect(await leaseRow(db)).toEqual({ client_id: bId, live: true })
    expect(await advisoryHolders(db)).toEqual([`Chainlink 1.13.0 |App|${bId}`])
    await waitFor('standby writes', async () => (await heartbeats(db)).some((h) => h.app_id === bId))
    const runs = writerRuns(await heartbeats(db))
    expect(runs.map((r) => r.appId)).toEqual([aId, bId])
    expect(gapMs(runs[0].last, runs[1].first)).toBeGreaterThan(2000)
  })
})

describe('configuration', () => {
  test('invalid lock settings fail start-up with the node messages', async () => {
    const db = await freshDb()
    const [mode, refresh] = await Promise.all([
      runSim({
        name: name('mode'),
        tag: '1.13.0',
        db,
        cmd: ['local', 'node'],
        env: { DATABASE_LOCKING_MODE: 'bogus' }
      }),
      runSim({
        name: name('refresh'),
        tag: '2.20.0',
        db,
        cmd: ['node', 'start'],
        env: { CL_CONFIG: "[Database.Lock]\nLeaseDuration = '2s'\nLeaseRefreshInterval = '1500ms'\n" }
      })
    ])
    expect(mode).toMatchObject({
      code: 1,
      out: expect.stringContaining('unrecognised value for DATABASE_LOCKING_MODE: bogus')
    })
    expect(refresh).toMatchObject({
      code: 1,
      out: expect.stringContaining('refresh interval must be <= half the lease duration')
    })
    expect(await query(db, "SELECT to_regclass('lease_lock') AS t")).toEqual([{ t: null }]) // none got as far as the lock
  })

  test('v2 TOML: node -config … -secrets … start reads [Database.Lock], [WebServer] and the secrets URL', async () => {
    const db = await freshDb()
    const dir = mkdtempSync(join(tmpdir(), 'simcfg-'))
    tmpDirs.push(dir)
    chmodSync(dir, 0o755)
    writeFileSync(
      join(dir, 'config.toml'),
      "[Database.Lock]\nEnabled = true\nLeaseDuration = '4s'\nLeaseRefreshInterval = '1s'\n[WebServer]\nHTTPPort = 7788\n",
      { mode: 0o644 }
    )
    writeFileSync(join(dir, 'secrets.toml'), `[Database]\nURL = '${db.bridgeUrl}'\n`, { mode: 0o644 })
    const a = await startSim({
      name: name('toml'),
      tag: '2.20.0',
      db,
      env: { CL_DATABASE_URL: '', SIM_BOOT_MS: '300' },
      binds: [`${dir}:/chainlink:ro`],
      cmd: [
        'node',
        '-config',
        '/chainlink/config.toml',
        '-secrets',
        '/chainlink/secrets.toml',
        'start',
        '-p',
        '/chainlink/pw',
        '-a',
        '/chainlink/api'
      ]
    })
    const aId = await a.appId()
    await a.waitLog(/Listening and serving HTTP on 0\.0\.0\.0:7788/)
    expect(await a.http('/readyz', 7788)).toBe(200)
    expect(await a.http('/readyz', 6688)).toBe('refused')
    const [row] = await query<{ client_id: string; left: number }>(
      db,
      'SELECT client_id, extract(epoch FROM expires_at - now())::float AS left FROM lease_lock'
    )
    expect(row.client_id).toBe(aId)
    expect(row.left).toBeGreaterThan(2.5) // LeaseDuration 4s refreshed every 1s, not the env's or the 10s default
    expect(row.left).toBeLessThanOrEqual(4.1)
  })
})

describe('fault images', () => {
  test('exit-after-lock exits 2 holding the lease; crash-before-lock exits 1 before touching the DB', async () => {
    const db = await freshDb()
    const crash = await runSim({
      name: name('crash'),
      tag: '2.20.0-crash-before-lock',
      db,
      cmd: ['local', 'node'],
      env: FAST_LEASE
    })
    expect(crash.code).toBe(1)
    expect(await query(db, "SELECT to_regclass('lease_lock') AS t")).toEqual([{ t: null }])
    const exit = await runSim({
      name: name('exit'),
      tag: '2.20.0-exit-after-lock',
      db,
      cmd: ['local', 'node'],
      env: FAST_LEASE
    })
    expect(exit.code).toBe(2)
    expect((await leaseRow(db)).live).toBe(true)
  })

  test('slow-migrations: during migrations only the StartUpHealthReport answers (/health 204, /readyz 503)', async () => {
    const db = await freshDb()
    const a = await startSim({
      name: name('slow'),
      tag: '2.20.0-slow-migrations',
      db,
      // each migration held 1.5 s: the window is wide enough for a loaded machine's requests
      env: { ...FAST_LEASE, SIM_SLOW_MIGRATION_MS: '1500' }
    })
    await a.waitLog(/Starting StartUpHealthReport/)
    // the node logs the line, then listens (core/services/health.go: ListenAndServe in a goroutine)
    let first = await a.http('/health')
    for (let i = 0; first === 'refused' && i < 20; i++) {
      await sleep(100)
      first = await a.http('/health')
    }
    expect(first).toBe(204)
    expect(await a.http('/readyz')).toBe(503)
    expect(await a.http('/v2/jobs')).toBe(503)
    await a.waitLog(/StartUpHealthReport shutdown complete/, 40000)
    await a.appId()
    await a.waitLog(/Listening and serving HTTP/)
    expect(await a.http('/readyz')).toBe(200)
    const logs = await a.logs()
    const order = [
      'Starting StartUpHealthReport',
      'goose: OK   0256',
      'StartUpHealthReport shutdown complete',
      'Starting Chainlink Node 2.20.0 at commit',
      'Chainlink booted in',
      'Listening and serving HTTP'
    ].map((l) => logs.indexOf(l))
    expect(order.every((i) => i >= 0)).toBe(true)
    expect(order).toEqual([...order].sort((x, y) => x - y))
  })

  test('never-ready: /readyz 503 and /health 207 with a failing check', async () => {
    const db = await freshDb()
    const a = await startSim({ name: name('nr'), tag: '2.20.0-never-ready', db, env: FAST_LEASE })
    await a.appId()
    await a.waitLog(/Listening and serving HTTP/)
    expect(await a.http('/readyz')).toBe(503)
    const res = await fetch(`http://${await a.ip()}:6688/health?failing`)
    expect(res.status).toBe(207)
    expect(
      ((await res.json()) as { data: { attributes: { status: string } }[] }).data.map((c) => c.attributes.status)
    ).toEqual(['failing'])
  })

  test('migrate-then-crash leaves a migrated DB and node_versions behind and never serves', async () => {
    const db = await freshDb()
    const a = await startSim({ name: name('mtc'), tag: '2.20.0-migrate-then-crash', db, env: FAST_LEASE })
    expect(await a.exitCode()).toBe(1)
    expect(await a.logs()).not.toContain('Chainlink booted')
    expect(await query(db, 'SELECT version FROM node_versions')).toEqual([{ version: '2.20.0' }])
    expect(await query(db, 'SELECT max(version_id)::int AS v FROM goose_migrations')).toEqual([{ v: 256 }])
  })

  test('ignore-sigterm needs SIGKILL; a shutdown over the grace period exits 255 after releasing the lease', async () => {
    const db = await freshDb()
    const stubborn = await startSim({ name: name('ign'), tag: '2.20.0-ignore-sigterm', db, env: FAST_LEASE })
    await stubborn.appId()
    await stubborn.container.stop({ t: 2 })
    expect(await stubborn.exitCode()).toBe(137)
    expect(await stubborn.logs()).not.toContain('Shutting down')

    const db2 = await freshDb()
    const slow = await startSim({
      name: name('grace'),
      tag: '2.20.0',
      db: db2,
      env: { ...FAST_LEASE, SIM_STOP_MS: '3000', CL_CONFIG: `ShutdownGracePeriod = '1s'\n${FAST_TOML}` }
    })
    await slow.appId()
    await slow.container.stop({ t: 10 })
    expect(await slow.exitCode()).toBe(255)
    expect(await slow.logs()).toMatch(/\[CRIT\] Shutdown grace period of 1s exceeded, closing DB and exiting\.\.\./)
    expect((await leaseRow(db2)).live).toBe(false)
  })

  test('lose-db: refresh errors only log; after the lease expires a standby leads while the old node still runs, then it exits 1', async () => {
    const db = await freshDb()
    const a = await startSim({
      name: name('lose'),
      tag: '2.20.0-lose-db',
      db,
      env: { ...FAST_LEASE, SIM_LOSE_DB_EVERY_MS: '1000', SIM_LOSE_DB_OUTAGE_MS: '5000' }
    })
    const aId = await a.appId()
    const b = await startSim({ name: name('standby'), tag: '2.20.0', db, env: FAST_LEASE })
    await a.waitLog(/Error trying to refresh database lease/)
    expect(await a.http('/readyz')).toBe(200) // keeps running without its lease
    const bId = await b.appId(15000)
    expect((await a.container.inspect()).State.Running).toBe(true) // the split-brain window (§9)
    expect(await a.exitCode()).toBe(1)
    expect(await a.logs()).toContain('Another node has taken the lease, exiting immediately')
    expect(await leaseRow(db)).toEqual({ client_id: bId, live: true })
    expect(aId).not.toBe(bId)
  })
})

describe('what every real node does (docs/node-facts.md §11)', () => {
  interface Check {
    id: string
    attributes: { name: string; status: string; output: string }
  }
  const checksOf = async (res: Response) => ((await res.json()) as { data: Check[] }).data
  const failingOf = (checks: Check[]) =>
    checks.filter((c) => c.attributes.status === 'failing').map((c) => c.attributes.name)

  test('rate limit: 1000 requests a minute per client address on every route, health routes included; the 1001st is 429', async () => {
    const db = await freshDb()
    const a = await startSim({ name: name('rl'), tag: '2.20.0', db, env: FAST_LEASE })
    await a.waitLog(/Listening and serving HTTP/)
    const base = `http://${await a.ip()}:6688`
    const paths = ['/readyz', '/health', '/public-readyz', '/health.txt', '/readyz?full', '/v2/jobs']
    const statuses: number[] = []
    for (let i = 0; i < 1000; i++) statuses.push((await fetch(`${base}${paths[i % paths.length]}`)).status)
    expect(statuses.filter((s) => s === 429)).toEqual([])
    for (const p of ['/readyz', '/health', '/public-readyz', '/health.txt']) {
      const res = await fetch(`${base}${p}`)
      expect({ p, status: res.status, body: await res.text() }).toEqual({ p, status: 429, body: 'Limit exceeded' })
    }
    // the sim's own count, read outside the limit: every request of this address in one window
    const counts = await a.requests()
    // (127.0.0.1 would be the HEALTHCHECK's probe from inside the container)
    const mine = Object.entries(counts.clients).filter(([addr]) => addr !== '127.0.0.1')
    expect(mine).toHaveLength(1)
    expect(mine[0][1]).toMatchObject({ total: 1004, rejected: 4, max60s: 1004 })
    expect(counts.windowMs).toBe(60000)
  })

  test('health routes as nodes differ: SIM_PUBLIC_READYZ=off, SIM_AUTH_HEALTH, SIM_AUTH_READYZ', async () => {
    const db = await freshDb()
    const a = await startSim({
      name: name('routes'),
      tag: '2.20.0',
      db,
      env: { ...FAST_LEASE, SIM_PUBLIC_READYZ: 'off', SIM_AUTH_HEALTH: '401' }
    })
    await a.waitLog(/Listening and serving HTTP/)
    const got: Record<string, number | 'refused'> = {}
    for (const p of ['/public-readyz', '/readyz', '/readyz?full', '/health', '/health.txt']) got[p] = await a.http(p)
    expect(got).toEqual({
      '/public-readyz': 404,
      '/readyz': 200,
      '/readyz?full': 401,
      '/health': 401,
      '/health.txt': 401
    })
    const b = await startSim({
      name: name('routes-b'),
      tag: '2.20.0',
      db: await freshDb(),
      env: { ...FAST_LEASE, SIM_AUTH_READYZ: '403' }
    })
    await b.waitLog(/Listening and serving HTTP/)
    const got2: Record<string, number | 'refused'> = {}
    for (const p of ['/public-readyz', '/readyz', '/health']) got2[p] = await b.http(p)
    expect(got2).toEqual({ '/public-readyz': 200, '/readyz': 403, '/health': 403 })
  })

  test('rate limit: a fixed window from the first request ([WebServer.RateLimit] from TOML)', async () => {
    const db = await freshDb()
    const a = await startSim({
      name: name('rlw'),
      tag: '2.20.0',
      db,
      env: {
        ...FAST_LEASE,
        CL_CONFIG: `${FAST_TOML}[WebServer.RateLimit]\nAuthenticated = 5\nAuthenticatedPeriod = '2s'\n`
      }
    })
    await a.waitLog(/Listening and serving HTTP/)
    const got: (number | 'refused')[] = []
    for (let i = 0; i < 6; i++) got.push(await a.http('/readyz'))
    expect(got).toEqual([200, 200, 200, 200, 200, 429])
    await waitFor('the window to end', async () => (await a.http('/health')) === 200, 5000, 250)
  })

  test('degraded (SIM_FAILING_CHECK): /readyz 200, /health 207 naming the check, on the old and the new version', async () => {
    for (const tag of ['2.19.0', '2.20.0']) {
      const db = await freshDb()
      const a = await startSim({
        name: name(`deg-${tag}`),
        tag,
        db,
        env: { ...FAST_LEASE, SIM_FAILING_CHECK: 'EVM.1337.HeadTracker' }
      })
      await a.waitLog(/Listening and serving HTTP/)
      const base = `http://${await a.ip()}:6688`
      expect(await a.http('/readyz')).toBe(200)
      const res = await fetch(`${base}/health`)
      expect(res.status).toBe(207)
      const checks = await checksOf(res)
      expect(failingOf(checks)).toEqual(['EVM.1337.HeadTracker'])
      expect(checks.find((c) => c.id === 'EVM.1337.HeadTracker')?.attributes.output).toMatch(/no new heads/)
      expect(checks.length).toBeGreaterThan(5)
    }
  })

  test('new-check-fails: /health 200 at first, then 207 with the new check failing; /readyz stays 200', async () => {
    const db = await freshDb()
    const a = await startSim({
      name: name('ncf'),
      tag: '2.20.0-new-check-fails',
      db,
      env: { ...FAST_LEASE, SIM_NEW_CHECK_AFTER_MS: '3000' }
    })
    await a.waitLog(/Listening and serving HTTP/)
    expect(await a.http('/health')).toBe(200)
    await waitFor('the check to fail', async () => (await a.http('/health')) === 207, 10000, 250)
    expect(failingOf(await checksOf(await fetch(`http://${await a.ip()}:6688/health?failing`)))).toEqual([
      'EVM.1337.LogPoller'
    ])
    expect(await a.http('/readyz')).toBe(200)
  })

  test('/readyz lagging the boot (SIM_READYZ_LAG_MS): 503 while /readyz?full answers 200, then 200', async () => {
    const db = await freshDb()
    const a = await startSim({
      name: name('lag'),
      tag: '2.20.0',
      db,
      env: { ...FAST_LEASE, SIM_READYZ_LAG_MS: '4000' }
    })
    await a.waitLog(/Listening and serving HTTP/)
    expect(await a.http('/readyz')).toBe(503)
    expect(await a.http('/public-readyz')).toBe(503)
    expect(await a.http('/readyz?full')).toBe(200) // the node's bug: never read the status of ?full
    await waitFor('ready', async () => (await a.http('/readyz')) === 200, 10000, 250)
  })

  test('the lock session speaks pgx: transaction control in lower case, pg_stat_activity reads `commit` between polls', async () => {
    const db = await freshDb()
    const a = await startSim({ name: name('pgx'), tag: '2.20.0', db, env: FAST_LEASE })
    const aId = await a.appId()
    const b = await startSim({ name: name('pgx-b'), tag: '2.20.0', db, env: FAST_LEASE })
    await b.waitLog(/tryCount=1\b/)
    const seen = new Set<string>()
    await waitFor(
      'both lock sessions idle after commit',
      async () => {
        const rows = await query<{ application_name: string; query: string }>(
          db,
          "SELECT application_name, query FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'Chainlink %'"
        )
        for (const r of rows) seen.add(r.query)
        const leader = `Chainlink 2.20.0 |App|${aId}`
        // the standby has one session, its lock session; the leader's lease session is one of its own
        const standby = rows.filter((r) => r.application_name !== leader)
        return (
          standby.length === 1 &&
          standby[0].query === 'commit' &&
          rows.some((r) => r.application_name === leader && r.query === 'commit')
        )
      },
      10000,
      50
    )
    expect([...seen].filter((q) => /^(BEGIN|COMMIT)$/.test(q))).toEqual([])
  })

  test('a start-up that fails after taking the lease exits 1 holding it; migrations are one transaction each and node_versions waits for all', async () => {
    const db = await freshDb()
    const old = await startSim({ name: name('old'), tag: '2.19.0', db, env: FAST_LEASE })
    const oldId = await old.appId()
    await old.container.stop({ t: 10 })
    expect(await old.exitCode()).toBe(0)

    // the default 10 s lease, so the next node surely finds it still held
    const bad = await startSim({ name: name('mf'), tag: '2.20.0-migration-fails', db, env: { SIM_BOOT_MS: '300' } })
    expect(await bad.exitCode()).toBe(1)
    const badLogs = await bad.logs()
    expect(badLogs).toContain('goose: OK   0255_sim_m0255.sql')
    expect(badLogs).toMatch(/failed to migrate: ERROR 0256_sim_m0256\.sql/)
    expect(badLogs).not.toContain('Chainlink booted')
    // 255 stayed applied, 256 rolled back with its own transaction; node_versions still says 2.19.0
    expect(await query(db, 'SELECT max(version_id)::int AS v FROM goose_migrations WHERE is_applied')).toEqual([
      { v: 255 }
    ])
    expect(await query(db, "SELECT to_regclass('sim_m0256')::text AS t")).toEqual([{ t: null }])
    expect(await query(db, 'SELECT version FROM node_versions')).toEqual([{ version: '2.19.0' }])
    // the lease is still held by the failed node, so the old version waits for it to run out
    const kept = await leaseRow(db)
    expect(kept.live).toBe(true)
    expect(kept.client_id).not.toBe(oldId)
    const again = await startSim({ name: name('old2'), tag: '2.19.0', db, env: FAST_LEASE })
    await again.waitLog(new RegExp(`${esc(WAITING_LEASE)} logger=LeaseLock tryCount=0`))
    await again.appId() // the version gate passes: it runs on a partly newer schema
    expect(await again.http('/readyz')).toBe(200)
  })

  test('2.x ignores v1 variables: DATABASE_URL alone is no DB URL; DATABASE_LOCKING_MODE, LEASE_LOCK_*, CHAINLINK_PORT change nothing', async () => {
    const db = await freshDb()
    const noUrl = await runSim({
      name: name('v1url'),
      tag: '2.20.0',
      db,
      cmd: ['node', 'start'],
      env: { CL_DATABASE_URL: '', DATABASE_URL: db.bridgeUrl }
    })
    expect(noUrl).toMatchObject({ code: 1, out: expect.stringContaining('Database.URL: missing') })
    const a = await startSim({
      name: name('v1vars'),
      tag: '2.20.0',
      db,
      env: {
        DATABASE_LOCKING_MODE: 'advisorylock', // invalid on v2 if it were read
        LEASE_LOCK_DURATION: '2s',
        LEASE_LOCK_REFRESH_INTERVAL: '1500ms', // a panic if it were read
        CHAINLINK_PORT: '7000',
        SIM_BOOT_MS: '300'
      }
    })
    const aId = await a.appId()
    await a.waitLog(/Listening and serving HTTP on 0\.0\.0\.0:6688/)
    expect(await a.http('/readyz')).toBe(200)
    expect(await a.http('/readyz', 7000)).toBe('refused')
    const [row] = await query<{ client_id: string; left: number }>(
      db,
      'SELECT client_id, extract(epoch FROM expires_at - now())::float AS left FROM lease_lock'
    )
    expect(row.client_id).toBe(aId)
    expect(row.left).toBeGreaterThan(8) // the 10s default lease, not LEASE_LOCK_DURATION
    expect(await advisoryHolders(db)).toEqual([])
  })

  test('[WebServer] ListenIP = 127.0.0.1: nothing answers on the container address; the in-container probe passes', async () => {
    const db = await freshDb()
    const a = await startSim({
      name: name('lip'),
      tag: '2.20.0',
      db,
      env: { ...FAST_LEASE, CL_CONFIG: `${FAST_TOML}[WebServer]\nListenIP = '127.0.0.1'\n` }
    })
    await a.waitLog(/Listening and serving HTTP on 127\.0\.0\.1:6688/)
    expect(await a.http('/readyz')).toBe('refused')
    const exec = await a.container.exec({ Cmd: ['chainlink', 'health-probe'], AttachStdout: true, AttachStderr: true })
    const stream = await exec.start({})
    await new Promise((r) => stream.on('end', r).resume())
    expect((await exec.inspect()).ExitCode).toBe(0)
  })

  test("the image's HEALTHCHECK keeps Docker's defaults (30 s interval): healthy on 207 only after the first interval, a standby is never healthy", async () => {
    const image = await docker.getImage(simImage('2.20.0')).inspect()
    const hc = image.Config.Healthcheck as
      { Test?: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number } | undefined
    expect(hc?.Test).toEqual(['CMD', 'chainlink', 'health-probe'])
    // unset means Docker's defaults: interval 30s, timeout 30s, retries 3, no start period
    expect(hc?.Interval || 30e9).toBe(30e9)
    expect(hc?.Timeout || 30e9).toBe(30e9)
    expect(hc?.Retries || 3).toBe(3)
    expect(hc?.StartPeriod ?? 0).toBe(0)

    const db = await freshDb()
    const a = await startSim({
      name: name('hc'),
      tag: '2.20.0',
      db,
      env: { ...FAST_LEASE, SIM_FAILING_CHECK: 'EVM.1337.HeadTracker' }
    })
    await a.appId()
    const b = await startSim({ name: name('hc-b'), tag: '2.20.0', db, env: FAST_LEASE })
    await b.waitLog(/tryCount=0/)
    expect(await a.http('/health')).toBe(207)
    expect((await a.container.inspect()).State.Health?.Status).toBe('starting')
    // curl -f passes on 207: the degraded leader turns healthy at the first probe, 30 s after start
    await waitFor(
      'leader healthy',
      async () => (await a.container.inspect()).State.Health?.Status === 'healthy',
      45000,
      500
    )
    // the waiting standby fails its first probe and stays 'starting' (unhealthy after 3 failures, ~90 s)
    const standby = await waitFor(
      'standby probed',
      async () => {
        const h = (await b.container.inspect()).State.Health
        return (h?.FailingStreak ?? 0) >= 1 && h
      },
      45000,
      500
    )
    expect(standby.Status).toBe('starting')
  }, 90000)
})
