// `npm run bench -- hosts`: a node across hosts (docs/hosts.md) beside the same on one host, on
// the bed of hosts (test/support/hosts.ts: dedicated Docker daemons sharing the bed's Postgres),
// median of BENCH_RUNS runs (default 3), rounds interleaved:
//   drain-2h      operation drain: the lock from host 1's instance to the one waiting on host 2
//   handoff-1h    operation handoff of a failover pair on host 1 (same image): the one-host twin
//   upgrade-2h    a rolling upgrade 2.19.0 -> 2.20.0 across 2 hosts: host 2 (standby) first, then
//                 host 1 (the leader's host, measured: its handoff and its recreated standby)
//   upgrade-1h    operation upgrade of one node on host 1, 2.19.0 -> 2.20.0 (a standby clone)
// Figures per run, from the nodes' own logs (followed from before the run: the action removes
// containers) and their heartbeats (sim_heartbeats, one row every 150 ms by the leader):
//   writes paused     the longest gap between two heartbeats during the step
//   handoff overhead  the old node done (its "Shutting down due to" + "Graceful shutdown time":
//                     the lease released) to the new node taking the lease ("Starting
//                     StartUpHealthReport", its first line after the lock)
//   boot              the new node's lease to "Listening and serving HTTP"
//   stop -> lock      the action's own figure (its job summary's Handoffs table)
//   wall              the action's run (main + post step); for upgrade-2h the leader's host step
// The nodes run with the test lease (3 s, refresh 500 ms; test/support/node.ts).
import '../../src/cjs-shim.js'
import { cpSync } from 'node:fs'
import { PassThrough } from 'node:stream'
import { join, resolve } from 'node:path'
import type Docker from 'dockerode'
import { parseGoDuration } from '../../src/duration.js'
import { createDb, simImage, sleep, type TestDb } from '../support/bed.js'
import { nodeProcesses, startHosts, stopHosts, writerNow, type BedHost } from '../support/hosts.js'
import { startNode, writers } from '../support/node.js'
import { summaryHandoffs } from './lib/summary.js'

const ROOT = resolve(process.env.BENCH_ROOT ?? process.cwd())
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3) || 3)
const DIST = join(ROOT, 'build', `bench-hosts-dist-${process.pid}`)
const BUNDLE = join(DIST, 'index.js')
const PREFIX = `clr-bh-${process.pid.toString(36)}`
const OLD = '2.19.0'
const NEW = '2.20.0'
type Way = 'drain-2h' | 'handoff-1h' | 'upgrade-2h' | 'upgrade-1h'
const WAYS: Way[] = ['drain-2h', 'handoff-1h', 'upgrade-2h', 'upgrade-1h']

interface Log {
  lockAt?: number
  servingAt?: number
  signalAt?: number
  shutdownMs?: number
}

/** Follows a container's log from now: the figures it names, with the node's own timestamps. */
async function follow(api: Docker, name: string): Promise<{ log: Log; stop: () => void }> {
  const log: Log = {}
  const stream = (await api
    .getContainer(name)
    .logs({ follow: true, stdout: true, stderr: true, since: 0 })) as NodeJS.ReadableStream
  const out = new PassThrough()
  api.modem.demuxStream(stream, out, out)
  let buf = ''
  const seen = { lock: 0 }
  out.on('data', (d: Buffer) => {
    buf += d.toString()
    let i: number
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      const m = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) \[\w+\] (.*)$/.exec(line)
      if (m) {
        const at = Date.parse(m[1])
        if (m[2].startsWith('Starting StartUpHealthReport')) {
          seen.lock++
          log.lockAt = at
          log.servingAt = undefined
        } else if (m[2].startsWith('Listening and serving HTTP')) log.servingAt ??= at
        else if (m[2].startsWith('Shutting down due to')) log.signalAt ??= at
      }
      const g = /Graceful shutdown time: (\S+)/.exec(line)
      if (g) log.shutdownMs = parseGoDuration(g[1]) ?? 0
    }
  })
  stream.on('error', () => undefined)
  return { log, stop: () => (stream as unknown as { destroy?: () => void }).destroy?.() }
}

interface Result {
  way: Way
  ok: boolean
  error?: string
  pausedMs?: number
  overheadMs?: number
  bootMs?: number
  stopToLockMs?: number
  wallMs?: number
}

