// The fault matrix: one row per fault at one step of `operation: upgrade`, run against
// the real bed as the runner runs the action. A new fault is one row in ROWS.
//
// After every row, whatever the fault:
// - exactly one leader serving: the container named as before runs, answers /readyz 200 (in the
//   docs' layout on the original host port), holds the lease, and is the only node process on the
//   DB; nothing of the run is left over;
// - on the old or the new image, as the row expects;
// - never two writers: the simulator's heartbeats never go back to an earlier writer;
// - the DB accepted by the version running: node_versions and goose no newer than it knows;
// - the action told the truth: exit 0 only when the node ended on the target, and the result
//   output names where it ended (upgraded: new image; rolled-back / failed: old image).
//
// Real Docker daemon and Postgres restarts are in fault-real.test.ts (a dockerd and a cluster of
// the test's own); the rows here drop DB sessions of the shared Postgres per database.
//
// Runner killed (SIGKILL, no post step): the job is re-run (it must refuse with "run operation
// 'repair' first" or finish consistently), then `operation: repair` must bring the node to one
// state. A cancelled run (SIGINT, then SIGTERM 7.5 s later, as the runner does) gets its post step.
import { afterAll, describe, expect, test } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb, docker, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { atLine, visible, type ActionRun, type Hook } from '../support/action.js'
import { containerState, readyz, startNode, writers, type Layout } from '../support/node.js'
import { dropDbSessions, repairOf, rowUpgradeInputs, runFaulted } from '../support/fault.js'
import { expectOneLeader, expectTruthful } from '../support/end-state.js'
import { pool } from '../support/pool.js'

const prefix = uniqueName('clr-fm')
let seq = 0

type Where = 'old' | 'new' | 'either'

interface Row {
  name: string
  layout?: Layout
  /** the leader's tag before the run (default 2.18.0) */
  from?: string
  leaderEnv?: Record<string, string>
  /** the target tag */
  to: string
  inputs?: Record<string, string>
  /** the fault: fires when main's output reaches a step */
  at?: (stdout: string) => boolean
  do?: 'sigint' | 'sigkill' | ((r: RowCtx) => Promise<void>)
  /** fire this long after the step showed (a request on its way) */
  delayMs?: number
  /** the image the node must end on when it ends 'new', if not `to` (a second run moved it on) */
  finalTo?: string
  /** runs whose outputs describe an earlier moment (a race's first run): not held to the end state */
  notFinal?: string[]
  /** where the node must end */
  ends: Where
  /** main's result output (when main was not interrupted) */
  result?: string | string[]
  /** the leader was never stopped: same container, its writes never paused by a handoff */
  untouched?: boolean
  /** extra checks on the run */
  check?: (run: ActionRun, r: RowCtx) => Promise<void> | void
  /** not run, with the reason */
  skip?: string
  /** a known action bug: the row is kept and expected to fail until the action is fixed */
  failing?: string
}

interface RowCtx {
  row: Row
  db: TestDb
  name: string
  stateDir: string
  port?: number
  /** more runs a fault started (a racing run, a repair) */
  extra: [string, ActionRun][]
}

const baseInputs = (r: RowCtx, to = r.row.to) => rowUpgradeInputs(r.name, r.stateDir, simImage(to), r.row.inputs)

const repairInputs = (r: RowCtx) => repairOf(baseInputs(r))

// Steps as main prints them (src/report.ts: `step: detail`, `gate name: passed (...)`).
const STANDBY_STARTED = atLine('standby started')
const HANDOFF_1 = atLine(/^(handoff|swap) \S+ -> /) // the old leader's stop is being sent
const HEALTH_GATE_1 = atLine('gate lock-handoff: passed') // the lock moved: the health gate runs
const FINAL_STARTED = atLine('final container started')
const HANDOFF_2 = atLine(/^handoff \S+-rollout-next -> /)
const HEALTH_GATE_2 = atLine('gate lock-handoff: passed', 2)
const ROLLBACK = atLine('rollback: ')
const DB_ROLLBACK = atLine('db rollback: ')
const OLD_STOPPED = atLine(/^\S+ stopped: /) // the stop returned: the lock-handoff check runs

