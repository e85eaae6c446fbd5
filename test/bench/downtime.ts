// `npm run bench`, downtime part: the same upgrade of the simulated node (2.18.0 -> 2.19.0,
// the node's default lease: 10 s lease, 1 s refresh), done every way an operator can do it,
// side by side in one run, median of BENCH_RUNS runs (default 5), rounds interleaved so that
// noise from other work on the machine spreads over every way alike.
//
// Ways:
//   action-ports     this action, docs' layout (bridge, 6688 published on 127.0.0.1), with its
//                    default `finish: swap` (docs/decisions.md, "`finish: swap` is the default")
//   action-ports-2h  the same with `finish: second-handoff`
//   action-host      this action, host networking: one handoff
//   action-bridge    this action, bridge network without published ports: one handoff
//   verify-swap      the swap by hand, for reference: standby on a spare port proven waiting,
//                    removed, then a prepared `docker stop` old -> `docker start` new on the
//                    original ports; no gates after it
//   docs-manual      the Chainlink docs' procedure: second container on a spare port, proven
//                    waiting, then `docker kill` (SIGKILL) of the first
//   watchtower       stop / remove / create + start with the same config (image pulled first)
//
// Figures per run:
//   port gap    longest window in which /readyz on the node's port failed, seen by an external
//               prober every 50 ms: from the last 200 before the failure to the first 200 after
//   write gap   longest gap between consecutive heartbeat rows of the leader(s) (sim_heartbeats)
//   wall        from the first change to the end (the action: main + post step)
//   boot        the node's own boot after the lock, from its log: "Starting StartUpHealthReport"
//               (the first line after the lease is taken) to "Listening and serving HTTP"
//   handoff overhead (per leader change)  write gap - old node's graceful shutdown (its
//               "Graceful shutdown time"; 0 when killed) - new node's boot after the lock
//   action overhead  wall - (stable-for + boot) for each handoff the action made
//
// Output: a Markdown report on stdout (run.sh keeps it in build/bench.md); every run's raw
// figures, with the action's job summary, in build/bench-downtime.json. Env: BENCH_RUNS (5),
// BENCH_ONLY (comma list of ways; it may also name action-ports-hc30, the docs layout with the
// real image's 30 s HEALTHCHECK interval, over a minute a run, so not in the default set).
import '../../src/cjs-shim.js'
import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import http from 'node:http'
import { PassThrough } from 'node:stream'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type Docker from 'dockerode'
import pg from 'pg'
import { createDb, docker, loadBed, simImage, sleep, waitFor, type TestDb } from '../support/bed.js'
import { startNode, type Layout } from '../support/node.js'
import { freePort } from '../../src/docker.js'

const ROOT = resolve(process.env.BENCH_ROOT ?? process.cwd())
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 5) || 5)
const FROM = '2.18.0'
const TO = '2.19.0'
// The node's defaults (docs/node-facts.md §3), what operators run; set explicitly so the bench
// does not depend on the test helpers' fast settings.
const LEASE = { duration: '10s', refresh: '1s' }
const REFRESH_MS = 1000
const STABLE_FOR = '2s'
const STABLE_FOR_MS = 2000
const PROBE_EVERY_MS = 50
const TAG = `clr-bench-${process.pid.toString(36)}`
const DB_PREFIX = `clr_bench_${process.pid}`
const PID_LABEL = 'io.chainlink-rollout.bench-pid'
// The bundle is copied once at the start and every run uses the copy: dist/ may be rebuilt by
// someone else while the bench runs, and one report must measure one bundle.
const DIST = join(ROOT, 'build', `bench-dist-${process.pid}`)

type Way =
  | 'action-ports'
  | 'action-ports-2h'
  | 'action-host'
  | 'action-bridge'
  | 'verify-swap'
  | 'docs-manual'
  | 'watchtower'
  | 'action-ports-hc30'
const WAYS: Way[] = [
  'action-ports',
  'action-ports-2h',
  'action-host',
  'action-bridge',
  'verify-swap',
  'docs-manual',
  'watchtower'
]
/** Opt-in (BENCH_ONLY) ways, too slow for the default run. */
const EXTRA_WAYS: Way[] = ['action-ports-hc30']
const WAY_LAYOUT: Record<Way, Layout> = {
  'action-ports': 'ports',
  'action-ports-2h': 'ports',
  'action-host': 'host',
  'action-bridge': 'bridge',
  'verify-swap': 'ports',
  'docs-manual': 'ports',
  watchtower: 'ports',
  'action-ports-hc30': 'ports'
}
const WAY_TITLE: Record<Way, string> = {
  'action-ports': 'chainlink-rollout, docs layout (6688 published), `finish: swap` (default)',
  'action-ports-2h': 'chainlink-rollout, docs layout, `finish: second-handoff`',
  'action-ports-hc30':
    "chainlink-rollout, docs layout, `finish: second-handoff`, with the real image's HEALTHCHECK timing (Docker's default 30 s interval; the simulator image uses 2 s)",
  'action-host': 'chainlink-rollout, host networking',
  'action-bridge': 'chainlink-rollout, bridge, no published ports',
  'verify-swap': 'verify-then-swap by hand, docs layout (scripted: the bare docker/pg steps, no gates after the swap)',
  'docs-manual': "Chainlink docs' manual procedure (2nd container on a spare port, `docker kill` the 1st)",
  watchtower: 'stop / rm / run, as Watchtower does (image pulled first), docs layout'
}

