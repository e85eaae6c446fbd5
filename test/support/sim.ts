// Helpers for the simulator's own integration tests (test/integration/sim.test.ts): start a sim
// container on the default bridge network against a test database, read its logs, probe its
// HTTP port from the host, and read the lock and heartbeat tables.
import type Docker from 'dockerode'
import { docker, simImage, waitFor, type TestDb } from './bed.js'

export const WAITING_LEASE =
  'Another application is currently holding the database lease (or a previous instance exited uncleanly), waiting for lease to expire...'
export const WAITING_ADVISORY = 'Another application holds the advisory lock, waiting...'
/** Fast lease settings in TOML: a v2 node reads no v1 variables (docs/node-facts.md §11.9). */
export const FAST_TOML = "[Database.Lock]\nLeaseDuration = '3s'\nLeaseRefreshInterval = '500ms'\n"
export const FAST_LEASE = { CL_CONFIG: FAST_TOML, SIM_BOOT_MS: '300' }
/** The same for 1.x images, which read env variables. */
export const FAST_LEASE_V1 = { LEASE_LOCK_DURATION: '3s', LEASE_LOCK_REFRESH_INTERVAL: '500ms', SIM_BOOT_MS: '300' }

export interface Sim {
  name: string
  container: Docker.Container
  /** stdout+stderr so far */
  logs(): Promise<string>
  waitLog(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>
  /** the app id from the "Chainlink booted" line */
  appId(timeoutMs?: number): Promise<string>
  ip(): Promise<string>
  /** HTTP status of a path on 6688, or 'refused' when nothing listens */
  http(path: string, port?: number): Promise<number | 'refused'>
  exitCode(timeoutMs?: number): Promise<number>
  /** the simulator's per-client request counts (GET /sim/requests, outside the rate limit) */
  requests(): Promise<RequestCounts>
}

export interface RequestCounts {
  appID: string
  windowMs: number
  clients: Record<string, { total: number; rejected: number; max60s: number; perSecond: [number, number][] }>
}

/** Splits Docker's multiplexed (non-TTY) log stream into text. */
function demux(buf: Buffer): string {
  let out = ''
  for (let i = 0; i + 8 <= buf.length;) {
    const size = buf.readUInt32BE(i + 4)
    out += buf.subarray(i + 8, i + 8 + size).toString('utf8')
    i += 8 + size
  }
  return out
}

export interface SimOptions {
  name: string
  tag: string
  db: TestDb
  env?: Record<string, string>
  cmd?: string[]
  binds?: string[]
}

export async function startSim(o: SimOptions): Promise<Sim> {
  const env = { CL_DATABASE_URL: o.db.bridgeUrl, ...(o.env ?? {}) }
  const container = await docker.createContainer({
    name: o.name,
    Image: simImage(o.tag),
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Cmd: o.cmd,
    HostConfig: { Binds: o.binds }
  })
  await container.start()
  const sim: Sim = {
    name: o.name,
    container,
    logs: async () => demux((await container.logs({ stdout: true, stderr: true, follow: false })) as Buffer),
    waitLog: (re, timeoutMs = 20000) =>
      waitFor(`${o.name} log ${re}`, async () => (await sim.logs()).match(re) ?? undefined, timeoutMs, 100).catch(
        async (e: Error) => {
          // the container's last lines and state say why (exited, stuck waiting, no DB)
          const tail = (await sim.logs().catch(() => '')).split('\n').slice(-12).join('\n')
          const st = await container.inspect().then(
            (i) => `${i.State.Status} exit ${i.State.ExitCode}`,
            () => 'gone'
          )
          const sessions = await query<Record<string, string>>(
            o.db,
            `SELECT application_name AS app, state, wait_event_type || ':' || wait_event AS wait, left(query, 80) AS query
             FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`
          ).then(
            (rows) => rows.map((r) => `${r.app} ${r.state} ${r.wait ?? ''} ${r.query}`).join('\n'),
            (err: Error) => String(err.message)
          )
          throw new Error(`${e.message}\n${o.name} (${st}), last lines:\n${tail}\nDB sessions:\n${sessions}`)
        }
      ),
    appId: async (timeoutMs) =>
      (await sim.waitLog(/Chainlink booted in \d+\.\d\ds appID=([0-9a-f-]{36})/, timeoutMs))[1],
    ip: async () => (await container.inspect()).NetworkSettings.Networks.bridge.IPAddress,
    http: async (path, port = 6688) => {
      try {
        return (await fetch(`http://${await sim.ip()}:${port}${path}`, { signal: AbortSignal.timeout(1500) })).status
      } catch (e) {
        const code = (e as { cause?: { code?: string } }).cause?.code
        if (code === 'ECONNREFUSED') return 'refused'
        throw e
      }
    },
    exitCode: async (timeoutMs = 20000) =>
      waitFor(
        `${o.name} to exit`,
        async () => {
          const s = (await container.inspect()).State
          return s.Running ? undefined : { code: s.ExitCode }
        },
        timeoutMs
      ).then((r) => r.code),
    requests: async () => (await (await fetch(`http://${await sim.ip()}:6688/sim/requests`)).json()) as RequestCounts
  }
  return sim
}

/** Runs a one-shot sim command (e.g. `node db version`) and returns its exit code and output. */
export async function runSim(o: SimOptions & { cmd: string[] }) {
  const sim = await startSim(o)
  const code = await sim.exitCode()
  const out = await sim.logs()
  await sim.container.remove({ force: true })
  return { code, out }
}

export interface Heartbeat {
  app_id: string
  at: Date
}

/** Every leader write in order of DB time. */
export async function heartbeats(db: TestDb): Promise<Heartbeat[]> {
  const c = await db.client()
  try {
    return (await c.query<Heartbeat>('SELECT app_id, at FROM sim_heartbeats ORDER BY at, id')).rows
  } finally {
    await c.end()
  }
}

/** The writers in the order they wrote, one entry per run of consecutive writes. */
export function writerRuns(rows: Heartbeat[]): { appId: string; first: Date; last: Date; n: number }[] {
  const runs: { appId: string; first: Date; last: Date; n: number }[] = []
  for (const r of rows) {
    const cur = runs[runs.length - 1]
    if (cur && cur.appId === r.app_id) {
      cur.last = r.at
      cur.n++
    } else runs.push({ appId: r.app_id, first: r.at, last: r.at, n: 1 })
  }
  return runs
}

export async function query<T extends Record<string, unknown>>(
  db: TestDb,
  sql: string,
  params: unknown[] = []
): Promise<T[]> {
  const c = await db.client()
  try {
    return (await c.query<T>(sql, params)).rows
  } finally {
    await c.end()
  }
}

/** application_name of the backends holding the node's advisory lock in this database. */
export async function advisoryHolders(db: TestDb, id = '1027321974924625846'): Promise<string[]> {
  const rows = await query<{ application_name: string }>(
    db,
    `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [id]
  )
  return rows.map((r) => r.application_name)
}
