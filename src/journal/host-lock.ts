// The host lock: one operation per node at a time, across workflows, runners, users and
// state-dirs of the host. Keyed by the node's database (dbKey, review N10), so runs that name the
// node's containers differently exclude each other; kept host-wide, in the host's lock directory
// (/run/lock), because two runs given different `state-dir`s (a CLI run by hand beside the
// workflow's) are still one node: a lock inside each state-dir would let both go. A second lock
// file in `state-dir` beside the journal (src/journal/journal.ts) keeps runners in containers
// that share only a mounted state-dir (not /run/lock) apart, as before.
import {
  accessSync,
  chmodSync,
  closeSync,
  constants,
  fsyncSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
  utimesSync
} from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { Context } from '../context.js'
import { OperationError } from '../errors.js'
import { sleep } from '../sleep.js'
import { nodeDbUrl, type DbSettings } from '../node/connect.js'
import {
  dbKey,
  fsyncDir,
  journalPath,
  nodeKey,
  privateDirSync,
  readJournalAt,
  safeName,
  writeDurable,
  type JournalKeys
} from './journal.js'

/** The host's directory for lock files (FHS; /var/lock links to it): a tmpfs every user may write. */
const HOST_LOCK_DIR = '/run/lock'

interface LockOptions {
  /** a directory every user of the host shares: the file is named for the action, readable by all (the holder is named to another user's run), and the directory left as it is */
  shared?: boolean
  /** what holds it: the operation and the names it was given, for a waiter's message */
  what?: string
  /** this run's journal: a lock left behind by a run whose journal is elsewhere (another state-dir) is taken over only once that journal is closed */
  journal?: string
}

/**
 * One operation per node at a time, across workflows: an exclusive lock file holding the
 * owner's pid. A lock whose process is gone (runner killed) is stale and taken over.
 */
export class HostLock {
  private timer?: NodeJS.Timeout
  private constructor(
    readonly path: string,
    private readonly owner: Owner,
    private readonly opts: LockOptions
  ) {}

  static async acquire(
    dir: string,
    key: string,
    timeoutMs: number,
    signal?: AbortSignal,
    onWait?: (owner: string) => void,
    opts: LockOptions = {}
  ): Promise<HostLock> {
    if (!opts.shared) privateDirSync(dir)
    const path = join(dir, `${opts.shared ? 'chainlink-rollout-' : ''}${safeName(key)}.lock`)
    const end = Date.now() + timeoutMs
    let told = false
    for (;;) {
      try {
        const fd = openSync(path, 'wx', opts.shared ? 0o644 : 0o600)
        const owner: Owner = {
          pid: process.pid,
          host: hostname(),
          at: new Date().toISOString(),
          bootId: bootId(),
          startTime: processStart(process.pid),
          what: opts.what,
          journal: opts.journal
        }
        writeSync(fd, JSON.stringify(owner))
        fsyncSync(fd)
        closeSync(fd)
        fsyncDir(dir)
        const lock = new HostLock(path, owner, opts)
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
        if (owner) refuseOpenElsewhere(owner, opts.journal)
        try {
          rmSync(path, { force: true })
        } catch (e) {
          throw new OperationError(
            `The host lock ${path} was left by a run that ended (${describe(owner)}), and this user cannot remove it (${(e as NodeJS.ErrnoException).code}): remove it as its owner (uid ${statSync(path).uid})`
          )
        }
        continue
      }
      if (!told) {
        onWait?.(describe(owner))
        told = true
      }
      if (Date.now() >= end)
        throw new Error(
          `another chainlink-rollout operation on this node holds the host lock ${path} (${describe(owner)}); waited ${Math.round(timeoutMs / 1000)} s (input 'lock-timeout')`
        )
      await sleep(500, signal)
    }
  }

  /**
   * Removes the lock. A shared lock whose run leaves its journal open (a rollback that failed)
   * stays, marked released: it tells a run of another state-dir where that journal is.
   */
  release(): void {
    if (this.timer) clearInterval(this.timer)
    if (this.opts.shared && this.opts.journal && !closed(this.opts.journal)) {
      writeDurable(this.path, JSON.stringify({ ...this.owner, released: new Date().toISOString() }))
      chmodSync(this.path, 0o644)
      return
    }
    rmSync(this.path, { force: true })
  }
}

/**
 * The keys of the node's journal and host lock (JournalKeys): its DB's (dbKey), as the node
 * itself names it (input 'database-url' only when its container names none), read from the
 * first of `containers` (the node's, then the names a killed run may have left them under) that
 * exists, as connectNode reads it; when none exists, its names' (nodeKey), and the operation
 * fails where it inspects the node.
 */
