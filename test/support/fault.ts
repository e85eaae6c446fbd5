// Fault injection for the fault matrix (test/integration/fault-matrix.test.ts): run the bundle as
// the runner does, but fire a fault when main's output shows a given step (SIGINT as a job
// cancellation, SIGKILL as a dead runner, or any async action such as dropping the node's DB
// sessions or restarting its containers), and read back the state of the node and its DB.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import pg from 'pg'
import { docker, loadBed, sleep, type TestDb } from './bed.js'
import { parseFileCommands, type ActionRun } from './action.js'

const root = resolve(import.meta.dirname, '../..')

/** What to do when a step is reached: the runner's cancellation, a dead runner, or anything else. */
export type FaultAction = 'sigint' | 'sigkill' | ((child: ChildProcess) => Promise<void> | void)

export interface Hook {
  /** fires once, the first time this returns true for main's output so far */
  when: (stdout: string) => boolean
  do: FaultAction
  /** fire this long after the step was reached (e.g. once a request is on its way) */
  delayMs?: number
}

export interface FaultRun extends ActionRun {
  /** main's own exit code (the post step's is folded into exitCode as the runner does) */
  mainExitCode: number | null
  /** main's result output, before the post step could add its own */
  mainResult?: string
  /** which hooks fired */
  fired: boolean[]
  /** main was SIGKILLed: no post step ran */
  killed: boolean
  /** every async fault action settled (errors rethrown to the test) */
  faultsDone: Promise<void>
  /** a step outlived the deadline and was SIGKILLed by the test */
  hung?: string
}

/** n-th occurrence of a line starting with `prefix` in main's output */
export function atLine(prefix: string | RegExp, nth = 1): (stdout: string) => boolean {
  const re =
    typeof prefix === 'string'
      ? new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'gm')
      : new RegExp(prefix.source, 'gm')
  return (out) => (out.match(re)?.length ?? 0) >= nth
}

function runStep(
  env: Record<string, string>,
  hooks: Hook[],
  fired: boolean[],
  pending: Promise<void>[],
  deadlineMs: number
): Promise<{ code: number | null; stdout: string; killed: boolean; hung: boolean }> {
  const node = loadBed().node24
  return new Promise((res) => {
    const child = spawn(node, [join(root, 'dist/index.js')], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let killed = false
    let cancelled = false
    let hung = false
    const deadline = setTimeout(() => {
      hung = true
      child.kill('SIGKILL')
    }, deadlineMs)
    const fire = (a: FaultAction) => {
      if (a === 'sigkill') {
        killed = true
        child.kill('SIGKILL')
      } else if (a === 'sigint') {
        if (cancelled) return
        cancelled = true
        // as the runner cancels a job: SIGINT, SIGTERM 7.5 s later, then it gives up
        child.kill('SIGINT')
        setTimeout(() => child.kill('SIGTERM'), 7500).unref()
        setTimeout(() => child.kill('SIGKILL'), 10000).unref()
      } else {
        pending.push(Promise.resolve().then(() => a(child)))
      }
    }
    const onData = (d: Buffer) => {
      stdout += d.toString()
      hooks.forEach((h, i) => {
        if (!fired[i] && h.when(stdout)) {
          fired[i] = true
          if (h.delayMs) setTimeout(() => fire(h.do), h.delayMs)
          else fire(h.do)
        }
      })
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('exit', (code) => {
      clearTimeout(deadline)
      res({ code, stdout, killed: killed && !hung, hung })
    })
  })
}

/** runAction with faults: as the runner runs main, then the post step unless main was SIGKILLed. */
export async function runFaulted(
  inputs: Record<string, string>,
  hooks: Hook[] = [],
  opts: { post?: boolean; env?: Record<string, string>; deadlineMs?: number } = {}
): Promise<FaultRun> {
  const deadlineMs = opts.deadlineMs ?? 120_000
  const dir = mkdtempSync(join(tmpdir(), 'clr-fm-action-'))
  const files = {
    GITHUB_OUTPUT: join(dir, 'output'),
    GITHUB_STATE: join(dir, 'state'),
    GITHUB_STEP_SUMMARY: join(dir, 'summary')
  }
  for (const f of Object.values(files)) writeFileSync(f, '')
  const env: Record<string, string> = { ...files, RUNNER_TEMP: dir, ...(opts.env ?? {}) }
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v
  const fired = hooks.map(() => false)
  const pending: Promise<void>[] = []
  const main = await runStep(env, hooks, fired, pending, deadlineMs)
  let hung = main.hung ? `main ran over ${deadlineMs} ms` : undefined
  const mainOutputs = parseFileCommands(readFileSync(files.GITHUB_OUTPUT, 'utf8'))
  let stdout = main.stdout
  let exitCode = main.code
  const state = parseFileCommands(readFileSync(files.GITHUB_STATE, 'utf8'))
  if (opts.post !== false && !main.killed) {
    const postEnv = { ...env }
    for (const [k, v] of Object.entries(state)) postEnv[`STATE_${k}`] = v
    const post = await runStep(postEnv, [], [], [], deadlineMs)
    if (post.hung) hung = `the post step ran over ${deadlineMs} ms`
    stdout += `\n--- post ---\n${post.stdout}`
    if (post.code !== 0 && exitCode === 0) exitCode = post.code
  }
  return {
    exitCode,
    mainExitCode: main.code,
    mainResult: mainOutputs.result,
    stdout,
    outputs: parseFileCommands(readFileSync(files.GITHUB_OUTPUT, 'utf8')),
    summary: readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'),
    state,
    dir,
    fired,
    killed: main.killed,
    faultsDone: Promise.all(pending).then(() => undefined),
    hung
  }
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

/**
 * Emulates a Docker daemon restart for the row's containers without touching the shared dockerd:
 * every running container whose name starts with `prefix` is restarted (SIGTERM with its stop
 * timeout, then started again), all at once, as dockerd does on shutdown and start-up with
 * restart policy unless-stopped. The Engine API outage itself is not emulated.
 */
export async function restartContainers(prefix: string): Promise<string[]> {
  const list = await docker.listContainers()
  const mine = list.filter((c) => c.Names.some((n) => n.replace(/^\//, '').startsWith(prefix)))
  await Promise.all(
    mine.map((c) =>
      docker
        .getContainer(c.Id)
        .restart({ t: 10 })
        .catch(() => undefined)
    )
  )
  return mine.map((c) => c.Names[0].replace(/^\//, ''))
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
