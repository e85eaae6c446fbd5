// Real faults at each step of `operation: upgrade`, not emulations: a Docker daemon of the test's
// own (support/dedicated-dockerd.ts) killed with SIGKILL and started again, and a Postgres
// cluster of the test's own (support/pg-cluster.ts) restarted with `pg_ctl restart -m fast` and
// `-m immediate`. The action runs as the runner runs it (support/action.ts), against that daemon
// through DOCKER_HOST. The runner killed with no post step, then `repair`, is in fault-matrix.test.ts.
//
// After every row, whatever the fault (and, when the run did not end the operation, after the
// `repair` an operator runs next):
// - exactly one leader serving: the container named as before runs and answers /readyz 200, and
//   is the only node process on the DB, holding the lease and writing; nothing of the run is left;
// - never two writers: the simulator's heartbeats never go back to an earlier writer;
// - the DB accepted by the version running (node_versions and goose no newer than it knows);
// - the action told the truth: exit 0 only when the node ended on the target, and the result
//   output names where it ended.
// The rows print as a table at the end (fault x step -> end state, writers, result).
import { afterAll, describe, expect, test } from '@jest/globals'
import type Docker from 'dockerode'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
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
import { atLine, visible, type ActionRun, type Hook } from '../support/action.js'
import { containerState, startNode, type Layout } from '../support/node.js'
import { lastHeartbeat, repairOf, rowUpgradeInputs, runFaulted } from '../support/fault.js'
import { expectOneLeader, expectTruthful, journalFiles, type End } from '../support/end-state.js'
import { startDedicatedDockerd, type DedicatedDockerd } from '../support/dedicated-dockerd.js'
import { readQuarantine } from '../../src/safeguards/quarantine.js'
import { startPgCluster, type PgCluster } from '../support/pg-cluster.js'
import { pool } from '../support/pool.js'

const prefix = uniqueName('clr-fr')
let seq = 0

type Fault =
  | 'dockerd SIGKILL + start'
  | 'dockerd stop, start 15 s later'
  | 'dockerd stop, start 15 s later (live-restore)'
  | 'postgres restart -m fast'
  | 'postgres restart -m immediate'
  | 'postgres stopped 35 s'

interface Row {
  fault: Fault
  /** the step the fault hits, as the table names it */
  step: string
  at: (stdout: string) => boolean
  layout?: Layout
  to: string
  inputs?: Record<string, string>
  /** where the node must end, when only one is right */
  ends?: 'old' | 'new'
  /** the action is paused (SIGSTOP) while the daemon restarts and resumed once it answers: the
   *  restart falls between two of its Docker calls, which then meet the daemon's aftermath */
  paused?: boolean
  /** the fault waits for the new node to lead and write (its heartbeats), then 2 s more: it
   *  lands inside the health gate's stable-for window of a node that is up */
  whenServing?: boolean
  /** a Postgres fault this many times, 3 s apart (each time the gate's look and the node's
   *  reconnect race: one look before the node is back is what the gate must not fail on) */
  times?: number
  /** the run's own exit code and result, when only one is right */
  result?: { exit: number; result: string }
  /** what the run's output must say */
  says?: RegExp
  /** the node's lease settings (support/node.ts: 3 s / 500 ms unless given) */
  lease?: { duration: string; refresh: string }
  /** main's exit code and result output, when only one is right */
  run?: { exit: number; result: string }
  /** the run itself (main, else its post step) ends the operation: no journal left for a repair */
  settles?: boolean
}

/** The lease settings a node ships with (docs/node-facts.md §1): a restart is judged against them. */
const NODE_DEFAULT_LEASE = { duration: '10s', refresh: '1s' }

// Steps as main prints them (src/report.ts: `step: detail`, `gate name: passed (...)`).
const STANDBY_STARTED = atLine('standby started')
const HANDOFF = atLine(/^handoff \S+ -> /) // bridge layout: the old leader's stop is being sent
const SWAP = atLine(/^swap \S+ -> /) // docs' layout: the leader's stop, then the final container on its ports
const HEALTH_GATE = atLine('gate lock-handoff: passed') // the lock moved: the health gate runs
const ROLLBACK = atLine('rollback: ')

const NEVER_READY = { to: '2.20.0-never-ready', inputs: { 'ready-timeout': '5s' }, ends: 'old' as const }