export async function journalKeys(ctx: Context, node: NodeNames, containers: string[]): Promise<JournalKeys> {
  const byNames = nodeKey(node)
  for (const name of containers) {
    const info = await ctx.docker.inspect(name)
    if (!info) continue
    // A container whose DB cannot be read fails the run here, before anything changes: its
    // names' key instead would let it run beside another run on the same node.
    const { resolved } = await nodeDbUrl(ctx, info, node, true)
    const key = dbKey(resolved.url, resolved.hostKey)
    return { write: key, read: [key, byNames] }
  }
  return { write: byNames, read: [byNames] }
}

/** The node as the run names it (inputs 'container', 'standby' and 'database-url'). */
type NodeNames = { container: string; standby?: string } & Pick<DbSettings, 'databaseUrl'>

/** What the host lock is taken with: the run's state-dir, how long to wait, and what the run is. */
export interface HostLockSettings extends NodeNames {
  operation: string
  stateDir: string
  lockTimeoutMs: number
}

/**
 * Runs `fn` holding the host lock of the node (keyed by its DB, `journalKeys`), once Docker
 * answers: the client waits out a daemon restart (bounded, src/docker/daemon-wait.ts), so the post
 * step and `repair` after a daemon restart find it back instead of failing at the first ping.
 * `containers` are the names to read the DB from, in order. Waits up to input `lock-timeout`
 * for another operation to finish. Two lock files (host-wide, then state-dir) are always taken
 * in that order, one node key each, so two runs never wait for each other both ways.
 */
export async function withHostLock<T>(
  ctx: Context,
  lock: HostLockSettings,
  containers: string[],
  fn: (keys: JournalKeys) => Promise<T>
): Promise<T> {
  const { log } = ctx
  await ctx.docker.ping()
  privateDirSync(lock.stateDir)
  const keys = await journalKeys(ctx, lock, containers)
  const opts: LockOptions = {
    what: `${lock.operation} of '${lock.container}'${lock.standby ? ` (standby '${lock.standby}')` : ''}`,
    journal: journalPath(lock.stateDir, keys.write)
  }
  const dirs = [
    ...(writable(HOST_LOCK_DIR) ? [{ dir: HOST_LOCK_DIR, shared: true }] : []),
    { dir: lock.stateDir, shared: false }
  ]
  const locks: HostLock[] = []
  try {
    for (const d of dirs)
      locks.push(
        await HostLock.acquire(
          d.dir,
          keys.write,
          lock.lockTimeoutMs,
          ctx.signal,
          (o) => log.info(`Waiting for the host lock (held by ${o})`),
          { ...opts, shared: d.shared }
        )
      )
    return await fn(keys)
  } finally {
    for (const l of locks.reverse()) l.release()
  }
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** Whether a journal is closed (or gone): one that cannot be read is not. */
function closed(path: string): boolean {
  try {
    return readJournalAt(path)?.phase !== 'in-progress'
  } catch {
    return false
  }
}

/**
 * A lock left by a run whose journal is in another state-dir than this run's: taken over only
 * when that journal is closed. Open, or unreadable by this user, the way on is a repair there.
 */
function refuseOpenElsewhere(owner: Owner, mine: string | undefined): void {
  if (!owner.journal || !mine || owner.journal === mine) return
  const j = readJournalAt(owner.journal)
  if (j?.phase === 'in-progress')
    throw new OperationError(
      `An interrupted ${j.operation} (run ${j.runId}, started ${j.startedAt}) of this node is recorded in ${owner.journal}, in state-dir '${dirnameOf(owner.journal)}', not this run's: run operation 'repair' with state-dir '${dirnameOf(owner.journal)}' (as the user that ran it) first`
    )
}

function dirnameOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/')) || '/'
}

function describe(owner: Owner | undefined): string {
  if (!owner) return 'unknown owner'
  const where = owner.journal ? `, state-dir ${dirnameOf(owner.journal)}` : ''
  return `${owner.what ? `${owner.what}, ` : ''}pid ${owner.pid} since ${owner.at} on ${owner.host}${where}${owner.released ? `, ended ${owner.released} leaving its journal open` : ''}`
}

interface Owner {
  pid: number
  host: string
  at: string
  /** the kernel's boot id: a lock from before a reboot is stale whatever its pid */
  bootId?: string
  /** the owner's start time (clock ticks since boot): a reused pid is another process */
  startTime?: string
  what?: string
  /** the owner's journal: where a run of another state-dir finds it */
  journal?: string
  /** the run ended leaving its journal open: the lock only records where that journal is */
  released?: string
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
  if (owner.released) return true
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
