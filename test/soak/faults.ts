// The faults of the campaign, fired at a line of main's output (support/action.ts hooks) against
// the run's own node: the runner cancelled or killed, a Docker daemon of the campaign's own
// (support/dedicated-dockerd.ts, with and without live-restore) killed and started again, a
// Postgres cluster of the run's own (support/pg-cluster.ts) restarted, the node's process killed
// (a crash: Docker's restart policy applies, as on a host), its network cut for a while, a small
// tmpfs as a full backup disk, a table locked by another session (a slow DB).
import type Docker from 'dockerode'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import pg from 'pg'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BED_DIR, simImage, sleep, type TestDb } from '../support/bed.js'
import { freePort } from '../../src/docker/client.js'
import type { Hook } from '../support/action.js'
import { startDedicatedDockerd, type DedicatedDockerd } from '../support/dedicated-dockerd.js'
import type { PgCluster } from '../support/pg-cluster.js'
import type { FaultPlan } from './draw.js'

const TAGS = [
  '1.13.0',
  '2.18.0',
  '2.19.0',
  '2.20.0',
  '2.20.0-never-ready',
  '2.20.0-migrate-then-crash',
  '2.20.0-crash-before-lock'
]

/** The campaign's dedicated daemons, started the first time a run needs one, stopped at the end. */
export class Daemons {
  private readonly up = new Map<boolean, Promise<DedicatedDockerd>>()
  get(liveRestore: boolean): Promise<DedicatedDockerd> {
    let d = this.up.get(liveRestore)
    if (!d) {
      d = startDedicatedDockerd({ liveRestore }).then((x) => {
        for (const tag of TAGS) x.cli('pull', '-q', simImage(tag))
        return x
      })
      this.up.set(liveRestore, d)
    }
    return d.then(async (x) => {
      await x.start() // up again if a run left it down
      return x
    })
  }
  async stopAll(): Promise<void> {
    for (const d of this.up.values()) await (await d.catch(() => undefined))?.stop()
    this.up.clear()
  }
}

/** Main's output lines that mark a moment of the run (not the runner's `::` commands). */
export function stepLines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('::'))
}

/** A line as the table counts it: its step, without the run's names, ids and numbers. */
export function stepLabel(line: string, prefix: string): string {
  const head = line.includes(': ') ? line.slice(0, line.indexOf(': ')) : line.split(' ').slice(0, 4).join(' ')
  return head
    .split(prefix)
    .join('<node>')
    .replace(/[0-9a-f]{12,}/g, '<id>')
    .replace(/\d+(\.\d+)?/g, '#')
    .slice(0, 60)
}

/** A registry of the run's own: the bed's registry storage served read-only on a port of its own. */
export interface RunRegistry {
  /** host:port, the images' registry */
  host: string
  /** the run's name of a simulator tag in it */
  image(tag: string): string
  /** SIGKILL: the registry is down */
  kill(): void
}

export async function startRunRegistry(): Promise<RunRegistry> {
  const port = await freePort('127.0.0.1')
  const dir = mkdtempSync(join(tmpdir(), 'clr-soak-registry-'))
  const conf = join(dir, 'registry.yml')
  writeFileSync(
    conf,
    [
      'version: 0.1',
      'log: { level: warn }',
      'storage:',
      `  filesystem: { rootdirectory: ${BED_DIR}/registry }`,
      '  maintenance: { readonly: { enabled: true }, uploadpurging: { enabled: false } }',
      `http: { addr: 127.0.0.1:${port} }`
    ].join('\n') + '\n'
  )
  const child = spawn('docker-registry', ['serve', conf], { stdio: 'ignore' })
  const host = `127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    const up = await fetch(`http://${host}/v2/`).then(
      (r) => r.ok,
      () => false
    )
    if (up) break
    if (i > 100 || child.exitCode !== null) {
      child.kill('SIGKILL')
      throw new Error(`the run's registry on ${host} did not start`)
    }
    await sleep(100)
  }
  let gone = false
  child.once('exit', () => {
    gone = true
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    host,
    image: (tag) => simImage(tag).replace(/^[^/]+/, host),
    kill: () => {
      if (!gone) child.kill('SIGKILL')
    }
  }
}

export interface FaultTarget {
  api: Docker
  /** the run's container name prefix */
  prefix: string
  /** the node's container (the primary of a pair) */
  name: string
  db: TestDb
  dockerd?: DedicatedDockerd
  cluster?: PgCluster
  registry?: RunRegistry
}