// ---------------------------------------------------------------------------------------------
// Probing /readyz from outside, every 50 ms, a new connection each time (as curl would)

function probeOnce(base: string, timeoutMs = 400): Promise<boolean> {
  return new Promise((res) => {
    const req = http.get(
      `${base}/readyz`,
      { agent: false, timeout: timeoutMs, headers: { connection: 'close' } },
      (r) => {
        r.resume()
        res(r.statusCode === 200)
      }
    )
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', () => res(false))
  })
}

interface Sample {
  t: number
  ok: Record<string, boolean>
}

interface Window {
  ms: number
  recovered: boolean
}

class Prober {
  readonly samples: Sample[] = []
  private stopped = false
  private loop?: Promise<void>
  constructor(private readonly targets: () => string[]) {}

  start(): this {
    this.loop = (async () => {
      while (!this.stopped) {
        const t = Date.now()
        const urls = this.targets()
        const res = await Promise.all(urls.map((u) => probeOnce(u)))
        const ok: Record<string, boolean> = {}
        urls.forEach((u, i) => (ok[u] = res[i]))
        this.samples.push({ t, ok })
        const wait = PROBE_EVERY_MS - (Date.now() - t)
        if (wait > 0) await sleep(wait)
      }
    })()
    return this
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.loop
  }

  /** true once `pred` held in a sample taken at or after `since` */
  seen(pred: (s: Sample) => boolean, since = 0): boolean {
    for (let i = this.samples.length - 1; i >= 0 && this.samples[i].t >= since; i--)
      if (pred(this.samples[i])) return true
    return false
  }

  /**
   * Longest failed window: from the last ready sample before a run of failed samples to the
   * first ready one after it (0 when no sample failed). A window still open at the end is
   * returned as not recovered, measured to the last sample.
   */
  longestGap(pred: (s: Sample) => boolean): Window {
    let lastOk: number | undefined
    let failing = false
    let best: Window = { ms: 0, recovered: true }
    for (const s of this.samples) {
      if (pred(s)) {
        if (failing && lastOk !== undefined && s.t - lastOk > best.ms) best = { ms: s.t - lastOk, recovered: true }
        failing = false
        lastOk = s.t
      } else if (lastOk !== undefined) failing = true
    }
    if (failing && lastOk !== undefined) {
      const open = this.samples.at(-1)!.t - lastOk
      if (open >= best.ms) best = { ms: open, recovered: false }
    }
    return best
  }
}

const anyOk = (s: Sample) => Object.values(s.ok).some(Boolean)
const okAt = (url: string) => (s: Sample) => s.ok[url] === true

// ---------------------------------------------------------------------------------------------
// The nodes' own logs, followed from each container's start (the action removes containers
// before the run ends, so `docker logs` afterwards would be too late)

interface NodeLog {
  id: string
  name: string
  appId?: string
  /** "Starting StartUpHealthReport": the first line after the lease is taken */
  lockAt?: number
  /** "Listening and serving HTTP" */
  servingAt?: number
  /** "Graceful shutdown time: <d>" */
  shutdownMs?: number
  waiting: boolean
  lines: string[]
}

function goDurationMs(s: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 }
  let total = 0
  for (const m of s.matchAll(/(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * units[m[2]]
  return total
}

class LogWatch {
  readonly logs = new Map<string, NodeLog>()
  private events?: NodeJS.ReadableStream
  private streams: NodeJS.ReadableStream[] = []
  constructor(private readonly prefix: string) {}

  async start(): Promise<void> {
    const ev = (await docker.getEvents({ filters: { type: ['container'], event: ['start'] } })) as NodeJS.ReadableStream
    this.events = ev
    let buf = ''
    ev.on('data', (d: Buffer) => {
      buf += d.toString()
      let i: number
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i)
        buf = buf.slice(i + 1)
        try {
          const e = JSON.parse(line) as { id: string; Actor?: { Attributes?: { name?: string } } }
          const name = e.Actor?.Attributes?.name
          if (name?.startsWith(this.prefix)) void this.attach(e.id, name)
        } catch {
          /* not a whole event */
        }
      }
    })
    ev.on('error', () => undefined)
  }

  private async attach(id: string, name: string): Promise<void> {
    if (this.logs.has(id)) return
    const log: NodeLog = { id, name, waiting: false, lines: [] }
    this.logs.set(id, log)
    try {
      const stream = (await docker
        .getContainer(id)
        .logs({ follow: true, stdout: true, stderr: true })) as NodeJS.ReadableStream
      this.streams.push(stream)
      const out = new PassThrough()
      docker.modem.demuxStream(stream, out, out)
      stream.on('end', () => out.end())
      stream.on('error', () => out.end())
      let buf = ''
      out.on('data', (d: Buffer) => {
        buf += d.toString()
        let i: number
        while ((i = buf.indexOf('\n')) >= 0) {
          this.line(log, buf.slice(0, i))
          buf = buf.slice(i + 1)
        }
      })
    } catch {
      /* removed before we got there */
    }
  }

  private line(log: NodeLog, line: string): void {
    log.lines.push(line)
    const m = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) \[\w+\] (.*)$/.exec(line)
    if (m) {
      const at = Date.parse(m[1])
      const msg = m[2]
      if (msg.startsWith('Starting StartUpHealthReport')) log.lockAt ??= at
      else if (msg.startsWith('Listening and serving HTTP')) log.servingAt ??= at
      else if (msg.startsWith('Another application is currently holding the database lease')) log.waiting = true
      const app = /Chainlink booted in .*appID=([0-9a-f-]{36})/.exec(msg)
      if (app) log.appId = app[1]
    }
    const g = /Graceful shutdown time: (\S+)/.exec(line)
    if (g) log.shutdownMs = goDurationMs(g[1])
  }

  byApp(appId: string): NodeLog | undefined {
    return [...this.logs.values()].find((l) => l.appId === appId)
  }

  stop(): void {
    for (const s of [this.events, ...this.streams]) (s as unknown as { destroy?: () => void } | undefined)?.destroy?.()
  }
}

