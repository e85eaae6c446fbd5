// Fault injection for the fault matrix (test/integration/fault-matrix.test.ts): the bundle run as
// the runner does (support/action.ts) with faults fired when main's output shows a given step
// (SIGINT as a job cancellation, SIGKILL as a dead runner, or any async action such as dropping
// the node's DB sessions), and the state of the node and its DB read back.
import pg from 'pg'
import { loadBed, sleep, type TestDb } from './bed.js'
import { runAction, type ActionRun, type Hook } from './action.js'
import { join } from 'node:path'

/** runAction with faults at lines of main's output, each step SIGKILLed as hung after `deadlineMs` (120 s). */
export function runFaulted(
  inputs: Record<string, string>,
  hooks: Hook[] = [],
  opts: { post?: boolean; env?: Record<string, string>; deadlineMs?: number } = {}
): Promise<ActionRun> {
  return runAction(inputs, { ...opts, hooks, deadlineMs: opts.deadlineMs ?? 120_000 })
}

function adminUrl(): string {
  const bed = loadBed()
  return `postgres://${bed.pg.user}:${encodeURIComponent(bed.pg.password)}@${bed.pg.host}:${bed.pg.port}/postgres?sslmode=disable`
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: adminUrl() })
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end().catch(() => undefined)
  }
}

/**
 * The DB drops connections, for this test database only (other tests share the bed's Postgres):
 * terminates the node's sessions (`who: 'node'`) or every session on the database, the action's
 * included (`who: 'all'`, what a Postgres restart does to it). With `downMs`, new connections
 * are refused for that long (ALLOW_CONNECTIONS false) and sessions that slip in are terminated
 * again: a restart's outage, per database.
 */
export async function dropDbSessions(db: TestDb, who: 'node' | 'all', downMs = 0): Promise<number> {
  const filter = who === 'node' ? `AND application_name LIKE 'Chainlink %'` : ''
  const kill = (c: pg.Client) =>
    c
      .query(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() ${filter}`,
        [db.name]
      )
      .then((r) => r.rows[0].n as number)
  return admin(async (c) => {
    if (!downMs) return kill(c)
    await c.query(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS false`)
    let n = 0
    try {
      const end = Date.now() + downMs
      while (Date.now() < end) {
        n += await kill(c)
        await sleep(100)
      }
    } finally {
      await c.query(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS true`)
    }
    return n
  })
}

export interface DbState {
  /** goose_migrations max applied version_id */
  goose?: number
  /** node_versions.version */
  nodeVersion?: string
  /** lease_lock holder, when unexpired */
  holder?: string
  /** app ids of the node processes connected now */
  apps: string[]
}

export async function dbState(db: TestDb): Promise<DbState> {
  const c = await db.client()
  try {
    const reg = async (t: string) =>
      (await c.query(`SELECT to_regclass($1) IS NOT NULL AS ok`, [t])).rows[0].ok as boolean
    const out: DbState = { apps: [] }
    if (await reg('goose_migrations')) {
      const v = (await c.query(`SELECT max(version_id)::int AS v FROM goose_migrations WHERE is_applied`)).rows[0].v
      out.goose = v ?? undefined
    }
    if (await reg('node_versions'))
      out.nodeVersion = (await c.query(`SELECT version FROM node_versions ORDER BY created_at DESC LIMIT 1`)).rows[0]
        ?.version
    if (await reg('lease_lock'))
      out.holder = (await c.query(`SELECT client_id::text AS id FROM lease_lock WHERE expires_at > now()`)).rows[0]?.id
    const apps = (
      await c.query(
        `SELECT DISTINCT substring(application_name from '\\|App\\|([0-9a-f-]+)') AS app FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'Chainlink %'`
      )
    ).rows
    out.apps = apps
      .map((r) => r.app)
      .filter(Boolean)
      .sort()
    return out
  } finally {
    await c.end()
  }
}

/** The app id of the last heartbeat and how long ago it was written (DB clock). */
export async function lastHeartbeat(db: TestDb): Promise<{ app: string; version: string; agoMs: number } | undefined> {
  const c = await db.client()
  try {
    const r = await c.query(
      `SELECT app_id::text AS app, version, (extract(epoch from now() - at) * 1000)::int AS ago FROM sim_heartbeats ORDER BY at DESC, id DESC LIMIT 1`
    )
    return r.rows[0] ? { app: r.rows[0].app, version: r.rows[0].version, agoMs: r.rows[0].ago } : undefined
  } catch {
    return undefined
  } finally {
    await c.end()
  }
}

/** A fault row's upgrade, as its workflow gives it: the node, its state dir, the row's tuning inputs. */
export function rowUpgradeInputs(
  name: string,
  stateDir: string,
  image: string,
  extra: Record<string, string> = {}
): Record<string, string> {
  return {
    operation: 'upgrade',
    container: name,
    image,
    'state-dir': stateDir,
    'backup-dir': join(stateDir, 'backups'),
    'stable-for': '2s',
    'ready-timeout': '45s',
    ...extra
  }
}

/** `operation: repair` as an operator runs it: the same workflow, same tuning inputs. */
export function repairOf(upgrade: Record<string, string>): Record<string, string> {
  const { image: _image, ...rest } = upgrade
  return { ...rest, operation: 'repair' }
}