/** What a fault did when it fired (the table's evidence), or why it could not. */
export interface Fired {
  kind: string
  step: string
  note?: string
  /** a partition's window (epoch ms), from the cut to the heal: invariants.ts excuses the node's own window after it */
  cut?: { from: number; to: number }
}

async function targetOf(
  t: FaultTarget,
  which: 'leader' | 'newest' | undefined
): Promise<Docker.ContainerInfo | undefined> {
  const mine = (await t.api.listContainers()).filter((c) => c.Names.some((n) => n.startsWith(`/${t.prefix}`)))
  if (which === 'newest') return mine.sort((a, b) => b.Created - a.Created)[0]
  return mine.find((c) => c.Names.includes(`/${t.name}`)) ?? mine[0]
}

async function holdLock(db: TestDb, table: string, ms: number): Promise<string> {
  const c = new pg.Client({ connectionString: db.url })
  await c.connect()
  try {
    await c.query('BEGIN')
    await c.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`)
    await sleep(ms)
    await c.query('COMMIT')
    return `${table} locked ${ms} ms`
  } finally {
    await c.end().catch(() => undefined)
  }
}

async function act(f: FaultPlan, t: FaultTarget, child: ChildProcess, rec: Fired): Promise<string | undefined> {
  switch (f.kind) {
    case 'dockerd-restart':
    case 'dockerd-restart-live': {
      if (f.paused) child.kill('SIGSTOP')
      try {
        await t.dockerd!.kill()
        await t.dockerd!.start()
      } finally {
        if (f.paused) child.kill('SIGCONT')
      }
      return undefined
    }
    case 'pg-restart-fast':
    case 'pg-restart-immediate':
      await t.cluster!.restart(f.kind === 'pg-restart-fast' ? 'fast' : 'immediate')
      return undefined
    case 'node-killed': {
      const c = await targetOf(t, f.target)
      if (!c) return 'no container running'
      const pid = (await t.api.getContainer(c.Id).inspect()).State.Pid
      // the process dies as in a crash (not `docker kill`, which Docker counts as a manual stop)
      if (pid) process.kill(pid, 'SIGKILL')
      return `${c.Names[0].slice(1).split(t.prefix).join('<node>')} pid killed`
    }
    case 'node-disconnected': {
      const c = await targetOf(t, f.target)
      if (!c) return 'no container running'
      const nets = Object.keys(c.NetworkSettings?.Networks ?? {}).filter((n) => n !== 'host')
      if (!nets.length) return 'host network: nothing to cut'
      const from = Date.now()
      for (const n of nets) await t.api.getNetwork(n).disconnect({ Container: c.Id, Force: true })
      await sleep(f.holdMs ?? 3000)
      // the partition heals, as a network does: reconnected if the container is still there
      for (const n of nets)
        await t.api
          .getNetwork(n)
          .connect({ Container: c.Id })
          .catch(() => undefined)
      rec.cut = { from, to: Date.now() }
      return `${nets.join(',')} cut ${f.holdMs} ms`
    }
    case 'db-slow':
      return holdLock(t.db, f.table ?? 'lease_lock', f.holdMs ?? 3000)
    case 'registry-down':
      t.registry!.kill()
      return `${t.registry!.host} killed`
    default:
      return undefined
  }
}

/** Whether a fault fires at a line of the run (a hook), not from its start (a full disk, a registry down before it). */
export const atALine = (f: FaultPlan): boolean =>
  f.kind !== 'disk-full' && !(f.kind === 'registry-down' && f.atLine === 0)

/** The hooks of a run's faults; `fired` gets each fault's step and evidence as it fires. */
export function hooksFor(faults: FaultPlan[], t: FaultTarget, fired: Fired[]): Hook[] {
  return faults.filter(atALine).map((f) => ({
    when: (out: string) => stepLines(out).length >= f.atLine,
    do:
      f.kind === 'cancel'
        ? 'sigint'
        : f.kind === 'runner-killed'
          ? 'sigkill'
          : async (child: ChildProcess) => {
              const rec: Fired = { kind: f.kind, step: '' }
              fired.push(rec)
              rec.note = await act(f, t, child, rec).catch((e: Error) => `fault failed: ${e.message.split('\n')[0]}`)
            }
  }))
}

/** A full backup disk: a tmpfs of `sizeMb` mounted on dir; the returned function unmounts it. */
export function mountSmallDisk(dir: string, sizeMb: number): () => void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir])
  return () => {
    try {
      execFileSync('umount', ['-l', dir])
    } catch {
      // already gone
    }
  }
}