// ---------------------------------------------------------------------------------------------
// Heartbeats: who wrote when

interface Transition {
  from: string
  to: string
  fromVersion: string
  toVersion: string
  gapMs: number
}

interface Writes {
  maxGapMs: number
  transitions: Transition[]
  writers: string[]
  versions: string[]
  interleaved: boolean
}

async function readWrites(db: TestDb): Promise<Writes> {
  const c = await db.client()
  try {
    const rows = (
      await c.query<{ app_id: string; version: string; ms: string }>(
        `SELECT app_id::text, version, (extract(epoch from at) * 1000)::text AS ms FROM sim_heartbeats ORDER BY at, id`
      )
    ).rows
    const w: Writes = { maxGapMs: 0, transitions: [], writers: [], versions: [], interleaved: false }
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]
      if (w.writers.at(-1) !== r.app_id) {
        if (w.writers.includes(r.app_id)) w.interleaved = true
        w.writers.push(r.app_id)
        w.versions.push(r.version)
      }
      if (i === 0) continue
      const p = rows[i - 1]
      const gap = Number(r.ms) - Number(p.ms)
      w.maxGapMs = Math.max(w.maxGapMs, gap)
      if (p.app_id !== r.app_id)
        w.transitions.push({ from: p.app_id, to: r.app_id, fromVersion: p.version, toVersion: r.version, gapMs: gap })
    }
    return w
  } finally {
    await c.end()
  }
}

// ---------------------------------------------------------------------------------------------
// The action, run as the runner runs it: Node 24, INPUT_* env, file commands, then the post step

function parseFileCommands(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<=]+)<<(.+)$/.exec(lines[i])
    if (m) {
      const val: string[] = []
      for (i++; i < lines.length && lines[i] !== m[2]; i++) val.push(lines[i])
      out[m[1]] = val.join('\n')
    }
  }
  return out
}

function runStep(env: Record<string, string>): Promise<{ code: number | null; stdout: string }> {
  return new Promise((res) => {
    const child = spawn(loadBed().node24, [join(DIST, 'index.js')], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stdout += d.toString()))
    child.on('exit', (code) => res({ code, stdout }))
  })
}

interface ActionRun {
  code: number | null
  outputs: Record<string, string>
  summary: string
  stdout: string
  mainMs: number
  totalMs: number
}

async function runAction(inputs: Record<string, string>, dir: string): Promise<ActionRun> {
  const files = {
    GITHUB_OUTPUT: join(dir, 'output'),
    GITHUB_STATE: join(dir, 'state'),
    GITHUB_STEP_SUMMARY: join(dir, 'summary')
  }
  for (const f of Object.values(files)) writeFileSync(f, '')
  const env: Record<string, string> = { ...files, RUNNER_TEMP: dir }
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v
  const t0 = Date.now()
  const main = await runStep(env)
  const mainMs = Date.now() - t0
  const state = parseFileCommands(readFileSync(files.GITHUB_STATE, 'utf8'))
  const postEnv = { ...env }
  for (const [k, v] of Object.entries(state)) postEnv[`STATE_${k}`] = v
  const post = await runStep(postEnv)
  const totalMs = Date.now() - t0
  const code = main.code !== 0 ? main.code : post.code
  return {
    code,
    outputs: parseFileCommands(readFileSync(files.GITHUB_OUTPUT, 'utf8')),
    summary: readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'),
    stdout: `${main.stdout}\n--- post ---\n${post.stdout}`,
    mainMs,
    totalMs
  }
}

// ---------------------------------------------------------------------------------------------
// Docker helpers for the scripted ways

