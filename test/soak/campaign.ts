// `npm run soak -- --runs N --seed S [--only K] [--jobs J]`: the fault campaign (docs/reliability.md, "Fault
// campaign"). Each run draws from (seed, run) an operation, a layout and up to two faults at lines
// of main's output (draw.ts), runs the bundle as the runner does with those faults (faults.ts),
// does what an operator would (the post step on a cancel; `repair` when a journal is left open;
// `status` when the node is not serving), then checks the invariants from the DB and Docker
// (invariants.ts). The table goes to stdout and build/soak.md; progress to stderr.
import '../../src/cjs-shim.js'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type Docker from 'dockerode'
import { createDb, docker, loadBed, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { visible, type ActionRun } from '../support/action.js'
import { startNode } from '../support/node.js'
import { dbState, runFaulted } from '../support/fault.js'
import { startPgCluster, type PgCluster } from '../support/pg-cluster.js'
import type { DedicatedDockerd } from '../support/dedicated-dockerd.js'
import { describePlan, planOf, type Plan } from './draw.js'
import {
  atALine,
  Daemons,
  hooksFor,
  mountSmallDisk,
  startRunRegistry,
  stepLabel,
  stepLines,
  type Fired,
  type RunRegistry
} from './faults.js'
import {
  journalPhase,
  markerKept,
  namedCommand,
  noSecret,
  oneWriter,
  serving,
  truthful,
  writeMarker,
  type Violation
} from './invariants.js'

interface Args {
  runs: number
  seed: number
  only?: number
  /** print each run's draw and run nothing */
  list?: boolean
  /** runs at once, each worker with daemons of its own (a run's faults touch only its own node,
   *  DB or cluster and daemons, so runs of different workers cannot disturb each other's faults) */
  jobs: number
}

function parseArgs(argv: string[]): Args {
  const a: Args = { runs: 4, seed: 1, jobs: 1 }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--list') {
      a.list = true
      continue
    }
    const v = Number(argv[i + 1])
    if (argv[i] === '--runs') a.runs = v
    else if (argv[i] === '--seed') a.seed = v
    else if (argv[i] === '--only') a.only = v
    else if (argv[i] === '--jobs') a.jobs = v
    else throw new Error(`unknown argument ${argv[i]} (usage: --runs N --seed S [--only K] [--jobs J] [--list])`)
    if (!Number.isInteger(v) || v < 0) throw new Error(`${argv[i]} needs a whole number`)
    if (argv[i] === '--jobs' && v < 1) throw new Error('--jobs needs at least 1')
    i++
  }
  return a
}

interface RunRow {
  run: number
  plan: Plan
  fired: Fired[]
  results: string[]
  end: string
  violations: Violation[]
  error?: string
  ms: number
}

const ROOT = process.env.SOAK_ROOT ?? resolve(import.meta.dirname, '../..')
const log = (s: string) => process.stderr.write(`[soak] ${s}\n`)
const SECRETS = [loadBed().pg.password, 'clr-pg-cluster-password']
const SOAK_PASSWORD_FREE = 'clr-soak'

function summarise(label: string, r: ActionRun): string {
  return `${label}: exit ${r.exitCode}${r.outputs.result ? ` ${r.outputs.result}` : ''}${r.killed ? ' (killed)' : ''}${r.hung ? ' HUNG' : ''}`
}

/** Where a node that does not serve is: the DB's versions and the node's containers. */
async function evidence(api: Docker, prefix: string, db: TestDb): Promise<string> {
  const d = await dbState(db).catch(() => undefined)
  const cs = (await api.listContainers({ all: true })).filter((c) => c.Names.some((n) => n.startsWith(`/${prefix}`)))
  const states = await Promise.all(
    cs.map(async (c) => {
      const i = await api.getContainer(c.Id).inspect()
      return `${c.Names[0].slice(1).split(prefix).join('<node>')} ${c.Image.split(':').pop()} ${i.State.Status} exit ${i.State.ExitCode} restarts ${i.RestartCount}`
    })
  )
  return `evidence: goose ${d?.goose}, node_versions ${d?.nodeVersion}, lease holder ${d?.holder ?? 'none'}; ${states.join(', ')}`
}

/** A pull of ref into the run's daemon (from the run's own registry). */
async function pullInto(api: Docker, ref: string): Promise<void> {
  const stream = await api.pull(ref)
  await new Promise<void>((res, rej) => api.modem.followProgress(stream, (e: Error | null) => (e ? rej(e) : res())))
}