/** A fault that is another run of the action on the same node, started at the step. */
const alsoRun = (label: string, inputs: (r: RowCtx) => Record<string, string>) => async (r: RowCtx) => {
  r.extra.push([label, await runFaulted(inputs(r))])
}
const extraRun = (r: RowCtx, label: string) => r.extra.find(([l]) => l === label)![1]

const SECOND_HANDOFF = { finish: 'second-handoff' }
const SWAP_VERIFIED = atLine('standby verified and removed')

const ROWS: Row[] = [
  // ---- the new container misbehaves -------------------------------------------------------------
  {
    name: 'new image crashes before the lock: standby removed, leader never touched',
    to: '2.20.0-crash-before-lock',
    ends: 'old',
    result: 'failed',
    untouched: true
  },
  {
    name: 'new image exits right after taking the lock (lease not released): rolled back',
    to: '2.20.0-exit-after-lock',
    ends: 'old',
    result: 'rolled-back'
  },
  {
    name: 'new image never ready: rolled back, DB migrated down',
    to: '2.20.0-never-ready',
    inputs: { 'ready-timeout': '6s' },
    ends: 'old',
    result: 'rolled-back'
  },
  {
    name: 'new image migrates slowly, past ready-timeout: rolled back mid-migration',
    to: '2.20.0-slow-migrations',
    inputs: { 'ready-timeout': '6s' },
    ends: 'old',
    result: 'rolled-back'
  },
  {
    name: 'new image migrates slowly, ready-timeout no longer than stable-for: rolled back',
    to: '2.20.0-slow-migrations',
    inputs: { 'ready-timeout': '2s' },
    ends: 'old',
    result: 'rolled-back'
  },
  {
    name: 'bridge layout: new image migrates slowly within ready-timeout: upgraded',
    to: '2.20.0-slow-migrations',
    layout: 'bridge',
    ends: 'new',
    result: 'upgraded'
  },
  {
    name: 'new image migrates then crashes: rolled back with migrate-down',
    to: '2.20.0-migrate-then-crash',
    ends: 'old',
    result: 'rolled-back'
  },
  {
    name: 'host layout: new image migrates then crashes: rolled back by restoring the backup',
    layout: 'host',
    to: '2.20.0-migrate-then-crash',
    inputs: { 'db-rollback': 'restore' },
    ends: 'old',
    result: 'rolled-back'
  },
  {
    name: 'second-handoff finish: the new image ignores SIGTERM when the interim hands over: killed, upgraded',
    to: '2.20.0-ignore-sigterm',
    inputs: { 'stop-timeout': '2s', ...SECOND_HANDOFF },
    ends: 'new',
    result: 'upgraded'
  },
  {
    name: 'new image drops its DB connections periodically (lose-db): ends consistent',
    to: '2.20.0-lose-db',
    ends: 'either'
  },

  // ---- the old leader ignores SIGTERM -----------------------------------------------------------
  {
    name: 'old leader ignores SIGTERM: killed after stop-timeout, lease expires, upgraded',
    leaderEnv: { SIM_FAULT: 'ignore-sigterm' },
    to: '2.19.0',
    inputs: { 'stop-timeout': '2s' },
    ends: 'new',
    result: 'upgraded'
  },
  {
    name: 'host layout: old leader ignores SIGTERM (still bound to the port): upgraded',
    layout: 'host',
    leaderEnv: { SIM_FAULT: 'ignore-sigterm' },
    to: '2.19.0',
    inputs: { 'stop-timeout': '2s' },
    ends: 'new',
    result: 'upgraded'
  },

  // ---- the DB drops connections / restarts mid-handoff -----------------------------------------
  {
    name: "DB drops the nodes' connections at the handoff",
    to: '2.19.0',
    at: HANDOFF_1,
    do: (r) => dropDbSessions(r.db, 'node').then(() => undefined),
    ends: 'either'
  },
  {
    name: "DB drops every connection (the action's too) at the handoff",
    to: '2.19.0',
    at: HANDOFF_1,
    do: (r) => dropDbSessions(r.db, 'all').then(() => undefined),
    ends: 'either'
  },
  // a real Postgres restart (pg_ctl restart -m fast / -m immediate of a cluster of the test's
  // own) at the handoff, the swap and the health gate: fault-real.test.ts

  // ---- the runner is killed (SIGKILL, no post), the job re-run, then repair ------------------------
  { name: 'runner killed after the standby started', to: '2.19.0', at: STANDBY_STARTED, do: 'sigkill', ends: 'old' },
  { name: 'runner killed as the handoff begins', to: '2.19.0', at: HANDOFF_1, do: 'sigkill', ends: 'either' },
  {
    name: 'runner killed during the stop of the old leader',
    to: '2.19.0',
    at: HANDOFF_1,
    delayMs: 100,
    do: 'sigkill',
    ends: 'either'
  },
  { name: 'runner killed during the lock-handoff check', to: '2.19.0', at: OLD_STOPPED, do: 'sigkill', ends: 'either' },
  { name: 'runner killed during the health gate', to: '2.19.0', at: HEALTH_GATE_1, do: 'sigkill', ends: 'either' },
  {
    name: 'swap finish: runner killed once the standby was verified and removed',
    to: '2.19.0',
    at: SWAP_VERIFIED,
    do: 'sigkill',
    ends: 'either'
  },
  {
    name: 'second-handoff finish: runner killed during the second handoff',
    to: '2.19.0',
    inputs: SECOND_HANDOFF,
    at: HANDOFF_2,
    do: 'sigkill',
    ends: 'either'
  },
  {
    name: 'runner killed during the rollback',
    to: '2.20.0-never-ready',
    inputs: { 'ready-timeout': '5s' },
    at: ROLLBACK,
    do: 'sigkill',
    ends: 'old'
  },
  {
    name: "runner killed during the DB rollback (the new image's db rollback container running)",
    to: '2.20.0-never-ready',
    inputs: { 'ready-timeout': '5s' },
    at: DB_ROLLBACK,
    do: 'sigkill',
    ends: 'old'
  },
  {
    name: 'host layout: runner killed during the health gate',
    layout: 'host',
    to: '2.19.0',
    at: HEALTH_GATE_1,
    do: 'sigkill',
    ends: 'either'
  },

  // ---- the Docker daemon restarts: a real one (a dockerd of the test's own SIGKILLed and started
  // again) at each step, in fault-real.test.ts ---------------------------------------------------

  // ---- two runs race ------------------------------------------------------------------------------
  {
    name: 'two runs, same target: the second waits for the host lock, then finds nothing to do',
    layout: 'bridge',
    to: '2.19.0',
    at: STANDBY_STARTED,
    do: alsoRun('second run', (r) => baseInputs(r)),
    ends: 'new',
    result: 'upgraded',
    check: (_run, r) => {
      const b = extraRun(r, 'second run')
      expect({ exit: b.exitCode, result: b.outputs.result }).toEqual({ exit: 0, result: 'unchanged' })
      expect(visible(b.stdout)).toMatch(/Waiting for the host lock/)
    }
  },
  {
    name: 'two runs, different targets: the second waits, then upgrades from where the first left the node',
    to: '2.19.0',
    finalTo: '2.20.0',
    at: STANDBY_STARTED,
    do: alsoRun('second run', (r) => baseInputs(r, '2.20.0')),
    ends: 'new',
    result: 'upgraded',
    notFinal: ['run'],
    check: (run, r) => {
      expect(run.exitCode).toBe(0)
      const b = extraRun(r, 'second run')
      expect({ exit: b.exitCode, result: b.outputs.result, previous: b.outputs['previous-image'] }).toEqual({
        exit: 0,
        result: 'upgraded',
        previous: simImage('2.19.0')
      })
    }
  },
  {
    name: 'a second run with a short lock-timeout gives up clearly and touches nothing',
    to: '2.19.0',
    at: HANDOFF_1,
    do: alsoRun('second run', (r) => ({ ...baseInputs(r), 'lock-timeout': '1s' })),
    ends: 'new',
    result: 'upgraded',
    notFinal: ['second run'],
    check: (_run, r) => {
      const b = extraRun(r, 'second run')
      expect(b.exitCode).toBe(1)
      expect(visible(b.stdout)).toMatch(
        /::error::.*another chainlink-rollout operation on this node holds the host lock/
      )
      expect(b.outputs.result).not.toBe('upgraded')
    }
  },
  {
    name: 'repair started while an upgrade runs: it waits for the host lock, then finds nothing to do',
    to: '2.19.0',
    at: HANDOFF_1,
    do: alsoRun('repair', (r) => repairInputs(r)),
    ends: 'new',
    result: 'upgraded',
    check: (_run, r) => {
      const b = extraRun(r, 'repair')
      expect({ exit: b.exitCode, result: b.outputs.result }).toEqual({ exit: 0, result: 'ok' })
      expect(visible(b.stdout)).toMatch(/Waiting for the host lock/)
    }
  },

  // ---- the job is cancelled (SIGINT, SIGTERM 7.5 s later; the post step runs) -----------------------
  { name: 'cancelled after the standby started', to: '2.19.0', at: STANDBY_STARTED, do: 'sigint', ends: 'old' },
  { name: 'cancelled during the handoff', to: '2.19.0', at: HANDOFF_1, do: 'sigint', ends: 'either' },
  { name: 'cancelled during the lock-handoff check', to: '2.19.0', at: OLD_STOPPED, do: 'sigint', ends: 'either' },
  { name: 'cancelled during the health gate', to: '2.19.0', at: HEALTH_GATE_1, do: 'sigint', ends: 'either' },
  {
    name: 'cancelled during the health gate of an image that never becomes ready',
    to: '2.20.0-never-ready',
    inputs: { 'ready-timeout': '5s' },
    at: HEALTH_GATE_1,
    do: 'sigint',
    ends: 'old'
  },
  {
    name: 'swap finish: cancelled once the standby was verified and removed',
    to: '2.19.0',
    at: SWAP_VERIFIED,
    do: 'sigint',
    ends: 'either'
  },
  {
    name: 'second-handoff finish: cancelled after the final container started',
    to: '2.19.0',
    inputs: SECOND_HANDOFF,
    at: FINAL_STARTED,
    do: 'sigint',
    ends: 'either'
  },
  {
    name: 'second-handoff finish: cancelled during the second handoff',
    to: '2.19.0',
    inputs: SECOND_HANDOFF,
    at: HANDOFF_2,
    do: 'sigint',
    ends: 'either'
  },
  {
    name: 'second-handoff finish: cancelled during the second health gate',
    to: '2.19.0',
    inputs: SECOND_HANDOFF,
    at: HEALTH_GATE_2,
    do: 'sigint',
    ends: 'either'
  },
  {
    name: 'cancelled during the rollback',
    to: '2.20.0-never-ready',
    inputs: { 'ready-timeout': '5s' },
    at: ROLLBACK,
    do: 'sigint',
    ends: 'old'
  },
  {
    name: 'cancelled during the DB rollback',
    to: '2.20.0-never-ready',
    inputs: { 'ready-timeout': '5s' },
    at: DB_ROLLBACK,
    do: 'sigint',
    ends: 'old'
  },
  {
    name: 'host layout: cancelled during the handoff',
    layout: 'host',
    to: '2.19.0',
    at: HANDOFF_1,
    do: 'sigint',
    ends: 'either'
  },
  {
    name: 'bridge layout: cancelled during the health gate',
    layout: 'bridge',
    to: '2.19.0',
    at: HEALTH_GATE_1,
    do: 'sigint',
    ends: 'either'
  }
]