async function runOnce(hosts: BedHost[], way: Way, rep: number): Promise<Result> {
  const [h1, h2] = hosts
  const db: TestDb = await createDb('bh')
  const name = `${PREFIX}-${way}-${rep}`
  const res: Result = { way, ok: false }
  const followed: Array<{ stop: () => void }> = []
  try {
    await startNode({ name, tag: OLD, db, layout: 'bridge', api: h1.dockerd.api })
    await writerNow(db, OLD)
    let newApi: Docker = h1.dockerd.api
    let newName = name
    if (way === 'drain-2h' || way === 'upgrade-2h') {
      await startNode({ name, tag: OLD, db, layout: 'bridge', api: h2.dockerd.api, noWait: true })
      newApi = h2.dockerd.api
    } else if (way === 'handoff-1h') {
      newName = `${name}-b`
      await startNode({ name: newName, tag: OLD, db, layout: 'bridge', api: h1.dockerd.api, noWait: true })
    }
    if (way !== 'upgrade-1h') await nodeProcesses(db, 2)
    if (way === 'upgrade-2h') {
      const s = await h2.run(
        { operation: 'upgrade', container: name, image: simImage(NEW), 'stable-for': '3s' },
        { bundle: BUNDLE }
      )
      if (s.exitCode !== 0) throw new Error(`standby host step: exit ${s.exitCode} ${s.outputs.result}`)
      await nodeProcesses(db, 2)
    }
    const old = await follow(h1.dockerd.api, name)
    followed.push(old)
    const fresh = way !== 'upgrade-1h' ? await follow(newApi, newName) : undefined
    if (fresh) followed.push(fresh)
    await sleep(1000)
    const t0 = Date.now()
    const common = { container: name, 'stable-for': '3s', backup: 'false' }
    const inputs =
      way === 'drain-2h'
        ? { ...common, operation: 'drain' }
        : way === 'handoff-1h'
          ? { ...common, operation: 'handoff', standby: newName }
          : { ...common, operation: 'upgrade', image: simImage(NEW) }
    const r = await h1.run(inputs, { bundle: BUNDLE })
    res.wallMs = Date.now() - t0
    if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode} ${r.outputs.result}`)
    res.stopToLockMs = summaryHandoffs(r.summary)[0]?.lockTakenMs
    await sleep(1500)
    // the one-host upgrade's new node: the container that has the node's name now
    const neu = fresh ?? (await follow(h1.dockerd.api, name))
    if (!fresh) {
      followed.push(neu)
      await sleep(500)
    }
    const w = await writers(db)
    if (w.interleaved) throw new Error('two writers interleaved')
    res.pausedMs = w.maxGapMs
    const done = old.log.signalAt !== undefined ? old.log.signalAt + (old.log.shutdownMs ?? 0) : undefined
    if (neu.log.lockAt !== undefined && done !== undefined) res.overheadMs = neu.log.lockAt - done
    if (neu.log.lockAt !== undefined && neu.log.servingAt !== undefined) res.bootMs = neu.log.servingAt - neu.log.lockAt
    res.ok = true
  } catch (e) {
    res.error = (e as Error).message
  } finally {
    for (const f of followed) f.stop()
    for (const h of hosts)
      for (const c of await h.dockerd.api.listContainers({ all: true }))
        if (c.Names.some((x) => x.replace(/^\//, '').startsWith(name)))
          await h.dockerd.api
            .getContainer(c.Id)
            .remove({ force: true })
            .catch(() => undefined)
    await db.drop().catch(() => undefined)
  }
  process.stderr.write(`[bench hosts] ${way} #${rep}: ${JSON.stringify(res)}\n`)
  return res
}

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  return s.length ? s[Math.floor((s.length - 1) / 2)] : undefined
}
const ms = (x?: number) => (x === undefined ? '-' : `${Math.round(x)} ms`)

function report(results: Result[], startedAt: Date): string {
  const by = (w: Way) => results.filter((r) => r.way === w && r.ok)
  const med = (w: Way, f: (r: Result) => number | undefined) =>
    ms(
      median(
        by(w)
          .map(f)
          .filter((x): x is number => x !== undefined)
      )
    )
  const L: string[] = []
  L.push('## A node across hosts: drain and rolling upgrade, beside the same on one host')
  L.push('')
  L.push(
    `${startedAt.toISOString()}, ${RUNS} run(s) per way, rounds interleaved; simulator ${OLD} (-> ${NEW} for the upgrades), lease 3 s / refresh 500 ms, \`stable-for: 3s\`; each host a dedicated Docker daemon sharing the bed's Postgres.`
  )
  L.push('')
  L.push(
    "| figure (median) | drain across hosts | handoff of a pair on one host | rolling upgrade across hosts (leader's host step) | upgrade on one host |"
  )
  L.push('|---|---|---|---|---|')
  const row = (label: string, f: (r: Result) => number | undefined) =>
    L.push(`| ${label} | ${WAYS.map((w) => med(w, f)).join(' | ')} |`)
  row("leader's writes paused", (r) => r.pausedMs)
  row('handoff overhead (old node done -> new node took the lease)', (r) => r.overheadMs)
  row("stop -> lock taken (the action's figure)", (r) => r.stopToLockMs)
  row("new node's boot after the lock", (r) => r.bootMs)
  row('wall time of the run', (r) => r.wallMs)
  L.push(`| runs ok | ${WAYS.map((w) => `${by(w).length}/${RUNS}`).join(' | ')} |`)
  L.push('')
  const failed = results.filter((r) => !r.ok)
  for (const f of failed) L.push(`- ${f.way}: failed: ${f.error}`)
  return L.join('\n')
}

async function main(): Promise<void> {
  cpSync(join(ROOT, 'dist'), DIST, { recursive: true })
  const startedAt = new Date()
  const hosts = await startHosts(2, [OLD, NEW])
  const results: Result[] = []
  try {
    for (let rep = 1; rep <= RUNS; rep++) for (const w of WAYS) results.push(await runOnce(hosts, w, rep))
  } finally {
    await stopHosts(hosts, PREFIX)
  }
  process.stdout.write(report(results, startedAt) + '\n')
  if (results.some((r) => !r.ok)) process.exitCode = 1
}

main().catch((e) => {
  process.stderr.write(`[bench hosts] ${(e as Error).stack ?? e}\n`)
  process.exit(1)
})