/** Every run's output as the runner shows it, the evidence of a violation: build/soak-logs/. */
function keepLogs(seed: number, k: number, runs: [string, ActionRun][]): void {
  const dir = join(ROOT, 'build', 'soak-logs')
  mkdirSync(dir, { recursive: true })
  const text = runs
    .map(([l, r]) => `=== ${summarise(l, r)}; outputs ${JSON.stringify(r.outputs)}\n${visible(r.stdout)}`)
    .join('\n')
  writeFileSync(join(dir, `seed-${seed}-run-${k}.log`), text)
}

async function oneRun(seed: number, k: number, daemons: Daemons): Promise<RunRow> {
  const t0 = Date.now()
  const plan = planOf(seed, k)
  log(`seed ${seed} run ${k}: ${describePlan(plan)}`)
  const row: RunRow = { run: k, plan, fired: [], results: [], end: '', violations: [], ms: 0 }
  const daemonFault = plan.faults.find((f) => f.kind.startsWith('dockerd-restart'))
  const pgFault = plan.faults.some((f) => f.kind.startsWith('pg-restart'))
  let dockerd: DedicatedDockerd | undefined
  let cluster: PgCluster | undefined
  let db: TestDb | undefined
  let api: Docker = docker
  let unmount: (() => void) | undefined
  let registry: RunRegistry | undefined
  const registryFault = plan.faults.find((f) => f.kind === 'registry-down')
  const prefix = uniqueName(SOAK_PASSWORD_FREE)
  const stateDir = mkdtempSync(join(tmpdir(), 'clr-soak-state-'))
  const backupDir = join(stateDir, 'backups')
  mkdirSync(backupDir)
  try {
    if (daemonFault) {
      dockerd = await daemons.get(daemonFault.kind === 'dockerd-restart-live')
      api = dockerd.api
    }
    if (pgFault) {
      cluster = await startPgCluster()
      db = cluster.db
    } else db = await createDb('soak')
    // a registry of the run's own when it is to go down: the node's images come from it
    if (registryFault) registry = await startRunRegistry()
    const image = registry ? (tag: string) => registry!.image(tag) : simImage
    if (registry) await pullInto(api, image(plan.from))
    const name = `${prefix}-a`
    const names = plan.layout === 'pair' ? [name, `${prefix}-b`] : [name]
    const layout = plan.layout === 'pair' ? 'ports' : plan.layout
    await startNode({ name, tag: plan.from, image: image(plan.from), db, layout, api })
    if (plan.layout === 'pair')
      await startNode({ name: names[1], tag: plan.from, image: image(plan.from), db, layout, api, noWait: true })
    const env: Record<string, string> = dockerd ? { DOCKER_HOST: dockerd.host } : {}
    const common: Record<string, string> = {
      container: name,
      ...(names[1] ? { standby: names[1] } : {}),
      'state-dir': stateDir,
      'backup-dir': backupDir,
      'stable-for': '2s',
      'ready-timeout': plan.op === 'upgrade-bad' ? '8s' : '45s'
    }
    const act = (inputs: Record<string, string>, hooks = [] as ReturnType<typeof hooksFor>) =>
      runFaulted({ ...common, ...inputs }, hooks, { env, deadlineMs: 240_000 })
    await writeMarker(db, 'before-backup')
    let inputs: Record<string, string>
    if (plan.op === 'restore') {
      const b = await act({ operation: 'backup' })
      if (b.outputs.result !== 'ok') throw new Error(`setup: the backup to restore failed (${summarise('backup', b)})`)
      inputs = { operation: 'restore', 'backup-file': b.outputs['backup-file'], 'stop-node': 'true' }
    } else if (plan.op === 'repair') {
      // what repair repairs: an upgrade whose runner died at a drawn line
      const u = await act({ operation: 'upgrade', image: simImage('2.19.0') }, [
        { when: (out) => stepLines(out).length >= plan.killAt!, do: 'sigkill' }
      ])
      row.results.push(summarise('killed upgrade', u))
      inputs = { operation: 'repair' }
    } else if (plan.op.startsWith('upgrade')) inputs = { operation: 'upgrade', image: image(plan.to!) }
    else inputs = { operation: plan.op }
    await writeMarker(db, 'before-run')
    const disk = plan.faults.find((f) => f.kind === 'disk-full')
    if (disk) {
      unmount = mountSmallDisk(backupDir, disk.sizeMb ?? 1)
      row.fired.push({ kind: 'disk-full', step: '(from the start)', note: `${disk.sizeMb} MB tmpfs` })
    }
    if (registryFault && !atALine(registryFault)) {
      registry!.kill()
      row.fired.push({ kind: 'registry-down', step: '(from the start)', note: `${registry!.host} killed` })
    }
    const target = { api, prefix, name, db, dockerd, cluster, registry }
    const asyncFired: Fired[] = []
    const hookFaults = plan.faults.filter(atALine)
    const run = await act(inputs, hooksFor(hookFaults, target, asyncFired))
    await run.faultsDone.catch(() => undefined)
    const lines = stepLines(run.stdout.split('\n--- post ---\n')[0])
    hookFaults.forEach((f, i) => {
      if (!run.fired[i]) return
      const step = stepLabel(lines[f.atLine - 1] ?? '?', prefix)
      const rec = asyncFired.find((x) => x.kind === f.kind && !x.step)
      if (rec) rec.step = step
      row.fired.push(rec ?? { kind: f.kind, step })
    })
    row.results.push(`${summarise(plan.op, run)} (${lines.length} lines)`)
    const upgrade =
      plan.op.startsWith('upgrade') || plan.op === 'repair'
        ? { oldImage: simImage(plan.from), newImage: simImage(plan.to ?? '2.19.0') }
        : undefined
    const cancelled = hookFaults.some((f, i) => f.kind === 'cancel' && run.fired[i])
    row.violations.push(
      ...(await truthful(plan.op, run, api, name, { upgrade, cancelled, failedSaysOld: plan.op !== 'repair' }))
    )
    const runs: [string, ActionRun][] = [[plan.op, run]]
    // what the run wrote on the small disk is read before the disk goes
    if (unmount) row.violations.push(...noSecret('backup disk', run, [backupDir], SECRETS))
    unmount?.()
    unmount = undefined
    // the operator's next run: repair when the operation was left open, or the node is not serving
    let repaired: ActionRun | undefined
    const repair = async () => {
      repaired = await act({ operation: 'repair' })
      runs.push(['repair', repaired])
      row.results.push(summarise('repair', repaired))
      row.violations.push(
        ...(await truthful('repair', repaired, api, name, { upgrade, cancelled: false, failedSaysOld: false }))
      )
    }
    const phase = journalPhase(stateDir)
    if (phase !== undefined && phase !== 'done') await repair()
    let s = await serving(api, names, db)
    if (!s.serving && !repaired) {
      await repair()
      s = await serving(api, names, db, 30000)
    }
    for (const [label, r] of runs)
      if (r.hung) row.violations.push({ invariant: 'no hang', detail: `${label}: ${r.hung}` })
    row.violations.push(...s.violations)
    const last = runs.at(-1)!
    if (!s.serving && last[1].exitCode === 0)
      row.violations.push({
        invariant: 'result true',
        detail: `${last[0]}: exit 0 ${last[1].outputs.result} but no container of the node answers /readyz 200`
      })
    const after = journalPhase(stateDir)
    if (!s.serving || (after !== undefined && after !== 'done')) {
      // not serving, or the journal still open: repair or `status` must name the command that ends it
      const st = await act({ operation: 'status' })
      runs.push(['status', st])
      const cmd = (repaired && namedCommand(repaired)) ?? namedCommand(st)
      if (!s.serving) row.results.push(await evidence(api, prefix, db))
      row.results.push(`${summarise('status', st)}${cmd ? ` names '${cmd}'` : ''}`)
      if (!cmd)
        row.violations.push({
          invariant: s.serving ? 'journal closed or repairable' : 'node serving',
          detail: s.serving
            ? `journal ${after} after the run and repair, status names no command`
            : `no container of the node answers /readyz 200 after repair, and neither repair nor status names a command to end it`
        })
    }
    keepLogs(seed, k, runs)
    row.end = s.serving
      ? `${s.serving.ready?.split(prefix).join('<node>')} on ${s.serving.image?.split(':').pop()}`
      : 'not serving'
    row.violations.push(
      ...(await oneWriter(
        db,
        row.fired.flatMap((f) => (f.cut ? [f.cut] : [])),
        row.results
      ))
    )
    row.violations.push(...(await markerKept(db, plan.op === 'restore')))
    for (const [label, r] of runs) row.violations.push(...noSecret(label, r, [], SECRETS))
    row.violations.push(...noSecret('files', runs[0][1], [stateDir], SECRETS))
  } catch (e) {
    row.error = (e as Error).message.split('\n').slice(0, 3).join(' | ')
  } finally {
    unmount?.()
    registry?.kill()
    await removeContainers(prefix, api).catch(() => undefined)
    if (cluster) await cluster.stop().catch(() => undefined)
    else await db?.drop().catch(() => undefined)
    rmSync(stateDir, { recursive: true, force: true })
  }
  row.ms = Date.now() - t0
  for (const v of row.violations) log(`VIOLATION seed ${seed} run ${k}: ${v.invariant}: ${v.detail}`)
  if (row.error) log(`ERROR seed ${seed} run ${k}: ${row.error}`)
  log(
    `seed ${seed} run ${k}: ${row.results.join('; ')}; end ${row.end}; ${row.violations.length} violation(s), ${Math.round(row.ms / 1000)} s`
  )
  if (row.violations.length || row.error) log(`replay: npm run soak -- --seed ${seed} --only ${k}`)
  return row
}