/** The old container's config with another image, name and (maybe) host port: `docker run` as the operator would retype it. */
async function sameConfig(
  id: string,
  image: string,
  name: string,
  hostPort?: number
): Promise<Docker.ContainerCreateOptions> {
  const i = await docker.getContainer(id).inspect()
  const hc: Docker.HostConfig = {
    RestartPolicy: i.HostConfig.RestartPolicy,
    NetworkMode: i.HostConfig.NetworkMode,
    PortBindings: i.HostConfig.PortBindings,
    Binds: i.HostConfig.Binds ?? undefined
  }
  if (hostPort !== undefined) hc.PortBindings = { '6688/tcp': [{ HostIp: '127.0.0.1', HostPort: String(hostPort) }] }
  return {
    name,
    Image: image,
    Env: i.Config.Env,
    Labels: i.Config.Labels,
    Cmd: i.Config.Cmd ?? undefined,
    ExposedPorts: i.Config.ExposedPorts,
    HostConfig: hc
  }
}

async function leaseHolder(c: pg.Client): Promise<string | undefined> {
  const r = await c.query<{ client_id: string }>('SELECT client_id::text FROM lease_lock WHERE expires_at > now()')
  return r.rows[0]?.client_id
}

/** The standby-ready gate, scripted: running, a DB session of the new version, the lock still the old app's. */
async function provenWaiting(c: pg.Client, id: string, version: string, oldApp: string): Promise<void> {
  await waitFor(
    `standby ${id.slice(0, 12)} waiting for the lock`,
    async () => {
      const info = await docker.getContainer(id).inspect()
      if (!info.State.Running) throw new Error(`standby exited (${info.State.ExitCode})`)
      const s = await c.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE $1`,
        [`Chainlink ${version} |App|%`]
      )
      return Number(s.rows[0].n) > 0 && (await leaseHolder(c)) === oldApp
    },
    30_000,
    50
  )
}

async function waitUp(url: string, timeoutMs = 60_000): Promise<number> {
  await waitFor(`${url}/readyz 200`, () => probeOnce(url), timeoutMs, 25)
  return Date.now()
}

/**
 * The docs' layout as startNode makes it, with the HEALTHCHECK timing of the real image
 * (`HEALTHCHECK CMD curl -f http://localhost:6688/health`, Docker's defaults: 30 s interval).
 */
async function startWithHealthcheck(
  name: string,
  db: TestDb,
  intervalMs: number
): Promise<{ id: string; port: number }> {
  const port = await freePort('127.0.0.1')
  const c = await docker.createContainer({
    name,
    Image: simImage(FROM),
    Env: [
      `CL_DATABASE_URL=${db.bridgeUrl}`,
      `LEASE_LOCK_DURATION=${LEASE.duration}`,
      `LEASE_LOCK_REFRESH_INTERVAL=${LEASE.refresh}`
    ],
    Labels: { 'test.chainlink-rollout': 'yes', [PID_LABEL]: String(process.pid) },
    ExposedPorts: { '6688/tcp': {} },
    Healthcheck: {
      Test: ['CMD', 'chainlink', 'health-probe'],
      Interval: intervalMs * 1e6,
      Timeout: intervalMs * 1e6,
      Retries: 3
    },
    HostConfig: {
      RestartPolicy: { Name: 'unless-stopped' },
      PortBindings: { '6688/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] }
    }
  })
  await c.start()
  await waitUp(`http://127.0.0.1:${port}`)
  // the action gates on Docker's health too: start from a node Docker already calls healthy
  await waitFor(
    `${name} healthy`,
    async () => (await c.inspect()).State.Health?.Status === 'healthy',
    2 * intervalMs + 10_000,
    250
  )
  return { id: c.id, port }
}

// ---------------------------------------------------------------------------------------------
// One run of one way

interface RunResult {
  way: Way
  rep: number
  ok: boolean
  error?: string
  portGap?: Window
  /** docs-manual: across the original and the spare port */
  anyPortGap?: Window
  writeGapMs?: number
  wallMs?: number
  boots: number[]
  handoffOverheads: number[]
  transitions: Array<Transition & { shutdownMs?: number; bootMs?: number }>
  actionOverheadMs?: number
  actionGapOutput?: number
  actionMainMs?: number
  /** the action's job summary (in build/bench-downtime.json) */
  actionSummary?: string
  writers?: string[]
  interleaved?: boolean
  finalVersion?: string
}

async function cleanupRun(prefix: string, db?: TestDb): Promise<void> {
  const list = await docker.listContainers({ all: true })
  for (const c of list) {
    if (c.Names.some((n) => n.replace(/^\//, '').startsWith(prefix)))
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined)
  }
  await db?.drop().catch(() => undefined)
}

let current: { prefix: string; db?: TestDb } | undefined

async function runOnce(way: Way, rep: number): Promise<RunResult> {
  const layout = WAY_LAYOUT[way]
  const short = {
    'action-ports': 'ap',
    'action-ports-2h': 'a2',
    'action-host': 'ah',
    'action-bridge': 'ab',
    'verify-swap': 'vs',
    'docs-manual': 'dm',
    watchtower: 'wt',
    'action-ports-hc30': 'hc'
  }[way]
  const name = `${TAG}-${short}${rep}`
  const res: RunResult = { way, rep, ok: false, boots: [], handoffOverheads: [], transitions: [] }
  const logs = new LogWatch(name)
  let prober: Prober | undefined
  let db: TestDb | undefined
  let pgc: pg.Client | undefined
  let bridgeTimer: NodeJS.Timeout | undefined
  const dir = mkdtempSync(join(tmpdir(), 'clr-bench-'))
  current = { prefix: name }
  try {
    db = await createDb(DB_PREFIX)
    current.db = db
    await logs.start()
    const old =
      way === 'action-ports-hc30'
        ? await startWithHealthcheck(name, db, 30_000)
        : await startNode({ name, tag: FROM, db, layout, lease: LEASE, labels: { [PID_LABEL]: String(process.pid) } })
    pgc = await db.client()
    const oldApp = await waitFor('old lease holder', () => leaseHolder(pgc!), 10_000, 50)

    // What the prober watches: the node's port (docs layout: the published host port; host
    // networking: the node's port; bridge: the bridge IP of whichever container of the node is
    // up, as a client resolving the container by name would reach it).
    const mainUrl = layout === 'bridge' ? undefined : `http://127.0.0.1:${old.port}`
    let spareUrl: string | undefined
    let bridgeUrls: string[] = []
    if (layout === 'bridge') {
      const refresh = async () => {
        const cs = await docker.listContainers({ filters: { name: [name] } }).catch(() => [])
        bridgeUrls = cs.flatMap((c) =>
          Object.values(c.NetworkSettings?.Networks ?? {})
            .map((n) => n.IPAddress)
            .filter(Boolean)
            .map((ip) => `http://${ip}:6688`)
        )
      }
      await refresh()
      bridgeTimer = setInterval(() => void refresh(), 200)
    }
    prober = new Prober(() => (layout === 'bridge' ? bridgeUrls : [mainUrl!, ...(spareUrl ? [spareUrl] : [])])).start()
    // a steady baseline: the old leader serving and writing
    await sleep(1000)
    const image = simImage(TO)
    const t0 = Date.now()
    let endAt: number

    if (way.startsWith('action-')) {
      const inputs: Record<string, string> = {
        operation: 'upgrade',
        container: name,
        image,
        'stable-for': STABLE_FOR,
        backup: 'false',
        'state-dir': join(dir, 'state-dir')
      }
      if (way === 'action-ports-2h' || way === 'action-ports-hc30') inputs.finish = 'second-handoff'
      const r = await runAction(inputs, dir)
      endAt = Date.now()
      res.actionMainMs = r.mainMs
      res.actionSummary = r.summary
      res.wallMs = r.totalMs
      if (r.code !== 0 || r.outputs.result !== 'upgraded')
        throw new Error(
          `action exit ${r.code}, result ${r.outputs.result}:\n${r.stdout.split('\n').slice(-25).join('\n')}`
        )
      if (r.outputs['leader-gap-ms']) res.actionGapOutput = Number(r.outputs['leader-gap-ms'])
    } else if (way === 'verify-swap') {
      // 1. the new image as a standby on a spare port, proven waiting, then removed
      const spare = await freePort('127.0.0.1')
      const sb = await docker.createContainer(await sameConfig(old.id, image, `${name}-verify`, spare))
      await sb.start()
      await provenWaiting(pgc, sb.id, TO, oldApp)
      await sb.remove({ force: true })
      // 2. prepared: the final container exists before the stop; stop -> start on the original ports
      const next = await docker.createContainer(await sameConfig(old.id, image, `${name}-next`))
      await docker.getContainer(old.id).stop({ t: 10 })
      await next.start()
      endAt = await waitUp(mainUrl!)
      await docker.getContainer(old.id).remove({ force: true })
      await next.rename({ name })
      res.wallMs = Date.now() - t0
    } else if (way === 'docs-manual') {
      const spare = await freePort('127.0.0.1')
      spareUrl = `http://127.0.0.1:${spare}`
      const second = await docker.createContainer(await sameConfig(old.id, image, `${name}-second`, spare))
      await second.start()
      await provenWaiting(pgc, second.id, TO, oldApp) // the docs: "it is waiting for the database lock"
      await docker.getContainer(old.id).kill() // SIGKILL
      endAt = await waitUp(spareUrl)
      res.wallMs = endAt - t0
    } else {
      // watchtower: image already pulled; stop (SIGTERM, 10 s timeout), remove, create + start
      const spec = await sameConfig(old.id, image, name)
      await docker.getContainer(old.id).stop({ t: 10 })
      await docker.getContainer(old.id).remove()
      const c = await docker.createContainer(spec)
      await c.start()
      endAt = await waitUp(mainUrl!)
      res.wallMs = endAt - t0
    }

    // let the final leader serve and write for a while, then read everything
    const upPred = layout === 'bridge' ? anyOk : way === 'docs-manual' ? okAt(spareUrl!) : okAt(mainUrl!)
    await waitFor('final leader serving', async () => prober!.seen(upPred, endAt), 30_000, 50)
    await sleep(1000)
    await prober.stop()
    clearInterval(bridgeTimer)
    res.portGap = prober.longestGap(layout === 'bridge' ? anyOk : okAt(mainUrl!))
    if (way === 'docs-manual') res.anyPortGap = prober.longestGap(anyOk)
    const w = await readWrites(db)
    res.writeGapMs = Math.round(w.maxGapMs)
    res.writers = w.writers
    res.interleaved = w.interleaved
    res.finalVersion = w.versions.at(-1)
    for (const tr of w.transitions) {
      const from = logs.byApp(tr.from)
      const to = logs.byApp(tr.to)
      const bootMs = to?.lockAt !== undefined && to.servingAt !== undefined ? to.servingAt - to.lockAt : undefined
      const shutdownMs = from?.shutdownMs ?? (way === 'docs-manual' ? 0 : undefined)
      res.transitions.push({ ...tr, gapMs: Math.round(tr.gapMs), bootMs, shutdownMs })
      if (bootMs !== undefined) res.boots.push(bootMs)
      if (bootMs !== undefined && shutdownMs !== undefined)
        res.handoffOverheads.push(Math.round(tr.gapMs - shutdownMs - bootMs))
    }
    if (way.startsWith('action-') && res.boots.length === res.transitions.length) {
      res.actionOverheadMs = res.wallMs! - res.transitions.length * STABLE_FOR_MS - res.boots.reduce((a, b) => a + b, 0)
    }
    if (res.finalVersion !== TO) throw new Error(`the last writer runs ${res.finalVersion}, not ${TO}`)
    if (w.interleaved) throw new Error('two writers interleaved (split brain)')
    res.ok = true
  } catch (e) {
    res.error = (e as Error).message
  } finally {
    clearInterval(bridgeTimer)
    await prober?.stop()
    logs.stop()
    await pgc?.end().catch(() => undefined)
    await cleanupRun(name, db)
    rmSync(dir, { recursive: true, force: true })
    current = undefined
  }
  return res
}

// ---------------------------------------------------------------------------------------------
// Leftovers of an earlier bench that died (its pid is gone): containers and DBs, only ours

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function removeStale(): Promise<void> {
  for (const c of await docker.listContainers({ all: true, filters: { label: [PID_LABEL] } })) {
    const pid = Number(c.Labels[PID_LABEL])
    if (pid && pid !== process.pid && !alive(pid))
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined)
  }
  const bed = loadBed()
  const admin = new pg.Client({
    host: bed.pg.host,
    port: bed.pg.port,
    user: bed.pg.user,
    password: bed.pg.password,
    database: 'postgres'
  })
  await admin.connect()
  try {
    const dbs = (
      await admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'clr\\_bench\\_%'`)
    ).rows
    for (const { datname } of dbs) {
      const pid = Number(/^clr_bench_(\d+)_/.exec(datname)?.[1])
      if (pid && pid !== process.pid && !alive(pid))
        await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`)
    }
  } finally {
    await admin.end()
  }
}

// ---------------------------------------------------------------------------------------------
// Report

const median = (xs: number[]): number | undefined => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (!s.length) return undefined
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const sec = (ms?: number) => (ms === undefined ? '–' : `${(ms / 1000).toFixed(2)} s`)
const ratio = (ms: number | undefined, lb: number) => (ms === undefined ? '' : ` (${(ms / lb).toFixed(1)}×)`)

/** Copies dist/ and names what was copied: its hash, its last commit, whether it differed from that commit. */
function snapshotBundle(): string {
  cpSync(join(ROOT, 'dist'), DIST, { recursive: true })
  const sha = createHash('sha256')
    .update(readFileSync(join(DIST, 'index.js')))
    .digest('hex')
    .slice(0, 12)
  let git = ''
  try {
    const commit = execFileSync('git', ['-C', ROOT, 'log', '-1', '--format=%h', '--', 'dist/index.js'], {
      encoding: 'utf8'
    }).trim()
    const dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'dist/index.js'], {
      encoding: 'utf8'
    }).trim()
    git = `, commit ${commit}${dirty ? ' + uncommitted changes' : ''}`
  } catch {
    /* not a git checkout */
  }
  return `dist/index.js sha256 ${sha}${git}`
}

function report(results: RunResult[], ways: Way[], startedAt: Date, elapsedMs: number, bundle: string): string {
  const ok = results.filter((r) => r.ok)
  const allBoots = ok.flatMap((r) => r.boots)
  const boot = median(allBoots) ?? NaN
  const lb = REFRESH_MS + boot
  const by = (w: Way) => ok.filter((r) => r.way === w)
  const med = (w: Way, f: (r: RunResult) => number | undefined) =>
    median(
      by(w)
        .map(f)
        .filter((x): x is number => x !== undefined)
    )
  const L: string[] = []
  L.push(`## Downtime of one upgrade, ${FROM} -> ${TO} of the simulated node`)
  L.push('')
  L.push(
    `\`npm run bench\` on ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${cpus().length} cores, ${RUNS} run(s) of each way, rounds interleaved, medians shown; took ${(elapsedMs / 60000).toFixed(1)} min.`
  )
  L.push(
    `Bundle measured: ${bundle} (copied at the start; every run used the copy). Simulator boot (SIM_BOOT_MS) at its default.`
  )
  L.push(
    `Node lease settings: the defaults, ${LEASE.duration} lease, ${LEASE.refresh} refresh. The action runs with \`stable-for: ${STABLE_FOR}\` and \`backup: false\`, so the figures measure the handoff, not a backup.`
  )
  L.push('')
  L.push(
    `**Lower bound** = lease refresh interval + the node's own boot after the lock = ${sec(REFRESH_MS)} + ${sec(boot)} = **${sec(lb)}** (boot: median of ${allBoots.length} boots in this run, from the node's log line after it took the lease, "Starting StartUpHealthReport", to "Listening and serving HTTP"). (×) is each figure divided by it.`
  )
  const floor = median(
    ok.flatMap((r) =>
      r.transitions.filter((t) => t.shutdownMs && t.bootMs !== undefined).map((t) => t.shutdownMs! + t.bootMs!)
    )
  )
  L.push(
    `A ratio below 1 is possible: a node started after the old one released the lease takes it at its first try, with no poll to wait for. The physical floor of a graceful leader change is the old node's shutdown + the new node's boot after the lock: ${sec(floor)} here (median).`
  )
  L.push('')
  L.push(
    "| way | /readyz down on the node's port | leader's writes paused | wall time | action overhead | action `leader-gap-ms` | handoff overhead | runs ok |"
  )
  L.push('|---|---|---|---|---|---|---|---|')
  for (const w of ways) {
    const rs = by(w)
    const n = `${rs.length}/${results.filter((r) => r.way === w).length}`
    if (!rs.length) {
      L.push(`| ${WAY_TITLE[w]} | – | – | – | – | – | – | ${n} |`)
      continue
    }
    let port: string
    if (w === 'docs-manual') {
      const any = med(w, (r) => r.anyPortGap?.ms)
      port = `never back on the original port (the node moved to the spare one); ${sec(any)}${ratio(any, lb)} old port -> spare port`
    } else {
      const p = med(w, (r) => r.portGap?.ms)
      const open = rs.some((r) => !r.portGap?.recovered)
      port = `${sec(p)}${ratio(p, lb)}${open ? ' (not back in some runs)' : ''}`
    }
    const wg = med(w, (r) => r.writeGapMs)
    const wall = med(w, (r) => r.wallMs)
    const isAction = w.startsWith('action-')
    const ov = isAction ? med(w, (r) => r.actionOverheadMs) : undefined
    const gapOut = isAction ? med(w, (r) => r.actionGapOutput) : undefined
    const ho = median(rs.flatMap((r) => r.handoffOverheads))
    L.push(
      `| ${WAY_TITLE[w]} | ${port} | ${sec(wg)}${ratio(wg, lb)} | ${sec(wall)}${ratio(wall, lb)} | ${isAction ? `${sec(ov)}${ratio(ov, lb)}` : '–'} | ${isAction ? sec(gapOut) : '–'} | ${sec(ho)} | ${n} |`
    )
  }
  L.push('')
  L.push('How each figure is taken:')
  L.push(
    "- **/readyz down**: an external prober asks `/readyz` every 50 ms over a new connection (400 ms timeout); the longest window from the last 200 before a failure to the first 200 after it (resolution 50 ms). Docs layout: the published host port on 127.0.0.1; host networking: the node's port; bridge without published ports: the bridge IP of whichever container of the node answers."
  )
  L.push(
    '- **writes paused**: the longest gap between consecutive heartbeat rows the leader writes every 150 ms (`sim_heartbeats`), i.e. how long the node did no work.'
  )
  L.push(
    "- **wall time**: the action: main + post step as the runner runs them, including its checks and the `stable-for` hold after each handoff. Scripted ways: from the first docker call to the new node's first `/readyz` 200 (no checks after that)."
  )
  L.push(
    `- **action overhead** = wall time − (stable-for ${STABLE_FOR} + the new node's boot after the lock) for each leader change it made (2 with \`finish: second-handoff\`, 1 otherwise): preflight, pull check, standby start and gate, the stop, the wait for the standby's next lease poll, lock and health checks, renames and removals.`
  )
  L.push(
    "- **handoff overhead** (median over all leader changes) = writes paused − the old node's graceful shutdown (its \"Graceful shutdown time\"; 0 when killed) − the new node's boot after the lock: what a handoff costs beyond the two nodes' own work (waiting for the next lease poll, container start, or the lease expiry after `docker kill`)."
  )
  L.push('')

  // docs layout: the two ways of finishing (input `finish`), and the swap by hand for reference
  if (by('action-ports').length && by('action-ports-2h').length) {
    const fig = (w: Way) => ({
      work: med(w, (r) => r.writeGapMs),
      port: med(w, (r) => r.portGap?.ms),
      wall: med(w, (r) => r.wallMs)
    })
    const two = fig('action-ports-2h')
    const swap = fig('action-ports')
    const hand = by('verify-swap').length ? fig('verify-swap') : undefined
    const better = (x?: number, y?: number) =>
      x === undefined || y === undefined ? '?' : x < y ? '`second-handoff`' : x > y ? '`swap`' : 'tie'
    L.push('### Docs layout: the two ways of finishing (input `finish`)')
    L.push('')
    L.push(`| figure | \`second-handoff\` | \`swap\` (default) | better |${hand ? ' swap by hand (reference) |' : ''}`)
    L.push(`|---|---|---|---|${hand ? '---|' : ''}`)
    L.push(
      `| leader's writes paused (work gap) | ${sec(two.work)} | ${sec(swap.work)} | ${better(two.work, swap.work)} |${hand ? ` ${sec(hand.work)} |` : ''}`
    )
    L.push(
      `| /readyz down on the published port (6688 gap) | ${sec(two.port)} | ${sec(swap.port)} | ${better(two.port, swap.port)} |${hand ? ` ${sec(hand.port)} |` : ''}`
    )
    L.push(
      `| wall time | ${sec(two.wall)} | ${sec(swap.wall)} | ${better(two.wall, swap.wall)} |${hand ? ` ${sec(hand.wall)} (no gates) |` : ''}`
    )
    if (by('action-ports-hc30').length) {
      const h = fig('action-ports-hc30')
      L.push(
        `| 6688 gap with the real image's HEALTHCHECK timing (30 s interval: the interim's health gate waits for Docker's next check), ${by('action-ports-hc30').length} run(s) | ${sec(h.port)} | ${sec(swap.port)} (the outage ends when the node serves; the gate after it keeps no port dark) | \`swap\` |${hand ? ' |' : ''}`
      )
    }
    L.push('')
  }

  L.push('### Every run')
  L.push('')
  L.push(
    '| way | run | /readyz down | writes paused | wall | boot(s) after lock | leader changes: gap / old shutdown / new boot | action leader-gap-ms | result |'
  )
  L.push('|---|---|---|---|---|---|---|---|---|')
  for (const r of [...results].sort((x, y) => ways.indexOf(x.way) - ways.indexOf(y.way) || x.rep - y.rep)) {
    const port =
      r.way === 'docs-manual'
        ? `${r.portGap && !r.portGap.recovered ? 'never' : sec(r.portGap?.ms)}; any port ${sec(r.anyPortGap?.ms)}`
        : `${sec(r.portGap?.ms)}${r.portGap && !r.portGap.recovered ? ' (open)' : ''}`
    const tr = r.transitions
      .map((t) => `${t.fromVersion}->${t.toVersion} ${t.gapMs} / ${t.shutdownMs ?? '?'} / ${t.bootMs ?? '?'} ms`)
      .join('; ')
    L.push(
      `| ${r.way} | ${r.rep} | ${port} | ${sec(r.writeGapMs)} | ${sec(r.wallMs)} | ${r.boots.join(', ') || '–'} ms | ${tr || '–'} | ${r.actionGapOutput ?? '–'} | ${r.ok ? 'ok' : `FAILED: ${(r.error ?? '').split('\n')[0].replace(/\|/g, '/')}`} |`
    )
  }
  L.push('')
  return L.join('\n')
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const only = (process.env.BENCH_ONLY ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const ways = only.length ? [...WAYS, ...EXTRA_WAYS].filter((w) => only.includes(w)) : WAYS
  if (!ways.length) throw new Error(`BENCH_ONLY names no known way (${[...WAYS, ...EXTRA_WAYS].join(', ')})`)
  await removeStale()
  // every way starts with both images on the host (the action still checks the registry)
  for (const tag of [FROM, TO]) {
    await new Promise<void>((res, rej) => {
      docker.pull(simImage(tag), (err: Error | null, stream: NodeJS.ReadableStream) =>
        err ? rej(err) : docker.modem.followProgress(stream, (e: Error | null) => (e ? rej(e) : res()))
      )
    })
  }
  const bundle = snapshotBundle()
  const startedAt = new Date()
  const results: RunResult[] = []
  process.stderr.write(`[bench] downtime: ${ways.length} ways x ${RUNS} runs, interleaved\n`)
  for (let rep = 1; rep <= RUNS; rep++) {
    for (const way of ways) {
      const t = Date.now()
      const r = await runOnce(way, rep)
      results.push(r)
      process.stderr.write(
        `[bench] ${way} #${rep}: ${r.ok ? `port ${sec(r.portGap?.ms)}${r.anyPortGap ? ` (any ${sec(r.anyPortGap.ms)})` : ''}, writes ${sec(r.writeGapMs)}, wall ${sec(r.wallMs)}${r.actionGapOutput !== undefined ? `, leader-gap-ms ${r.actionGapOutput}` : ''}` : `FAILED ${r.error}`} [${sec(Date.now() - t)}]\n`
      )
    }
  }
  rmSync(DIST, { recursive: true, force: true })
  const md = report(results, ways, startedAt, Date.now() - startedAt.getTime(), bundle)
  mkdirSync(join(ROOT, 'build'), { recursive: true })
  writeFileSync(join(ROOT, 'build/bench-downtime.json'), JSON.stringify(results, null, 2))
  process.stdout.write(`${md}\n`)
  if (results.some((r) => !r.ok)) process.exitCode = 1
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    const c = current
    process.stderr.write(`[bench] ${sig}: removing ${c?.prefix ?? 'nothing'}\n`)
    rmSync(DIST, { recursive: true, force: true })
    void (c ? cleanupRun(c.prefix, c.db) : Promise.resolve()).finally(() => process.exit(130))
  })
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (e: unknown) => {
    process.stderr.write(`[bench] ${(e as Error).stack ?? String(e)}\n`)
    process.exit(1)
  }
)