const DOCKERD: Fault = 'dockerd SIGKILL + start'
// A daemon restart as a package upgrade or config management does it (a graceful stop, the
// daemon back 15 s later), during the health gate of a good upgrade held for 45 s: with
// live-restore the containers outlive it and the upgrade must end `upgraded`; without it the
// daemon stops every container first, and the run (or its post step) must end with the right
// one serving and say which.
const DOCKERD_STOP: Fault = 'dockerd stop, start 15 s later'
const DOCKERD_STOP_LIVE: Fault = 'dockerd stop, start 15 s later (live-restore)'
const DOWN_MS = 15_000
const LONG_GATE = { 'stable-for': '45s' }
const ROWS: Row[] = [
  { fault: DOCKERD, step: 'standby started', at: STANDBY_STARTED, to: '2.19.0' },
  // Docker 20.10 started after a crash stops every container it finds running and starts none
  // again, whatever its restart policy: the leader is down too, not only the standby
  {
    fault: DOCKERD,
    step: 'standby started, between two calls',
    at: STANDBY_STARTED,
    to: '2.19.0',
    paused: true,
    ends: 'old'
  },
  // Seed 2026, runs 16 and 134 of the fault campaign: the daemon stops both containers during
  // the standby gate, after the standby took the lease. Main rolls back itself (the old image
  // leading, the DB as before): no journal left open for the post step to "finish" an upgrade
  // main had already failed.
  {
    fault: DOCKERD,
    step: 'standby gate, between two calls (bridge layout)',
    at: STANDBY_STARTED,
    layout: 'bridge',
    to: '2.19.0',
    paused: true,
    ends: 'old',
    run: { exit: 1, result: 'rolled-back' },
    settles: true
  },
  {
    fault: DOCKERD,
    step: 'health gate, between two calls',
    at: HEALTH_GATE,
    to: '2.19.0',
    paused: true
  },
  { fault: DOCKERD, step: 'handoff (bridge layout)', at: HANDOFF, layout: 'bridge', to: '2.19.0' },
  { fault: DOCKERD, step: 'swap (finish)', at: SWAP, to: '2.19.0' },
  { fault: DOCKERD, step: 'health gate', at: HEALTH_GATE, to: '2.19.0' },
  { fault: DOCKERD, step: 'rollback', at: ROLLBACK, ...NEVER_READY },
  {
    fault: DOCKERD_STOP_LIVE,
    step: 'health gate',
    at: HEALTH_GATE,
    to: '2.19.0',
    inputs: LONG_GATE,
    ends: 'new',
    run: { exit: 0, result: 'upgraded' },
    settles: true
  },
  { fault: DOCKERD_STOP, step: 'health gate', at: HEALTH_GATE, to: '2.19.0', inputs: LONG_GATE, settles: true },
  ...(['postgres restart -m fast', 'postgres restart -m immediate'] as const).flatMap((fault) => [
    { fault, step: 'handoff (bridge layout)', at: HANDOFF, layout: 'bridge' as const, to: '2.19.0' },
    { fault, step: 'swap (finish)', at: SWAP, to: '2.19.0' },
    { fault, step: 'health gate', at: HEALTH_GATE, to: '2.19.0' },
    // A restart or failover while a good new node holds ready: its sessions drop, its lease
    // stays its own until it runs out, and it reconnects (docs/node-facts.md §3). Not a failed
    // gate: the upgrade ends upgraded (review N8).
    {
      fault,
      step: 'health gate, stable-for 30s, 5 restarts',
      at: HEALTH_GATE,
      to: '2.19.0',
      inputs: { 'stable-for': '30s' },
      whenServing: true,
      lease: NODE_DEFAULT_LEASE,
      times: 5,
      ends: 'new' as const,
      result: { exit: 0, result: 'upgraded' }
    }
  ]),
  // Longer than the lease (the rows' nodes run a 3 s one): it runs out under the new node, the lock is not proven
  // held for the window, and the gate fails; the node must still end serving, and the run say where.
  {
    fault: 'postgres stopped 35 s',
    step: 'health gate, stable-for 30s, node serving',
    at: HEALTH_GATE,
    to: '2.19.0',
    inputs: { 'stable-for': '30s' },
    whenServing: true,
    says: /rollback: the node's database did not answer for [\d.]+ s \(.*\), longer than the lease \([\d.]+ s\): .* cannot have kept its lock/
  }
]

interface RowCtx {
  row: Row
  api: Docker
  db: TestDb
  name: string
  stateDir: string
  env: Record<string, string>
}

const baseInputs = (r: RowCtx) => rowUpgradeInputs(r.name, r.stateDir, simImage(r.row.to), r.row.inputs)

const repairInputs = (r: RowCtx) => repairOf(baseInputs(r))

/** One line of the printed table per row. */
const table: { fault: string; step: string; end: string; writers: string; result: string }[] = []