function count<T>(xs: T[], key: (x: T) => string): [string, number][] {
  const m = new Map<string, number>()
  for (const x of xs) m.set(key(x), (m.get(key(x)) ?? 0) + 1)
  return [...m.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
}

function table(args: Args, rows: RunRow[], wallMs: number): string {
  const drawn = rows.flatMap((r) => r.plan.faults)
  const fired = rows.flatMap((r) => r.fired)
  const out: string[] = []
  out.push(
    `# Fault campaign: seed ${args.seed}, ${rows.length} run(s)${args.only !== undefined ? ` (only run ${args.only})` : ''}`,
    ''
  )
  out.push(
    `Runs: ${rows.length}; faults drawn ${drawn.length}, fired ${fired.length}; runs with a violation ${rows.filter((r) => r.violations.length).length}; runs that could not be set up ${rows.filter((r) => r.error).length}; runs' time ${Math.round(rows.reduce((a, r) => a + r.ms, 0) / 1000)} s, wall ${Math.round(wallMs / 1000)} s with ${args.jobs} at once.`,
    ''
  )
  out.push(
    '| run | operation (layout, from) | faults (step) | results | end | violations |',
    '|---|---|---|---|---|---|'
  )
  for (const r of rows)
    out.push(
      `| ${r.run} | ${r.plan.op}${r.plan.to ? ` -> ${r.plan.to}` : ''} (${r.plan.layout}, ${r.plan.from}) | ${r.fired.map((f) => `${f.kind} @ ${f.step}${f.note ? ` (${f.note})` : ''}`).join('; ') || (r.plan.faults.length ? 'drawn, not reached' : 'none')} | ${r.results.join('; ')} | ${r.error ? `ERROR: ${r.error}` : r.end} | ${r.violations.map((v) => `${v.invariant}: ${v.detail}`).join('; ') || '0'} |`
    )
  out.push('', '| fault | drawn | fired |', '|---|---|---|')
  const firedBy = new Map(count(fired, (f) => f.kind))
  for (const [k, n] of count(drawn, (f) => f.kind)) out.push(`| ${k} | ${n} | ${firedBy.get(k) ?? 0} |`)
  out.push('', '| step a fault hit | faults |', '|---|---|')
  for (const [k, n] of count(fired, (f) => f.step)) out.push(`| ${k.replace(/\|/g, '/')} | ${n} |`)
  const bad = rows.filter((r) => r.violations.length || r.error)
  out.push('', bad.length ? '## Violations and errors' : '## Violations: none', '')
  for (const r of bad) {
    for (const v of r.violations) out.push(`- seed ${args.seed} run ${r.run}: **${v.invariant}**: ${v.detail}`)
    if (r.error) out.push(`- seed ${args.seed} run ${r.run}: setup error: ${r.error}`)
    out.push(`  replay: \`npm run soak -- --seed ${args.seed} --only ${r.run}\``)
  }
  return out.join('\n') + '\n'
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  if (args.list) {
    const ks = args.only !== undefined ? [args.only] : Array.from({ length: args.runs }, (_, i) => i)
    for (const k of ks) process.stdout.write(`seed ${args.seed} run ${k}: ${describePlan(planOf(args.seed, k))}\n`)
    return
  }
  const ks = args.only !== undefined ? [args.only] : Array.from({ length: args.runs }, (_, i) => i)
  const workers = Array.from({ length: Math.min(args.jobs, ks.length) }, () => new Daemons())
  const stopAll = () => Promise.all(workers.map((d) => d.stopAll()))
  const stop = () => {
    log('interrupted: stopping the campaign daemons')
    void stopAll().finally(() => process.exit(130))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  const rows: RunRow[] = []
  const queue = [...ks]
  const t0 = Date.now()
  try {
    await Promise.all(
      workers.map(async (daemons) => {
        for (let k = queue.shift(); k !== undefined; k = queue.shift()) rows.push(await oneRun(args.seed, k, daemons))
      })
    )
  } finally {
    await stopAll()
  }
  rows.sort((a, b) => a.run - b.run)
  const md = table(args, rows, Date.now() - t0)
  mkdirSync(join(ROOT, 'build'), { recursive: true })
  writeFileSync(join(ROOT, 'build', 'soak.md'), md)
  process.stdout.write(md)
  process.exit(rows.some((r) => r.violations.length || r.error) ? 1 : 0)
}

main().catch((e: Error) => {
  log(`campaign failed: ${e.stack ?? e.message}`)
  process.exit(2)
})
