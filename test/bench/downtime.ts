// `npm run bench`, downtime part: the same upgrade of the simulated node (2.18.0 -> 2.19.0,
// the node's default lease: 10 s lease, 1 s refresh), done every way an operator can do it,
// side by side in one run, median of BENCH_RUNS runs (default 5), rounds interleaved so that
// noise from other work on the machine spreads over every way alike.
//
// Ways (the table in ways.ts, one function each), by layout:
//   host networking   action-host (this action: one handoff), watchtower-host
//   bridge            action-bridge (this action, no published ports: one handoff), watchtower-bridge
//   docs layout       action-ports (6688 published on 127.0.0.1, default `finish: swap`,
//                     docs/decisions.md), action-ports-2h (`finish: second-handoff`), verify-swap
//                     (the swap by hand: standby proven waiting, removed, then `docker stop` old ->
//                     `docker start` new; no gates), docs-manual (the Chainlink docs' procedure: a
//                     second container on a spare port proven waiting, then `docker kill` of the
//                     first), watchtower (stop / rm / create + start, image pulled first)
//
// Figures per run (the bench sends the node no request while it measures: see probe.ts):
//   port gap    longest time no container served HTTP on the node's port, from the containers'
//               own log timestamps (ms)
//   write gap   longest gap between consecutive heartbeat rows of the leader(s) (sim_heartbeats)
//   wall        from the first change to the end (the action: main + post step)
//   boot        the node's own boot after the lock, from its log: "Starting StartUpHealthReport"
//               (the first line after the lease is taken) to "Listening and serving HTTP"
//   handoff overhead (per leader change)  the old node's end (the stop signal's log line + its
//               "Graceful shutdown time", or its `die` when killed) to the new node's lease
//   stop -> lock taken, aim engaged   the action's own account of each handoff (its job summary)
//   requests    the most requests one client address sent the node's containers in any 60 s
//               window of the upgrade, from the simulator's own counts (lib/requests.ts)
//   action overhead  wall - (stable-for + boot) for each handoff the action made
//
// Output: a Markdown report on stdout (run.sh keeps it in build/bench.md); every run's raw
// figures, with the action's job summary, in build/bench-downtime.json. Env: BENCH_RUNS (5),
// BENCH_ONLY (comma list of ways). The simulator image carries the real image's HEALTHCHECK
// (Docker's 30 s interval), so every way runs with the real image's timing.
import '../../src/cjs-shim.js'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { PassThrough } from 'node:stream'
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import pg from 'pg'
import { parseGoDuration } from '../../src/duration.js'
import { createDb, docker, loadBed, simImage, sleep, waitFor, type TestDb } from '../support/bed.js'
import { startNode } from '../support/node.js'
import { busiest, REQUESTS_MOUNT, type Busiest } from './lib/requests.js'
import { summaryHandoffs, type SummaryHandoff } from './lib/summary.js'
import { longestGap, servingAt, type Span, type Window } from './probe.js'
import {
  convertToHolder,
  FROM,
  LEASE,
  leaseHolder,
  PID_LABEL,
  STABLE_FOR,
  STABLE_FOR_MS,
  TO,
  WAYS,
  type Way
} from './ways.js'

const ROOT = resolve(process.env.BENCH_ROOT ?? process.cwd())
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 5) || 5)
const REFRESH_MS = parseGoDuration(LEASE.refresh)!
const TAG = `clr-bench-${process.pid.toString(36)}`
const DB_PREFIX = `clr_bench_${process.pid}`
// The bundle is copied once at the start and every run uses the copy: dist/ may be rebuilt by
// someone else while the bench runs, and one report must measure one bundle.
const DIST = join(ROOT, 'build', `bench-dist-${process.pid}`)
/** a second published port, standing for the node's P2P port (docs layout) */
const P2P = '6690/tcp'

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
  /** where its web server serves, as a client reaches it: the host port (docs layout, host networking) */
  hostPort?: string
  /** its web server stopped: "Shutting down due to" or Docker's `die` event, whichever came first */
  stoppedAt?: number
  /** "Shutting down due to <signal>": the stop signal reached the node */
  signalAt?: number
  /** Docker's `die` event */
  dieAt?: number
  /** Docker's `start` event */
  startAt?: number
  /** the host port it publishes for 6690/tcp (the P2P stand-in) */
  p2pPort?: string
  /** "Graceful shutdown time: <d>" */
  shutdownMs?: number
  waiting: boolean
  lines: string[]
}

