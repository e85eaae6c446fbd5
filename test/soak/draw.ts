// Seeded draws of the fault campaign (docs/reliability.md, "Fault campaign"): every run's
// operation, layout and faults come from a PRNG derived from (seed, run index) alone, so
// `--seed S --only K` replays run K exactly, whatever ran before it.

/** mulberry32: a small 32-bit PRNG, plenty for choosing among a few dozen cases. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The PRNG of run `index` of the campaign `seed`: a hash of both, independent of other runs. */
export function runRng(seed: number, index: number): () => number {
  let h = Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d)
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b)
  return mulberry32((h ^ (h >>> 16)) >>> 0)
}

export class Draw {
  constructor(private readonly rng: () => number) {}
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rng() * (hi - lo + 1))
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rng() * xs.length)]
  }
  chance(p: number): boolean {
    return this.rng() < p
  }
}

export type Operation = 'upgrade' | 'upgrade-bad' | 'handoff' | 'restart' | 'backup' | 'restore' | 'repair'
export type SoakLayout = 'host' | 'bridge' | 'ports' | 'pair'

export type FaultKind =
  | 'cancel'
  | 'runner-killed'
  | 'dockerd-restart'
  | 'dockerd-restart-live'
  | 'pg-restart-fast'
  | 'pg-restart-immediate'
  | 'node-killed'
  | 'node-disconnected'
  | 'disk-full'
  | 'db-slow'
  | 'registry-down'

export interface FaultPlan {
  kind: FaultKind
  /** fires at the n-th line of main's output (a step of the run); disk-full holds from the start */
  atLine: number
  /** the Docker daemon restart falls between two of the action's calls (it is paused meanwhile) */
  paused?: boolean
  /** how long a disconnect or a held DB lock lasts */
  holdMs?: number
  /** the table a slow DB holds locked */
  table?: string
  /** the container a kill or a disconnect hits: the leader, or the newest of the node's containers */
  target?: 'leader' | 'newest'
  /** the tmpfs size of a full backup disk */
  sizeMb?: number
}

export interface Plan {
  op: Operation
  layout: SoakLayout
  /** the leader's tag before the run */
  from: string
  /** the target tag of an upgrade */
  to?: string
  /** repair: the line of an upgrade (to 2.19.0) at which its runner is killed, leaving what repair repairs */
  killAt?: number
  faults: FaultPlan[]
}

/** About how many lines main prints for each operation without a fault (the moments a fault can hit). */
const LINES: Record<Operation, number> = {
  upgrade: 20,
  'upgrade-bad': 24,
  handoff: 9,
  restart: 9,
  backup: 5,
  restore: 8,
  repair: 4
}

const BAD = ['2.20.0-never-ready', '2.20.0-migrate-then-crash', '2.20.0-crash-before-lock'] as const

/** Faults that fit an operation: a full backup disk only where a backup is written. */
function kindsFor(op: Operation): FaultKind[] {
  const all: FaultKind[] = [
    'cancel',
    'runner-killed',
    'dockerd-restart',
    'dockerd-restart-live',
    'pg-restart-fast',
    'pg-restart-immediate',
    'node-killed',
    'node-disconnected',
    'db-slow'
  ]
  return op === 'upgrade' || op === 'upgrade-bad' || op === 'backup' ? [...all, 'disk-full'] : all
}

export function drawPlan(d: Draw): Plan {
  const op = d.pick<Operation>([
    'upgrade',
    'upgrade',
    'upgrade',
    'upgrade-bad',
    'upgrade-bad',
    'handoff',
    'restart',
    'backup',
    'restore',
    'repair'
  ])
  const layout = d.pick<SoakLayout>(['host', 'bridge', 'ports', 'ports', 'pair'])
  // v1 dual (1.13.0) where the simulator has it: handoff and restart on it, or an upgrade from it
  const v1 = layout !== 'pair' && d.chance(0.2)
  const from = v1 ? '1.13.0' : '2.18.0'
  const to = op === 'upgrade' ? d.pick(['2.19.0', '2.20.0']) : op === 'upgrade-bad' ? d.pick(BAD) : undefined
  const n = d.pick([0, 1, 1, 1, 2, 2])
  const faults: FaultPlan[] = []
  const kinds = kindsFor(op)
  for (let i = 0; i < n; i++) {
    const kind = d.pick(kinds)
    if (faults.some((f) => f.kind === kind)) continue
    const f: FaultPlan = { kind, atLine: d.int(1, LINES[op]) }
    if (kind.startsWith('dockerd-restart')) f.paused = d.chance(0.5)
    if (kind === 'node-disconnected') f.holdMs = d.int(2000, 8000)
    if (kind === 'db-slow') {
      f.holdMs = d.int(2000, 8000)
      f.table = d.pick(['lease_lock', 'sim_heartbeats', 'node_versions'])
    }
    if (kind === 'node-killed' || kind === 'node-disconnected') f.target = d.pick(['leader', 'newest'] as const)
    if (kind === 'disk-full') {
      f.atLine = 0
      f.sizeMb = d.pick([1, 3])
    }
    faults.push(f)
  }
  // a daemon of its own and a Postgres of its own each restart once per run at most
  const daemon = faults.filter((f) => f.kind.startsWith('dockerd-restart'))
  if (daemon.length > 1) faults.splice(faults.indexOf(daemon[1]), 1)
  const pgr = faults.filter((f) => f.kind.startsWith('pg-restart'))
  if (pgr.length > 1) faults.splice(faults.indexOf(pgr[1]), 1)
  // the runner cancelled and killed outright are one fate of main, not two
  if (faults.some((f) => f.kind === 'cancel') && faults.some((f) => f.kind === 'runner-killed'))
    faults.splice(
      faults.findIndex((f) => f.kind === 'cancel'),
      1
    )
  const killAt = op === 'repair' ? d.int(3, 20) : undefined
  return { op, layout, from, to, killAt, faults }
}

/**
 * The registry going down, drawn from a stream of its own (seed and run salted) so that adding it
 * left every earlier plan of every seed as it was: an upgrade whose images come from a registry of
 * the run's own, killed before the run (line 0) or at one of its first lines (around the pull).
 */
export function drawRegistryFault(plan: Plan, d: Draw): Plan {
  if (!plan.op.startsWith('upgrade') || !d.chance(0.2)) return plan
  return { ...plan, faults: [...plan.faults, { kind: 'registry-down', atLine: d.int(0, 3) }] }
}

/** Run k's plan under a seed: what `--list` prints and what the run does. */
export function planOf(seed: number, k: number): Plan {
  return drawRegistryFault(drawPlan(new Draw(runRng(seed, k))), new Draw(runRng(seed ^ 0x7e6157, k)))
}

export function describePlan(p: Plan): string {
  const what = `${p.op}${p.to ? ` -> ${p.to}` : ''}${p.killAt ? ` (after an upgrade killed @line ${p.killAt})` : ''} on ${p.layout} (${p.from})`
  const fs = p.faults.map(
    (f) =>
      `${f.kind}${f.atLine ? `@line ${f.atLine}` : ''}${f.paused ? ' paused' : ''}${f.table ? ` ${f.table}` : ''}${f.target ? ` ${f.target}` : ''}${f.holdMs ? ` ${f.holdMs}ms` : ''}${f.sizeMb ? ` ${f.sizeMb}MB` : ''}`
  )
  return `${what}; faults: ${fs.length ? fs.join(', ') : 'none'}`
}