/** Every dedicated daemon started, for afterAll. */
const daemons: DedicatedDockerd[] = []
const daemonsUp = new Map<string, Promise<DedicatedDockerd>>()
/** A dedicated daemon per slot of its pool (`live`: with `--live-restore`), started by the first
 *  row that needs it (concurrent tests may start before a beforeAll has finished), with its rows'
 *  simulator images pulled from the bed's registry. */
const dedicated = (slot: number, live = false) => {
  const key = `${live ? 'live' : 'plain'}-${slot}`
  let up = daemonsUp.get(key)
  if (!up) {
    up = startDedicatedDockerd(live ? { liveRestore: true } : {}).then((d) => {
      daemons.push(d)
      const tags = ROWS.filter((x) => onDedicated(x.fault) && (x.fault === DOCKERD_STOP_LIVE) === live).map((x) => x.to)
      for (const tag of new Set(['2.18.0', ...tags])) d.cli('pull', '-q', simImage(tag))
      return d
    })
    daemonsUp.set(key, up)
  }
  return up
}
const onDedicated = (f: Fault) => f === DOCKERD || f === DOCKERD_STOP || f === DOCKERD_STOP_LIVE

/** Rows on a dedicated daemon run one at a time on it (a kill hits every container of it), on two
 *  such daemons side by side (and the live-restore one); Postgres rows (a cluster each, on the
 *  bed's daemon) run two at a time beside them. Each row owns its node, DB or cluster and state-dir. */
const ROW_TIMEOUT_MS = 600_000 // from the row's start; each action step is SIGKILLed after 120 s
const lanes = { dockerd: pool(2, ROW_TIMEOUT_MS), live: pool(1, ROW_TIMEOUT_MS), postgres: pool(2, ROW_TIMEOUT_MS) }
const laneOf = (f: Fault) => (f === DOCKERD_STOP_LIVE ? lanes.live : onDedicated(f) ? lanes.dockerd : lanes.postgres)

function describeRun(run: ActionRun): string {
  return `exit ${run.exitCode}, outputs ${JSON.stringify(run.outputs)}${run.hung ? `, HUNG: ${run.hung}` : ''}\n${visible(run.stdout).split('\n').slice(-60).join('\n')}`
}

const summarise = (runs: [string, ActionRun][]) =>
  runs
    .map(
      ([l, x]) => `${l}: exit ${x.exitCode}${x.outputs.result ? ` ${x.outputs.result}` : ''}${x.hung ? ' HUNG' : ''}`
    )
    .join('; ')

/** The end state every row must reach (support/end-state.ts): where the node ended and the writers seen. */
function expectConsistent(r: RowCtx): Promise<End> {
  const [oldTag, newTag] = ['2.18.0', r.row.to]
  const images = { oldImage: simImage(oldTag), newImage: simImage(newTag), oldTag, newTag }
  return expectOneLeader({ name: r.name, db: r.db, stateDir: r.stateDir, api: r.api, ...images })
}

const journalOpen = (r: RowCtx) =>
  journalFiles(r.stateDir).some((jf) => (JSON.parse(readFileSync(jf, 'utf8')) as { phase: string }).phase !== 'done')

/** Until the new version leads and writes (a fresh heartbeat of it), then 2 s more. */
async function serving(db: TestDb, tag: string): Promise<void> {
  const version = tag.split('-')[0]
  await waitFor(
    `a fresh heartbeat of ${version}`,
    async () => {
      const h = await lastHeartbeat(db)
      return h && h.version === version && h.agoMs < 1000 ? h : undefined
    },
    60_000
  )
  await sleep(2000)
}