class LogWatch {
  readonly logs = new Map<string, NodeLog>()
  private events?: NodeJS.ReadableStream
  private streams: NodeJS.ReadableStream[] = []
  constructor(private readonly prefix: string) {}

  async start(): Promise<void> {
    const ev = (await docker.getEvents({
      filters: { type: ['container'], event: ['start', 'die'] }
    })) as NodeJS.ReadableStream
    this.events = ev
    let buf = ''
    ev.on('data', (d: Buffer) => {
      buf += d.toString()
      let i: number
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i)
        buf = buf.slice(i + 1)
        try {
          const e = JSON.parse(line) as {
            id: string
            status?: string
            Action?: string
            timeNano?: number
            Actor?: { Attributes?: { name?: string } }
          }
          const name = e.Actor?.Attributes?.name
          if (!name?.startsWith(this.prefix)) continue
          if ((e.Action ?? e.status) === 'die') {
            const log = this.logs.get(e.id)
            const at = Math.floor((e.timeNano ?? Date.now() * 1e6) / 1e6)
            if (log) {
              log.dieAt = at
              log.stoppedAt = Math.min(log.stoppedAt ?? Infinity, at)
            }
          } else void this.attach(e.id, name, Math.floor((e.timeNano ?? Date.now() * 1e6) / 1e6))
        } catch {
          /* not a whole event */
        }
      }
    })
    ev.on('error', () => undefined)
  }

  private async attach(id: string, name: string, startAt: number): Promise<void> {
    const seen = this.logs.get(id)
    if (seen) {
      // started again (the port holder's restart policy): a new span
      seen.startAt = startAt
      seen.dieAt = undefined
      return
    }
    const log: NodeLog = { id, name, waiting: false, lines: [], startAt }
    this.logs.set(id, log)
    void docker
      .getContainer(id)
      .inspect()
      .then((i) => {
        const hp = i.HostConfig.PortBindings?.['6688/tcp']?.[0]?.HostPort
        if (hp) log.hostPort = hp
        const p2p = i.HostConfig.PortBindings?.[P2P]?.[0]?.HostPort
        if (p2p) log.p2pPort = p2p
      })
      .catch(() => undefined)
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
      else if (msg.startsWith('Listening and serving HTTP')) {
        log.servingAt ??= at
        // host networking: the node's own port is the host's
        const port = / on [^ ]*:(\d+)$/.exec(msg)?.[1]
        if (port && !log.hostPort) log.hostPort = `own:${port}`
      } else if (msg.startsWith('Shutting down due to')) {
        log.signalAt ??= at
        log.stoppedAt = Math.min(log.stoppedAt ?? Infinity, at)
      } else if (msg.startsWith('Another application is currently holding the database lease')) log.waiting = true
      const app = /Chainlink booted in .*appID=([0-9a-f-]{36})/.exec(msg)
      if (app) log.appId = app[1]
    }
    const g = /Graceful shutdown time: (\S+)/.exec(line)
    if (g) log.shutdownMs = parseGoDuration(g[1]) ?? 0
  }

  byApp(appId: string): NodeLog | undefined {
    return [...this.logs.values()].find((l) => l.appId === appId)
  }

  /** Each container's time serving HTTP; `where` picks the containers (all when not given). */
  spans(where?: (l: NodeLog) => boolean): Span[] {
    return [...this.logs.values()]
      .filter((l) => l.servingAt !== undefined && (!where || where(l)))
      .map((l) => ({ from: l.servingAt!, to: l.stoppedAt }))
  }

  /**
   * When a running container published the P2P stand-in's host port (Docker's start -> die):
   * whether the port is there at all. A node binds its P2P port after the lock, like 6688
   * (docs/node-facts.md §4), so the app-level figure is the HTTP one; this one says whether the
   * published port itself stays up (the holder) or goes with the container (swap, stop/rm/run).
   */
  p2pSpans(port: string): Span[] {
    return [...this.logs.values()]
      .filter((l) => l.p2pPort === port && l.startAt !== undefined)
      .map((l) => ({ from: l.startAt!, to: l.dieAt }))
  }

  /** Waits for container `id`'s "Listening and serving HTTP"; its time. */
  async served(id: string, timeoutMs = 60_000): Promise<number> {
    const log = await waitFor(
      `${id.slice(0, 12)} serving HTTP`,
      async () => {
        const l = this.logs.get(id)
        return l?.servingAt !== undefined ? l : undefined
      },
      timeoutMs,
      20
    )
    return log.servingAt!
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

/** `since`: only the heartbeats from then (a conversion before the measured run is not measured). */
async function readWrites(db: TestDb, since = 0): Promise<Writes> {
  const c = await db.client()
  try {
    const rows = (
      await c.query<{ app_id: string; version: string; ms: string }>(
        `SELECT app_id::text, version, (extract(epoch from at) * 1000)::text AS ms FROM sim_heartbeats WHERE at >= to_timestamp($1::float8 / 1000) ORDER BY at, id`,
        [since]
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
// ---------------------------------------------------------------------------------------------
// One run of one way

interface RunResult {
  way: Way
  rep: number
  ok: boolean
  error?: string
  portGap?: Window
  /** the P2P stand-in's published port: longest time no running container published it */
  p2pGap?: Window
  /** docs-manual: across the original and the spare port */
  anyPortGap?: Window
  writeGapMs?: number
  wallMs?: number
  boots: number[]
  handoffOverheads: number[]
  transitions: Array<Transition & { shutdownMs?: number; bootMs?: number; overheadMs?: number }>
  actionOverheadMs?: number
  actionGapOutput?: number
  actionMainMs?: number
  /** the action's own account of each handoff: stop -> lock taken, and whether the stop was aimed */
  actionHandoffs?: SummaryHandoff[]
  /** the most requests one client address sent the node in any 60 s window of the upgrade */
  requests?: Busiest
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
  const spec = WAYS[way]
  const layout = spec.layout
  const name = `${TAG}-${spec.short}${rep}`
  const res: RunResult = { way, rep, ok: false, boots: [], handoffOverheads: [], transitions: [] }
  const logs = new LogWatch(name)
  let db: TestDb | undefined
  let pgc: pg.Client | undefined
  const dir = mkdtempSync(join(tmpdir(), 'clr-bench-'))
  // every container of the node writes its request counts here (the image runs as a non-root user)
  const reqDir = join(dir, 'requests')
  mkdirSync(reqDir)
  chmodSync(reqDir, 0o777)
  const extras = { env: { SIM_REQUESTS_DIR: REQUESTS_MOUNT }, binds: [`${reqDir}:${REQUESTS_MOUNT}`] }
  current = { prefix: name }
  try {
    db = await createDb(DB_PREFIX)
    current.db = db
    await logs.start()
    const old = await startNode({
      name,
      tag: FROM,
      db,
      layout,
      lease: LEASE,
      labels: { [PID_LABEL]: String(process.pid) },
      env: extras.env,
      binds: extras.binds,
      extraPorts: layout === 'ports' ? [P2P] : undefined
    })
    pgc = await db.client()
    let oldApp = await waitFor('old lease holder', () => leaseHolder(pgc!), 10_000, 50)
    if (spec.holder) {
      await convertToHolder({ name, dir, bundle: join(DIST, 'index.js') })
      const before = oldApp
      oldApp = await waitFor(
        'converted lease holder',
        async () => {
          const h = await leaseHolder(pgc!)
          return h && h !== before ? h : undefined
        },
        20_000,
        50
      )
      old.id = (await docker.getContainer(name).inspect()).Id
    }

    // The node's port: docs layout the published host port, host networking the node's own
    // port, bridge without published ports whichever container of the node serves (as a client
    // resolving the container by name reaches it).
    // The port-holder layout: every instance joins the holder, which publishes the port.
    const onPort = (l: NodeLog) =>
      layout === 'bridge' ||
      (spec.holder && !l.name.endsWith('-port-holder')) ||
      l.hostPort === (layout === 'host' ? `own:${old.port}` : String(old.port))
    // a steady baseline: the old leader serving and writing
    await sleep(1000)
    const t0 = Date.now()
    const end = await spec.run({
      name,
      db,
      pgc,
      old,
      oldApp,
      image: simImage(TO),
      t0,
      dir,
      bundle: join(DIST, 'index.js'),
      served: (id) => logs.served(id)
    })
    const { endAt } = end
    res.wallMs = end.wallMs
    res.actionMainMs = end.action?.mainMs
    res.actionSummary = end.action?.summary
    res.actionGapOutput = end.action?.gapMs
    if (end.action) res.actionHandoffs = summaryHandoffs(end.action.summary)

    // let the final leader serve and write for a while (and write its request counts, at most
    // once a second), then read everything
    const onMain = way === 'docs-manual' ? undefined : onPort
    await waitFor('final leader serving', async () => servingAt(logs.spans(onMain), Date.now()), 30_000, 50)
    await sleep(1500)
    const measuredTo = Date.now()
    res.portGap = longestGap(logs.spans(onPort), t0, measuredTo)
    const p2p = old.extra?.[P2P]
    if (p2p) res.p2pGap = longestGap(logs.p2pSpans(String(p2p)), t0, measuredTo)
    if (way === 'docs-manual') res.anyPortGap = longestGap(logs.spans(), t0, measuredTo)
    res.requests = busiest(reqDir, t0, endAt)
    const w = await readWrites(db, t0 - 500)
    res.writeGapMs = Math.round(w.maxGapMs)
    res.writers = w.writers
    res.interleaved = w.interleaved
    res.finalVersion = w.versions.at(-1)
    for (const tr of w.transitions) {
      const from = logs.byApp(tr.from)
      const to = logs.byApp(tr.to)
      const bootMs = to?.lockAt !== undefined && to.servingAt !== undefined ? to.servingAt - to.lockAt : undefined
      const shutdownMs = from?.shutdownMs ?? (way === 'docs-manual' ? 0 : undefined)
      // The old node is done when its graceful shutdown ends (the lease released) or when it died
      // (killed: nothing released); the new node's lease is taken at its next log line.
      const doneAt =
        from?.signalAt !== undefined && from.shutdownMs !== undefined ? from.signalAt + from.shutdownMs : from?.dieAt
      const overheadMs = to?.lockAt !== undefined && doneAt !== undefined ? to.lockAt - doneAt : undefined
      res.transitions.push({ ...tr, gapMs: Math.round(tr.gapMs), bootMs, shutdownMs, overheadMs })
      if (bootMs !== undefined) res.boots.push(bootMs)
      if (overheadMs !== undefined) res.handoffOverheads.push(overheadMs)
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
/** nearest-rank percentile */
const pct = (xs: number[], p: number): number | undefined => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : undefined
}
const msf = (ms?: number) => (ms === undefined ? '–' : `${Math.round(ms)} ms`)
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
  const LAYOUT = { host: 'host networking', bridge: 'bridge', ports: 'docs layout (published port)' }
  L.push(
    "| layout | way | handoff overhead, median / p90 | stop -> lock taken (the action's own figure), median | aim engaged | most requests in a 60 s window from one address (429s) | /readyz down on the node's port | leader's writes paused | wall time | action overhead | runs ok |"
  )
  L.push('|---|---|---|---|---|---|---|---|---|---|---|')
  for (const layout of ['host', 'bridge', 'ports'] as const)
    for (const w of ways.filter((x) => WAYS[x].layout === layout)) {
      const rs = by(w)
      const n = `${rs.length}/${results.filter((r) => r.way === w).length}`
      const head = `| ${LAYOUT[layout]} | ${WAYS[w].title} |`
      if (!rs.length) {
        L.push(`${head} – | – | – | – | – | – | – | – | ${n} |`)
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
      const hos = rs.flatMap((r) => r.handoffOverheads)
      const hs = rs.flatMap((r) => r.actionHandoffs ?? [])
      const aimable = hs.filter((h) => !h.swap)
      const swaps = hs.length - aimable.length
      const aim = isAction
        ? `${aimable.filter((h) => h.aimed).length}/${aimable.length}${swaps ? ` (+${swaps} swap${swaps > 1 ? 's' : ''}: nothing to aim at)` : ''}`
        : '–'
      const lockTaken = isAction
        ? msf(median(aimable.flatMap((h) => (h.lockTakenMs === undefined ? [] : [h.lockTakenMs]))))
        : '–'
      const req = Math.max(...rs.map((r) => r.requests?.max60s ?? 0))
      const rej = rs.reduce((a, r) => a + (r.requests?.rejected ?? 0), 0)
      const addr = [...new Set(rs.map((r) => r.requests?.address).filter(Boolean))].join(', ')
      L.push(
        `${head} ${msf(median(hos))} / ${msf(pct(hos, 90))} | ${lockTaken} | ${aim} | ${req}${addr ? ` (${addr})` : ''}${req > 300 ? ' **over the 300 budget**' : ''}, ${rej} × 429 | ${port} | ${sec(wg)}${ratio(wg, lb)} | ${sec(wall)}${ratio(wall, lb)} | ${isAction ? `${sec(ov)}${ratio(ov, lb)}` : '–'} | ${n} |`
      )
    }
  const notAimed = [
    ...new Set(ok.flatMap((r) => (r.actionHandoffs ?? []).filter((h) => !h.aimed && !h.swap).map((h) => h.note)))
  ]
  if (notAimed.length)
    L.push('', `Stops not aimed, as the action reported them: ${notAimed.map((x) => `"${x}"`).join('; ')}.`)
  L.push('')
  L.push('How each figure is taken:')
  L.push(
    "- **/readyz down**: no prober (it would spend the node's request budget, and share the action's client address with host networking): each container's own log says when its web server started serving (\"Listening and serving HTTP\", ms timestamps) and when it stopped (\"Shutting down due to\", or Docker's `die` event when killed); the longest time no container served on the node's port. Docs layout: the published host port; host networking: the node's port; bridge: any container of the node."
  )
  L.push(
    "- **handoff overhead** (median and 90th percentile over every leader change): from the old node's end (its \"Shutting down due to\" line + its \"Graceful shutdown time\", i.e. the lease released; when killed, Docker's `die` event) to the new node taking the lease (its next log line, \"Starting StartUpHealthReport\"), both from the nodes' own ms timestamps: what a handoff costs beyond the two nodes' own work (waiting for the standby's next lease poll, creating and starting a container, or the lease expiry after a kill). The leader's writes paused = the old node's shutdown + this + the new node's boot after the lock, up to the 150 ms heartbeat spacing."
  )
  L.push(
    '- **stop -> lock taken**: the action\'s own figure (the "lock taken after" column of its job summary), handoffs to a running standby only. **aim engaged**: handoffs whose stop the action aimed at the standby\'s next lease poll (its summary\'s note "aimed (held N ms)"), of the handoffs to a running standby; a swap starts the new node after the stop, so there is nothing to aim at.'
  )
  L.push(
    `- **most requests in a 60 s window**: the simulator's own count of every request (429s included) per client address, all the node's containers together, in whole seconds, from the way's first step to its end (the action: main + post step); the node's limit is 1000, the action's budget 300. The bench itself sends the node nothing during the upgrade.`
  )
  L.push(
    '- **writes paused**: the longest gap between consecutive heartbeat rows the leader writes every 150 ms (`sim_heartbeats`), i.e. how long the node did no work.'
  )
  L.push(
    '- **wall time**: the action: main + post step as the runner runs them, including its checks and the `stable-for` hold after each handoff. Scripted ways: from the first docker call to the new node serving HTTP (its "Listening and serving HTTP" line; no checks after that).'
  )
  L.push(
    `- **action overhead** = wall time − (stable-for ${STABLE_FOR} + the new node's boot after the lock) for each leader change it made (2 with \`finish: second-handoff\`, 1 otherwise): preflight, pull check, standby start and gate, the stop, the wait for the standby's next lease poll, lock and health checks, renames and removals.`
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
    L.push('')
  }

  // docs layout: the port holder beside the other ways of keeping the published ports, host networking the reference
  if (by('action-holder').length) {
    const cols: Array<[Way, string]> = [
      ['action-holder', '`port-holder: true`'],
      ['action-ports', '`finish: swap`'],
      ['action-ports-2h', '`finish: second-handoff`'],
      ['watchtower', 'stop / rm / run'],
      ['action-host', 'host networking (reference)']
    ]
    const present = cols.filter(([w]) => by(w).length)
    const ovh = (w: Way) => median(by(w).flatMap((r) => r.handoffOverheads))
    L.push('### Docs layout: the port holder, the two finishes, stop / rm / run; host networking as the reference')
    L.push('')
    L.push(`| figure (median) | ${present.map(([, t]) => t).join(' | ')} |`)
    L.push(`|---|${present.map(() => '---|').join('')}`)
    const row = (label: string, f: (w: Way) => string) =>
      L.push(`| ${label} | ${present.map(([w]) => f(w)).join(' | ')} |`)
    row('handoff overhead (per leader change)', (w) => msf(ovh(w)))
    row("leader's writes paused", (w) => sec(med(w, (r) => r.writeGapMs)))
    row('/readyz down on the published port (HTTP)', (w) => sec(med(w, (r) => r.portGap?.ms)))
    row('second published port (P2P stand-in) unpublished', (w) =>
      w === 'action-host' ? '– (no published port)' : sec(med(w, (r) => r.p2pGap?.ms))
    )
    row('wall time', (w) => sec(med(w, (r) => r.wallMs)))
    L.push('')
    const hOv = ovh('action-holder')
    const hostOv = ovh('action-host')
    const hPort = med('action-holder', (r) => r.portGap?.ms)
    const hWork = med('action-holder', (r) => r.writeGapMs)
    const verdict = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? '**met**' : '**missed**')
    L.push(
      `Targets (issue 23): holder overhead within 150 ms of host networking's median: ${msf(hOv)} vs ${msf(hostOv)} -> ${verdict(hOv === undefined || hostOv === undefined ? undefined : hOv - hostOv <= 150)}; the published port dark no longer than the leader's pause + 100 ms: ${sec(hPort)} vs ${sec(hWork)} + 100 ms -> ${verdict(hPort === undefined || hWork === undefined ? undefined : hPort <= hWork + 100)}.`
    )
    L.push(
      "The P2P stand-in is a second published port (6690) the simulator does not listen on: the figure is the longest time no running container published it (Docker's start and die events). A real node binds its P2P port after the lock, as it does 6688 (docs/node-facts.md §4), so at the application level the P2P port is dark about as long as HTTP; this row says whether the published port itself stays (the holder never stops) or goes with the container."
    )
    L.push('')
  }

  L.push('### Every run')
  L.push('')
  L.push(
    '| way | run | /readyz down | writes paused | wall | boot(s) after lock | leader changes: writes paused / old shutdown / new boot after lock / handoff overhead | action: stop -> lock taken, aim | most requests / 60 s | result |'
  )
  L.push('|---|---|---|---|---|---|---|---|---|---|')
  for (const r of [...results].sort((x, y) => ways.indexOf(x.way) - ways.indexOf(y.way) || x.rep - y.rep)) {
    const port =
      r.way === 'docs-manual'
        ? `${r.portGap && !r.portGap.recovered ? 'never' : sec(r.portGap?.ms)}; any port ${sec(r.anyPortGap?.ms)}`
        : `${sec(r.portGap?.ms)}${r.portGap && !r.portGap.recovered ? ' (open)' : ''}`
    const tr = r.transitions
      .map(
        (t) =>
          `${t.fromVersion}->${t.toVersion} ${t.gapMs} / ${t.shutdownMs ?? '?'} / ${t.bootMs ?? '?'} / ${t.overheadMs ?? '?'} ms`
      )
      .join('; ')
    const hs = (r.actionHandoffs ?? [])
      .map((h) => `${msf(h.lockTakenMs)}, ${h.aimed ? 'aimed' : h.swap ? 'swap' : 'not aimed'}`)
      .join('; ')
    L.push(
      `| ${r.way} | ${r.rep} | ${port} | ${sec(r.writeGapMs)} | ${sec(r.wallMs)} | ${r.boots.join(', ') || '–'} ms | ${tr || '–'} | ${hs || '–'} | ${r.requests ? `${r.requests.max60s} (${r.requests.address ?? '–'})` : '–'} | ${r.ok ? 'ok' : `FAILED: ${(r.error ?? '').split('\n')[0].replace(/\|/g, '/')}`} |`
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
  const all = Object.keys(WAYS) as Way[]
  const ways = only.length ? all.filter((w) => only.includes(w)) : all
  if (!ways.length) throw new Error(`BENCH_ONLY names no known way (${all.join(', ')})`)
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
  // stopped part-way (a timeout, ^C): the report of the runs done so far
  partial = () => report(results, ways, startedAt, Date.now() - startedAt.getTime(), bundle)
  process.stderr.write(`[bench] downtime: ${ways.length} ways x ${RUNS} runs, interleaved\n`)
  for (let rep = 1; rep <= RUNS; rep++) {
    for (const way of ways) {
      const t = Date.now()
      const r = await runOnce(way, rep)
      results.push(r)
      process.stderr.write(
        `[bench] ${way} #${rep}: ${r.ok ? `overhead ${r.handoffOverheads.join('/')} ms, aim ${(r.actionHandoffs ?? []).map((h) => (h.aimed ? 'yes' : h.swap ? 'swap' : 'no')).join('/') || '–'}, req ${r.requests?.max60s ?? '?'}, port ${sec(r.portGap?.ms)}${r.anyPortGap ? ` (any ${sec(r.anyPortGap.ms)})` : ''}, writes ${sec(r.writeGapMs)}, wall ${sec(r.wallMs)}${r.actionGapOutput !== undefined ? `, leader-gap-ms ${r.actionGapOutput}` : ''}` : `FAILED ${r.error}`} [${sec(Date.now() - t)}]\n`
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

let partial: (() => string) | undefined

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    const c = current
    process.stderr.write(`[bench] ${sig}: removing ${c?.prefix ?? 'nothing'}\n`)
    if (partial) process.stdout.write(`${partial()}\n(stopped by ${sig} part-way: the runs done so far)\n`)
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
