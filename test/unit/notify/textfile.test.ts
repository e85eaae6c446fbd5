import { describe, expect, it } from '@jest/globals'
import { nextState, renderTextfile, type MetricsState } from '../../../src/notify/textfile.js'
import { readPromText } from '../../support/prom-text.js'

const run = (operation: string, result: string, ok: boolean, at: number, leaderGapMs?: number) => ({
  operation,
  result,
  ok,
  at,
  leaderGapMs
})

describe('nextState: what the runs leave for the textfile', () => {
  const cases: Array<[string, MetricsState | undefined, ReturnType<typeof run>, MetricsState]> = [
    [
      'first run',
      undefined,
      run('upgrade', 'upgraded', true, 100, 120),
      {
        runs: { upgrade: { result: 'upgraded', ok: true, at: 100 } },
        rollbacksTotal: 0,
        leaderGap: { ms: 120, at: 100 }
      }
    ],
    [
      'a rollback counts, keeps the last gap',
      {
        runs: { upgrade: { result: 'upgraded', ok: true, at: 100 } },
        rollbacksTotal: 2,
        leaderGap: { ms: 120, at: 100 }
      },
      run('upgrade', 'rolled-back', false, 200),
      {
        runs: { upgrade: { result: 'rolled-back', ok: false, at: 200 } },
        rollbacksTotal: 3,
        leaderGap: { ms: 120, at: 100 }
      }
    ],
    [
      'another operation keeps the upgrade',
      { runs: { upgrade: { result: 'upgraded', ok: true, at: 100 } }, rollbacksTotal: 0 },
      run('backup', 'ok', true, 300),
      {
        runs: { upgrade: { result: 'upgraded', ok: true, at: 100 }, backup: { result: 'ok', ok: true, at: 300 } },
        rollbacksTotal: 0,
        leaderGap: undefined
      }
    ],
    [
      'a handoff measures a new gap',
      { runs: {}, rollbacksTotal: 0, leaderGap: { ms: 120, at: 100 } },
      run('handoff', 'ok', true, 400, 80),
      { runs: { handoff: { result: 'ok', ok: true, at: 400 } }, rollbacksTotal: 0, leaderGap: { ms: 80, at: 400 } }
    ]
  ]
  it.each(cases)('%s', (_name, prev, r, want) => {
    expect(nextState(prev, r)).toEqual(want)
  })
})

describe('renderTextfile: valid Prometheus text format', () => {
  const state: MetricsState = {
    runs: {
      upgrade: { result: 'rolled-back', ok: false, at: 1764849600 },
      status: { result: 'ok', ok: true, at: 1764849700 }
    },
    rollbacksTotal: 1,
    leaderGap: { ms: 143, at: 1764849000 }
  }

  it('every family and sample a user alerts on', () => {
    const text = renderTextfile('chainlink-a+chainlink-b', state, {
      quarantined: 1,
      newestBackup: { at: 1764840000.5, bytes: 123456, kind: 'pre-upgrade' }
    })
    const { problems, samples } = readPromText(text)
    expect(problems).toEqual([])
    const node = 'chainlink-a+chainlink-b'
    const get = (name: string, labels: Record<string, string> = {}) =>
      samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    expect(get('chainlink_rollout_last_result')).toEqual([
      { name: 'chainlink_rollout_last_result', labels: { node, operation: 'status', result: 'ok' }, value: 1 },
      { name: 'chainlink_rollout_last_result', labels: { node, operation: 'upgrade', result: 'rolled-back' }, value: 1 }
    ])
    expect(get('chainlink_rollout_last_success', { operation: 'upgrade' })[0].value).toBe(0)
    expect(get('chainlink_rollout_last_run_timestamp_seconds', { operation: 'status' })[0].value).toBe(1764849700)
    expect(get('chainlink_rollout_leader_gap_seconds')[0]).toEqual({
      name: 'chainlink_rollout_leader_gap_seconds',
      labels: { node },
      value: 0.143
    })
    expect(get('chainlink_rollout_rollbacks_total')[0].value).toBe(1)
    expect(get('chainlink_rollout_quarantined_digests')[0].value).toBe(1)
    expect(get('chainlink_rollout_backup_newest_timestamp_seconds', { kind: 'pre-upgrade' })[0].value).toBe(
      1764840000.5
    )
    expect(get('chainlink_rollout_backup_newest_size_bytes')[0].value).toBe(123456)
    expect(text).toMatch(/^# TYPE chainlink_rollout_rollbacks_total counter$/m)
  })

  it('escapes label values (a node name cannot break the file)', () => {
    const text = renderTextfile(
      'we"ird\\node\nx',
      { runs: { upgrade: { result: 'ok', ok: true, at: 1 } }, rollbacksTotal: 0 },
      { quarantined: 0 }
    )
    const { problems, samples } = readPromText(text)
    expect(problems).toEqual([])
    expect(samples[0].labels.node).toBe('we"ird\\node\nx')
  })

  it('no backup and no gap yet: those families are left out, the rest is valid', () => {
    const text = renderTextfile('n', { runs: {}, rollbacksTotal: 0 }, { quarantined: 0 })
    expect(readPromText(text).problems).toEqual([])
    expect(text).not.toContain('backup_newest')
    expect(text).not.toContain('leader_gap')
    expect(text).toContain('chainlink_rollout_rollbacks_total{node="n"} 0')
  })

  it('the reader catches what node_exporter refuses', () => {
    expect(readPromText('x{a="1"} 1 1700000000\n').problems).not.toEqual([])
    expect(readPromText('# TYPE x gauge\nx 1\n# TYPE x gauge\n').problems).not.toEqual([])
    expect(readPromText('x{a="1} 1\n').problems).not.toEqual([])
    expect(readPromText('x 1\ny 1\nx{a="2"} 1\n').problems).not.toEqual([])
    expect(readPromText('x 1\nx 1\n').problems).not.toEqual([])
    expect(readPromText('# TYPE c counter\nc 1\n').problems).not.toEqual([])
  })
})
