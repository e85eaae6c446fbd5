// The node_exporter textfile of a node (Prometheus text format 0.0.4): what the last run of each
// operation ended with, the last measured leader gap, rollbacks, quarantined digests and the
// newest verified backup. Pure: the state carried from run to run, and its rendering.
// A textfile carries no sample timestamps (node_exporter refuses them), so times are values in
// Unix seconds; an age is `time() - <metric>` in PromQL, which stays right between runs.

/** What a node's earlier runs left for the textfile: kept in state-dir beside it. */
export interface MetricsState {
  /** the last run of each operation */
  runs: Record<string, { result: string; ok: boolean; at: number }>
  rollbacksTotal: number
  /** the last measured handoff gap, and when */
  leaderGap?: { ms: number; at: number }
}

/** One run's end, as the textfile counts it. */
export interface RunFacts {
  operation: string
  result: string
  ok: boolean
  /** Unix seconds */
  at: number
  leaderGapMs?: number
}

/** What is read from the host at each write, not carried. */
export interface HostFacts {
  quarantined: number
  newestBackup?: { at: number; bytes: number; kind: string }
}

/** Pure: the state after a run (an unreadable or absent earlier state starts from nothing). */
export function nextState(prev: MetricsState | undefined, run: RunFacts): MetricsState {
  const base: MetricsState = prev ?? { runs: {}, rollbacksTotal: 0 }
  return {
    runs: { ...base.runs, [run.operation]: { result: run.result, ok: run.ok, at: run.at } },
    rollbacksTotal: base.rollbacksTotal + (run.result === 'rolled-back' ? 1 : 0),
    leaderGap: run.leaderGapMs !== undefined ? { ms: run.leaderGapMs, at: run.at } : base.leaderGap
  }
}

/** A label value as the text format escapes it: backslash, double quote, line feed. */
const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')

const num = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(3))

/** Pure: the textfile of one node. Every family has HELP and TYPE, once, before its samples. */
export function renderTextfile(node: string, s: MetricsState, host: HostFacts): string {
  const out: string[] = []
  const n = `node="${label(node)}"`
  const family = (name: string, type: 'gauge' | 'counter', help: string, samples: Array<[string, number]>) => {
    if (!samples.length) return
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    for (const [labels, v] of samples) out.push(`${name}{${labels}} ${num(v)}`)
  }
  const ops = Object.entries(s.runs).sort(([a], [b]) => a.localeCompare(b))
  family(
    'chainlink_rollout_last_result',
    'gauge',
    'The result the last run of each operation ended with (always 1; the result is the label).',
    ops.map(([op, r]) => [`${n},operation="${label(op)}",result="${label(r.result)}"`, 1])
  )
  family(
    'chainlink_rollout_last_success',
    'gauge',
    'Whether the last run of each operation left the node where it was asked to be (1) or not (0).',
    ops.map(([op, r]) => [`${n},operation="${label(op)}"`, r.ok ? 1 : 0])
  )
  family(
    'chainlink_rollout_last_run_timestamp_seconds',
    'gauge',
    'When the last run of each operation ended, Unix time.',
    ops.map(([op, r]) => [`${n},operation="${label(op)}"`, r.at])
  )
  if (s.leaderGap) {
    family(
      'chainlink_rollout_leader_gap_seconds',
      'gauge',
      "The last measured handoff gap: the old leader's last ready answer to the new one's first.",
      [[n, s.leaderGap.ms / 1000]]
    )
    family(
      'chainlink_rollout_leader_gap_timestamp_seconds',
      'gauge',
      'When the last leader gap was measured, Unix time.',
      [[n, s.leaderGap.at]]
    )
  }
  family('chainlink_rollout_rollbacks_total', 'counter', 'Runs that ended rolled back (the old image serves).', [
    [n, s.rollbacksTotal]
  ])
  family(
    'chainlink_rollout_quarantined_digests',
    'gauge',
    'Image digests an upgrade refuses because an earlier upgrade to them rolled back.',
    [[n, host.quarantined]]
  )
  if (host.newestBackup) {
    const b = host.newestBackup
    family(
      'chainlink_rollout_backup_newest_timestamp_seconds',
      'gauge',
      'When the newest verified backup in backup-dir was taken, Unix time (its age: time() minus this).',
      [[`${n},kind="${label(b.kind)}"`, b.at]]
    )
    family('chainlink_rollout_backup_newest_size_bytes', 'gauge', 'Size of the newest verified backup on disk.', [
      [`${n},kind="${label(b.kind)}"`, b.bytes]
    ])
  }
  return `${out.join('\n')}\n`
}