/** Rows run side by side, this many at once (each has its own DB, containers and state-dir). */
const CONCURRENCY = Number(process.env.FM_CONCURRENCY ?? 2)
const ROW_TIMEOUT_MS = 400_000 // from the row's start; each action step is SIGKILLed after 120 s
const slot = pool(CONCURRENCY, ROW_TIMEOUT_MS)
/** jest's bound, the queue for a slot included (the pool bounds the row itself) */
const QUEUED_TIMEOUT_MS = ROWS.length * ROW_TIMEOUT_MS

async function setup(row: Row): Promise<RowCtx> {
  const db = await createDb('fm')
  // zero-padded: no row's name is a prefix of another's (cleanup removes by prefix)
  const name = `${prefix}-${String(++seq).padStart(2, '0')}`
  const stateDir = mkdtempSync(join(tmpdir(), 'clr-fm-state-'))
  try {
    const node = await startNode({
      name,
      tag: row.from ?? '2.18.0',
      db,
      layout: row.layout ?? 'ports',
      env: row.leaderEnv
    })
    return { row, db, name, stateDir, port: node.port, extra: [] }
  } catch (e) {
    await removeContainers(name)
    await db.drop()
    throw e
  }
}

function describeRun(run: ActionRun): string {
  return `exit ${run.exitCode}, outputs ${JSON.stringify(run.outputs)}${run.hung ? `, HUNG: ${run.hung}` : ''}\n${visible(run.stdout).split('\n').slice(-60).join('\n')}`
}