async function runRow(row: Row, slot: number) {
  const t0 = Date.now()
  const onDockerd = onDedicated(row.fault)
  let cluster: PgCluster | undefined
  let db: TestDb
  if (onDockerd) db = await createDb('fr')
  else {
    cluster = await startPgCluster()
    db = cluster.db
  }
  const d = onDockerd ? await dedicated(slot, row.fault === DOCKERD_STOP_LIVE) : undefined
  await d?.start() // up again if a failed try of a row left it down
  const api = d?.api ?? docker
  const name = `${prefix}-${String(++seq).padStart(2, '0')}`
  const stateDir = mkdtempSync(join(tmpdir(), 'clr-fr-state-'))
  const r: RowCtx = { row, api, db, name, stateDir, env: d ? { DOCKER_HOST: d.host } : {} }
  const runs: [string, ActionRun][] = []
  try {
    await startNode({ name, tag: '2.18.0', db, layout: row.layout ?? 'ports', api, lease: row.lease })
    const fault = async (child: ChildProcess) => {
      if (d && row.fault !== DOCKERD) {
        await d.down()
        await sleep(DOWN_MS)
        await d.start()
      } else if (d) {
        if (row.paused) child.kill('SIGSTOP')
        try {
          await d.kill()
          await d.start()
        } finally {
          if (row.paused) child.kill('SIGCONT')
        }
      } else {
        if (row.whenServing) await serving(db, row.to)
        for (let i = 0; i < (row.times ?? 1); i++) {
          if (i) await sleep(3000)
          if (row.fault === 'postgres stopped 35 s') await cluster!.outage(35_000)
          else await cluster!.restart(row.fault === 'postgres restart -m fast' ? 'fast' : 'immediate')
        }
      }
    }
    const hooks: Hook[] = [{ when: row.at, do: (child) => fault(child) }]
    // two health gates of 30 s (the interim and the final container) outlast the default 120 s
    const deadlineMs = row.inputs?.['stable-for'] || row.run ? 300_000 : undefined
    const run = await runFaulted(baseInputs(r), hooks, { env: r.env, deadlineMs })
    runs.push(['run', run])
    await run.faultsDone
    expect({ fired: run.fired[0] }).toEqual({ fired: true })
    if (row.says) expect(visible(run.stdout)).toMatch(row.says)
    const only = row.result ?? row.run
    if (only)
      expect({ exit: run.exitCode, result: run.outputs.result }).toEqual({ exit: only.exit, result: only.result })
    if (row.settles) expect({ journalOpenAfterRun: journalOpen(r) }).toEqual({ journalOpenAfterRun: false })
    // a run that did not end the operation: the operator's next run is `repair`
    if (run.exitCode !== 0 || journalOpen(r)) {
      const rep = await runFaulted(repairInputs(r), [], { env: r.env })
      runs.push(['repair', rep])
    }
    for (const [label, x] of runs) expect({ label, hung: x.hung }).toEqual({ label, hung: undefined })
    const end = await expectConsistent(r)
    for (const [label, x] of runs) expectTruthful(x, end.at, label)
    // every fault here is the host's, never the image's: the target is not quarantined (review N16)
    expect(readQuarantine(stateDir, name).entries.filter((q) => !q.clearedAt)).toEqual([])
    if (row.ends) expect({ ends: end.at }).toEqual({ ends: row.ends })
    if (process.env.FR_VERBOSE)
      for (const [label, x] of runs)
        process.stderr.write(`--- ${row.fault} at ${row.step}: ${label} ---\n${describeRun(x)}\n`)
    table.push({
      fault: row.fault,
      step: row.step,
      end: `one leader, ${end.at} image`,
      writers: `${end.writers.length} in turn (${end.writers.join(' -> ')}), never two`,
      result: summarise(runs)
    })
  } catch (e) {
    const st = await containerState(name, api).catch(() => undefined)
    table.push({
      fault: row.fault,
      step: row.step,
      end: `FAILED: ${st ? `${st.image} running=${st.running}` : 'gone'}`,
      writers: '-',
      result: `${summarise(runs)} | ${(e as Error).message.split('\n')[0]}`
    })
    for (const [label, x] of runs)
      process.stderr.write(`--- ${row.fault} at ${row.step}: ${label} ---\n${describeRun(x)}\n`)
    throw e
  } finally {
    process.stderr.write(`[fr] ${row.fault} at ${row.step}: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`)
    await removeContainers(name, api).catch(() => undefined)
    if (cluster) await cluster.stop()
    else await db.drop()
    rmSync(stateDir, { recursive: true, force: true })
  }
}

afterAll(async () => {
  await removeContainers(prefix).catch(() => undefined)
  for (const d of daemons) {
    await removeContainers(prefix, d.api).catch(() => undefined)
    await d.stop()
  }
  const w = { fault: 45, step: 24, end: 20, writers: 40 }
  const line = (x: (typeof table)[number]) =>
    `| ${x.fault.padEnd(w.fault)} | ${x.step.padEnd(w.step)} | ${x.end.padEnd(w.end)} | ${x.writers.padEnd(w.writers)} | ${x.result} |`
  process.stderr.write(
    [
      '',
      'Real faults (test/integration/fault-real.test.ts): fault x step -> end state, writers, result',
      line({
        fault: 'fault',
        step: 'step',
        end: 'end state',
        writers: 'writers',
        result: 'result (exit, result output)'
      }),
      ...table.map(line),
      ''
    ].join('\n')
  )
}, 120_000)

/** jest's bound, its pool's queue included (the pool bounds the row itself) */
const QUEUED_TIMEOUT_MS = ROWS.length * ROW_TIMEOUT_MS

describe('real faults: operation upgrade', () => {
  for (const row of ROWS)
    test.concurrent(
      `${row.fault} at ${row.step}`,
      () => laneOf(row.fault)((slot) => runRow(row, slot)),
      QUEUED_TIMEOUT_MS
    )
})
