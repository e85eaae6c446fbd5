// The journal and the host lock, both files in `state-dir` on the node's host, so that the post
// step, a re-run or `operation: repair` (even from another workflow) sees what was in flight.
// No secret is ever written here: containers are named by id, the DB by nothing at all.
import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  utimesSync
} from 'node:fs'
import { hostname } from 'node:os'
import { dirname, join } from 'node:path'
import type { Context } from './context.js'
import { sleep } from './sleep.js'
import type { Check } from './health.js'
import type { DbVersion } from './database.js'
import type { LockMode } from './node-config.js'
import { knownSecrets } from './secrets.js'

/**
 * The steps a journal records, each before it is taken, grouped by the steps of the algorithm
 * (README, docs/algorithm.md). Preflight (1) changes nothing and the report (8) is not journaled.
 */
type Step =
  // 2. backup, and the rehearsal of the new image's migrations on a scratch copy of it
  | 'backup'
  | 'rehearsal'
  // 3. standby: started beside the leader (a pair first stops and retires its waiting standby)
  | 'standby-create'
  | 'standby-started'
  // every container the run creates, the moment it exists (a failed start leaves it behind)
  | 'created'
  // a --rm leader's stopped copy, kept as the rollback (Docker deletes the leader at its stop)
  | 'keep-previous'
  | 'kept-previous'
  // a container the run stops gets restart policy no first (the operator's is journaled)
  | 'restart-policy-no'
  | 'standby-stop'
  | 'rename-standby-previous'
  // 4. standby-ready gate passed (the swap's verified standby)
  | 'standby-verified'
  // 5. handoff: the leader's stop, and the later handoffs of a second-handoff finish or a pair
  | 'handoff'
  | 'handoff-2'
  | 'handoff-back'
  // 7. finalize: rename, swap or second handoff; a pair restarts its old leader as the standby
  | 'rename-previous'
  | 'final-create'
  | 'final-started'
  | 'swap'
  | 'remove-interim'
  | 'rename-standby'
  | 'restart-previous'
  | 'remove-previous'
  // or roll back, through the same gates
  | 'rollback'
  | 'rollback-failed'
  // a later run took over the interrupted one (post step or operation: repair)
  | 'repair'

interface JournalStep {
  step: Step
  at: string
  data?: Record<string, unknown>
}

/**
 * The facts a rollout records in preflight, before it changes anything, and repair reads back to
 * find the node as it was: containers by id, images, the DB's version. Never a secret.
 */
export interface JournalPlan {
  /** the container that held the lock in preflight, and its name */
  leaderId: string
  leaderName: string
  /** a failover pair's other (waiting) container */
  otherId?: string
  otherName?: string
  leaderImage: string
  /** the image the run creates containers from */
  target: string
  /** the DB's migration version before the run, for the DB part of a rollback */
  dbBefore: DbVersion
  mode: LockMode
  /** the pre-upgrade backup, once taken */
  backupFile?: string
  /** /health checks already failing on the leader in preflight: allowed to fail after the change */
  failingBefore?: Check[]
}

interface Journal {
  runId: string
  operation: string
  container: string
  pid: number
  host: string
  startedAt: string
  /** in-progress until the operation reached a consistent end (done) */
  phase: 'in-progress' | 'done'
  result?: string
  plan: JournalPlan
  steps: JournalStep[]
}

function safeName(container: string): string {
  return container.replace(/[^a-zA-Z0-9_.+-]/g, '_')
}

/**
 * The key of the node's journal and host lock: its container names, sorted, so that
 * `container: a, standby: b` and `container: b, standby: a` are one node (a container name never
 * holds '+'). A single container keeps its own name, as before.
 */
export function nodeKey(inputs: { container: string; standby?: string }): string {
  return [inputs.container, ...(inputs.standby ? [inputs.standby] : [])].sort().join('+')
}

export function journalPath(stateDir: string, container: string): string {
  return join(stateDir, `${safeName(container)}.journal.json`)
}

/** The state dir is its owner's only (0700): an existing one with wider modes is narrowed. */
export function privateDirSync(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 })
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o700)
}

/** Writes a file durably: temp file, fsync, rename, then fsync of the directory (the rename itself). */
export function writeDurable(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
  fsyncDir(dirname(path))
}