/** The invariants every row ends with (support/end-state.ts), and the docs' layout's port. Returns where the node ended. */
async function expectConsistent(r: RowCtx, before: { id: string }): Promise<'old' | 'new'> {
  const [oldTag, newTag] = [r.row.from ?? '2.18.0', r.row.finalTo ?? r.row.to]
  const images = { oldImage: simImage(oldTag), newImage: simImage(newTag), oldTag, newTag }
  const end = await expectOneLeader({ name: r.name, db: r.db, stateDir: r.stateDir, ...images })
  // serving on the original host port in the docs' layout
  if ((r.row.layout ?? 'ports') === 'ports') {
    const info = await docker.getContainer(r.name).inspect()
    expect(info.HostConfig.PortBindings?.['6688/tcp']?.[0]).toEqual({ HostIp: '127.0.0.1', HostPort: String(r.port) })
    expect({ readyzOnOriginalPort: await readyz(`http://127.0.0.1:${r.port}`) }).toEqual({ readyzOnOriginalPort: 200 })
  }
  if (r.row.untouched) expect({ id: end.id, writers: end.writerCount }).toEqual({ id: before.id, writers: 1 })
  return end.at
}

async function runRow(row: Row) {
  const t0 = Date.now()
  const r = await setup(row)
  const before = (await containerState(r.name))!
  const runs: [string, ActionRun][] = []
  try {
    try {
      const hooks: Hook[] =
        row.at && row.do
          ? [
              {
                when: row.at,
                delayMs: row.delayMs,
                do:
                  typeof row.do === 'function'
                    ? (
                        (fn) => () =>
                          fn(r)
                      )(row.do)
                    : row.do
              }
            ]
          : []
      const run = await runFaulted(baseInputs(r), hooks)
      runs.push(['run', run])
      await run.faultsDone
      runs.push(...r.extra)
      // the fault must have hit the step it names, or the row proves nothing
      if (hooks.length) expect({ fired: run.fired[0] }).toEqual({ fired: true })
      if (run.killed) {
        // the runner died with main: no post step. The job is re-run, then repaired.
        const again = await runFaulted(baseInputs(r))
        runs.push(['re-run', again])
        if (again.exitCode !== 0) expect(visible(again.stdout)).toMatch(/run operation 'repair' first/)
        const rep = await runFaulted(repairInputs(r))
        runs.push(['repair', rep])
        // repair brings the node to one consistent state; a rollback still fails the job (the
        // upgrade did not happen), a finish or an undo before the handoff does not
        expect({ repairExit: rep.exitCode, result: rep.outputs.result }).toEqual({
          repairExit: rep.outputs.result === 'rolled-back' ? 1 : 0,
          result: rep.outputs.result
        })
      } else if (row.do === 'sigint') {
        expect(run.stdout).toMatch(/SIGINT received/)
        // the job was cancelled: main must not claim success unless it finished first
        if (run.mainExitCode === 0) expect(run.mainResult).toBe('upgraded')
      } else if (row.result) {
        expect({ result: run.mainResult }).toEqual({
          result: Array.isArray(row.result) && row.result.includes(run.mainResult!) ? run.mainResult : row.result
        })
      }
      for (const [label, x] of runs) expect({ label, hung: x.hung }).toEqual({ label, hung: undefined })
      const at = await expectConsistent(r, before)
      const w = await writers(r.db)
      table.push({
        row: row.name,
        end: `one leader, ${at} image`,
        writers: `${w.writers.length} in turn, never two`,
        result: runs
          .map(([l, x]) => `${l}: ${x.killed ? 'SIGKILLed' : `exit ${x.exitCode} ${x.outputs.result ?? ''}`.trim()}`)
          .join('; ')
      })
      process.stderr.write(
        `[fm] ${row.name} | ends ${at} | ${runs.map(([l, x]) => `${l}: ${x.killed ? 'SIGKILLed' : `exit ${x.mainExitCode}/${x.exitCode} result ${x.mainResult}/${x.outputs.result}`}`).join('; ')} | ${((Date.now() - t0) / 1000).toFixed(1)} s\n`
      )
      if (row.ends !== 'either') expect({ ends: at }).toEqual({ ends: row.ends })
      // a re-run refused in preflight ("run operation 'repair' first") changed nothing: its
      // 'failed' speaks of that run, not of where the later repair leaves the node
      const refused = (x: ActionRun) => /run operation 'repair' first/.test(visible(x.stdout))
      for (const [label, x] of runs)
        if (!row.notFinal?.includes(label) && !(label === 're-run' && refused(x))) expectTruthful(x, at, label)
      await row.check?.(runs[0][1], r)
    } catch (e) {
      const st = await containerState(r.name)
      table.push({
        row: row.name,
        end: `FAILED${row.failing ? ' (known action bug)' : ''}: ${st ? `${st.image} running=${st.running}` : 'gone'}`,
        writers: '-',
        result: (e as Error).message.split('\n')[0]
      })
      process.stderr.write(
        `[fm] FAILED${row.failing ? ' (known action bug)' : ''} ${row.name} | ${r.name}: ${st ? `${st.image} running=${st.running}` : 'gone'} | ${((Date.now() - t0) / 1000).toFixed(1)} s | ${(e as Error).message.split('\n')[0]}\n`
      )
      if (!row.failing)
        for (const [label, x] of runs) process.stderr.write(`--- ${row.name}: ${label} ---\n${describeRun(x)}\n`)
      throw e
    }
  } finally {
    await removeContainers(r.name)
    await r.db.drop()
  }
}

/** One line of the printed table per row (a retried row prints once per try). */
const table: { row: string; end: string; writers: string; result: string }[] = []

afterAll(async () => {
  await removeContainers(prefix)
  const line = (x: (typeof table)[number]) => `| ${x.row} | ${x.end} | ${x.writers} | ${x.result} |`
  process.stderr.write(
    [
      '',
      'Fault matrix (test/integration/fault-matrix.test.ts): fault at step -> end state, writers, result',
      line({ row: 'fault at step', end: 'end state', writers: 'writers', result: 'runs (exit, result output)' }),
      ...table.map(line),
      ''
    ].join('\n')
  )
})

describe('fault matrix: operation upgrade', () => {
  for (const row of ROWS) {
    if (row.skip) test.skip(`${row.name} (skipped: ${row.skip})`, () => undefined)
    else if (row.failing)
      test.concurrent.failing(
        `${row.name} [action bug: ${row.failing}]`,
        () => slot(() => runRow(row)),
        QUEUED_TIMEOUT_MS
      )
    else test.concurrent(row.name, () => slot(() => runRow(row)), QUEUED_TIMEOUT_MS)
  }
})
