// The fault campaign's own decisions on plain values (test/soak/, docs/reliability.md "Fault
// campaign"): a run's draw depends on (seed, run) alone, so `--only` replays it; the draws keep
// to what one run can do; and the invariants that read text (the named command, the secrets)
// catch what they are for and nothing else.
import { describe, expect, test } from '@jest/globals'
import type Docker from 'dockerode'
import type { ActionRun } from '../../support/action.js'
import { Draw, describePlan, drawPlan, runRng } from '../../soak/draw.js'
import { stepLabel, stepLines } from '../../soak/faults.js'
import { namedCommand, noSecret, truthful, writerReturns } from '../../soak/invariants.js'

const plan = (seed: number, k: number) => drawPlan(new Draw(runRng(seed, k)))

function fakeRun(o: Partial<ActionRun>): ActionRun {
  return {
    exitCode: 0,
    stdout: '',
    outputs: {},
    summary: '',
    state: {},
    dir: '/nonexistent',
    mainExitCode: 0,
    fired: [],
    killed: false,
    faultsDone: Promise.resolve(),
    mainMs: 0,
    totalMs: 0,
    ...o
  }
}

describe('draws', () => {
  test('a run draws the same plan whatever ran before it (--only replays it)', () => {
    for (const k of [0, 3, 17, 199]) expect(describePlan(plan(7, k))).toBe(describePlan(plan(7, k)))
    const all = Array.from({ length: 40 }, (_, k) => describePlan(plan(7, k)))
    expect(new Set(all).size).toBeGreaterThan(30)
    expect(describePlan(plan(8, 3))).not.toBe(describePlan(plan(7, 3)))
  })

  test('every draw keeps to what one run can do', () => {
    for (let k = 0; k < 500; k++) {
      const p = plan(1, k)
      const kinds = p.faults.map((f) => f.kind)
      expect(kinds.length).toBeLessThanOrEqual(2)
      expect(kinds.filter((x) => x.startsWith('dockerd-restart')).length).toBeLessThanOrEqual(1)
      expect(kinds.filter((x) => x.startsWith('pg-restart')).length).toBeLessThanOrEqual(1)
      expect(kinds.includes('cancel') && kinds.includes('runner-killed')).toBe(false)
      if (kinds.includes('disk-full')) expect(['upgrade', 'upgrade-bad', 'backup']).toContain(p.op)
      if (p.layout === 'pair') expect(p.from).toBe('2.18.0')
      expect(p.op.startsWith('upgrade')).toBe(p.to !== undefined)
      expect(p.op === 'repair').toBe(p.killAt !== undefined)
    }
  })
})

describe('steps', () => {
  test.each([
    ['standby started: clr-soak-ab12cd-a-rollout-next (ports 41234)', 'clr-soak-ab12cd', 'standby started'],
    ['gate lock-handoff: passed (held by 3f2a9c1b2d3e4f)', 'clr-soak-ab12cd', 'gate lock-handoff'],
    [
      'swap clr-soak-ab12cd-a -> clr-soak-ab12cd-a-rollout-next after 250 ms',
      'clr-soak-ab12cd',
      'swap <node>-a -> <node>-a-rollout-next'
    ]
  ])('%s -> %s', (line, prefix, label) => expect(stepLabel(line, prefix)).toBe(label))

  test("the runner's commands are no moments of the run", () => {
    expect(stepLines('::add-mask::x\nstandby started: a\n\n::group::y\ngate health: passed (ok)\n')).toEqual([
      'standby started: a',
      'gate health: passed (ok)'
    ])
  })
})

describe('invariants on text', () => {
  test.each([
    ["An operation is still open: run operation 'repair' (again, once the cause is fixed)", 'repair'],
    ["'chainlink' is not running (exited, exit 137): start it with 'docker start chainlink'", 'docker start chainlink'],
    ['The leader holds the lock but /readyz answers 503: it is still starting, or unhealthy.', undefined],
    ['operation: repair finished, result ok', undefined]
  ])('%s names %s', (text, cmd) => expect(namedCommand(fakeRun({ stdout: text }))).toBe(cmd))

  test('a DB password anywhere the operator reads is found; the masking command is not a leak', () => {
    const secret = 'bed-test-password'
    expect(noSecret('x', fakeRun({ stdout: `::add-mask::${secret}\nstep: ok` }), [], [secret])).toEqual([])
    for (const o of [
      { stdout: `step: postgres://bed:${secret}@host/db` },
      { outputs: { message: secret } },
      { summary: `| url | ${secret} |` },
      { state: { journal: secret } }
    ])
      expect(noSecret('x', fakeRun(o), [], [secret])).toHaveLength(1)
  })

  test('exit 0 exactly for the results that say the node is where it was asked to be', async () => {
    const api = undefined as unknown as Docker
    const t = { cancelled: false, failedSaysOld: true }
    const judge = (exitCode: number, result: string, cancelled = false) =>
      truthful('x', fakeRun({ exitCode, outputs: { result } }), api, 'n', { ...t, cancelled }).then((v) => v.length)
    expect(await judge(0, 'upgraded')).toBe(0)
    expect(await judge(1, 'rolled-back')).toBe(0)
    expect(await judge(0, 'rolled-back')).toBe(1)
    expect(await judge(1, 'ok')).toBe(1)
    expect(await judge(1, 'ok', true)).toBe(0)
    expect(await judge(0, 'deferred')).toBe(0)
  })
})

// seed 2026, run 5: a leader cut off longer than its lease writes once more after the heal,
// before its next refresh affects 0 rows and it exits (../shared/chainlink-node.md §3)
describe('one writer', () => {
  const beats = (...xs: [string, number][]) => xs.map(([app, at]) => ({ app, at }))
  const cut = { from: 10_000, to: 17_000 }
  test.each<[string, [string, number][], { from: number; to: number }[], number, number]>([
    [
      'one writer after another: nothing to excuse',
      [
        ['A', 0],
        ['B', 12_000],
        ['C', 30_000]
      ],
      [cut],
      0,
      0
    ],
    [
      'a return without a partition counts',
      [
        ['A', 0],
        ['B', 5_000],
        ['A', 6_000]
      ],
      [],
      0,
      1
    ],
    [
      'returns inside the cut and just after its heal are excused',
      [
        ['A', 0],
        ['B', 14_000],
        ['A', 17_300],
        ['B', 18_000],
        ['C', 30_000]
      ],
      [cut],
      2,
      0
    ],
    [
      'a return well after the heal counts',
      [
        ['A', 0],
        ['B', 14_000],
        ['A', 25_000]
      ],
      [cut],
      0,
      1
    ],
    [
      'a return before the cut counts',
      [
        ['A', 0],
        ['B', 5_000],
        ['A', 9_000]
      ],
      [cut],
      0,
      1
    ]
  ])('%s', (_, xs, cuts, excused, counted) => {
    const w = writerReturns(beats(...xs), cuts)
    expect({ excused: w.excused.length, counted: w.counted.length }).toEqual({ excused, counted })
  })
})