function fsyncDir(dir: string): void {
  let fd: number | undefined
  try {
    fd = openSync(dir, 'r')
    fsyncSync(fd)
  } catch {
    /* a file system that cannot sync a directory: the file itself is synced */
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

export class JournalWriter {
  readonly journal: Journal
  constructor(
    readonly path: string,
    init: Omit<Journal, 'steps' | 'phase' | 'pid' | 'host' | 'startedAt'>
  ) {
    this.journal = {
      ...init,
      pid: process.pid,
      host: hostname(),
      startedAt: new Date().toISOString(),
      phase: 'in-progress',
      steps: []
    }
    this.flush()
  }

  /** Records a step before it is taken. Free text in it (a rollback's reason) is redacted. */
  step(step: Step, data?: Record<string, unknown>): void {
    if (data)
      data = Object.fromEntries(
        Object.entries(data).map(([k, v]) => [k, typeof v === 'string' ? knownSecrets.redact(v) : v])
      )
    this.journal.steps.push({ step, at: new Date().toISOString(), data })
    this.flush()
  }

  plan(facts: Partial<JournalPlan>): void {
    Object.assign(this.journal.plan, facts)
    this.flush()
  }

  done(result: string): void {
    this.journal.phase = 'done'
    this.journal.result = result
    this.flush()
  }

  private flush(): void {
    writeDurable(this.path, JSON.stringify(this.journal, null, 2))
  }
}

export function readJournal(stateDir: string, container: string): Journal | undefined {
  try {
    return JSON.parse(readFileSync(journalPath(stateDir, container), 'utf8')) as Journal
  } catch {
    return undefined
  }
}

/**
 * One operation per node at a time, across workflows: an exclusive lock file holding the
 * owner's pid. A lock whose process is gone (runner killed) is stale and taken over.
 */
export class HostLock {
  private timer?: NodeJS.Timeout
  private constructor(readonly path: string) {}

  static async acquire(
    stateDir: string,
    container: string,
    timeoutMs: number,
    signal?: AbortSignal,
    onWait?: (owner: string) => void
  ): Promise<HostLock> {
    privateDirSync(stateDir)
    const path = join(stateDir, `${safeName(container)}.lock`)
    const end = Date.now() + timeoutMs
    let told = false
    for (;;) {
      try {
        const fd = openSync(path, 'wx', 0o600)
        const owner: Owner = {
          pid: process.pid,
          host: hostname(),
          at: new Date().toISOString(),
          bootId: bootId(),
          startTime: processStart(process.pid)
        }
        writeSync(fd, JSON.stringify(owner))
        fsyncSync(fd)
        closeSync(fd)
        fsyncDir(stateDir)
        const lock = new HostLock(path)
        // Refresh the mtime so a lock held by a live run on another pid namespace is not stale.
        lock.timer = setInterval(() => {
          try {
            const now = new Date()
            utimesSync(path, now, now)
          } catch {
            /* removed under us: nothing to refresh */
          }
        }, 5000)
        lock.timer.unref()
        return lock
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      }
      const owner = readOwner(path)
      // An empty or torn file (a crash between create and write) is stale once a minute old.
      if (owner ? isStale(path, owner) : olderThan(path, 60_000)) {
        rmSync(path, { force: true })
        continue
      }
      if (!told) {
        onWait?.(owner ? `pid ${owner.pid} on ${owner.host} since ${owner.at}` : 'unknown owner')
        told = true
      }
      if (Date.now() >= end)
        throw new Error(
          `another chainlink-rollout operation holds the host lock ${path} (${owner ? `pid ${owner.pid} since ${owner.at}` : 'unknown owner'}); waited ${Math.round(timeoutMs / 1000)} s (input 'lock-timeout')`
        )
      await sleep(500, signal)
    }
  }

  release(): void {
    if (this.timer) clearInterval(this.timer)
    rmSync(this.path, { force: true })
  }
}

/**
 * Runs `fn` holding the host lock of the node (its sorted container names, `nodeKey`), after checking that
 * Docker answers; waits up to input `lock-timeout` for another operation to finish.
 */
export async function withHostLock<T>(ctx: Context, fn: () => Promise<T>): Promise<T> {
  const { inputs, log } = ctx
  await ctx.docker.ping()
  const lock = await HostLock.acquire(inputs.stateDir, nodeKey(inputs), inputs.lockTimeoutMs, ctx.signal, (o) =>
    log.info(`Waiting for the host lock (held by ${o})`)
  )
  try {
    return await fn()
  } finally {
    lock.release()
  }
}

interface Owner {
  pid: number
  host: string
  at: string
  /** the kernel's boot id: a lock from before a reboot is stale whatever its pid */
  bootId?: string
  /** the owner's start time (clock ticks since boot): a reused pid is another process */
  startTime?: string
}

function readOwner(path: string): Owner | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    return undefined
  }
}

function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined
  } catch {
    return undefined
  }
}

/** Field 22 of /proc/<pid>/stat (after the command in parentheses, which may hold spaces). */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/**
 * Whether a lock's owner is gone. On this host: another boot, a dead pid, or a pid now held by
 * a process that started at another time (a reboot or a killed runner, its pid reused). A lock
 * without boot id and start time (an older version) is stale once not refreshed for a minute.
 * Another host name (a runner in a container): stale when not refreshed for a minute.
 */
function isStale(path: string, owner: Owner): boolean {
  if (owner.host !== hostname()) return olderThan(path, 60_000)
  const boot = bootId()
  if (owner.bootId && boot && owner.bootId !== boot) return true
  try {
    process.kill(owner.pid, 0)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return true
  }
  if (owner.startTime) {
    const now = processStart(owner.pid)
    return now !== undefined && now !== owner.startTime
  }
  return !owner.bootId && olderThan(path, 60_000)
}

function olderThan(path: string, ms: number): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs > ms
  } catch {
    return true
  }
}
