// The journal and the host lock, both files in `state-dir` on the node's host, so that the post
// step, a re-run or `operation: repair` (even from another workflow) sees what was in flight.
// No secret is ever written here: containers are named by id, the DB by nothing at all.
import {
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
import { sleep } from './context.js'

/** Keys of the runner state shared by main and post (strings only). */
export enum StateKey {
  StateDir = 'state-dir',
  Container = 'container',
  /** the journal run this job opened: its post step repairs that run only */
  RunId = 'run-id'
}

export interface JournalStep {
  step: string
  at: string
  data?: Record<string, unknown>
}

export interface Journal {
  runId: string
  operation: string
  container: string
  pid: number
  host: string
  startedAt: string
  /** in-progress until the operation reached a consistent end (done) */
  phase: 'in-progress' | 'done'
  result?: string
  /** facts recorded in preflight that repair needs: ids, names, images, DB version */
  plan: Record<string, unknown>
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

  /** Records a step before it is taken. */
  step(step: string, data?: Record<string, unknown>): void {
    this.journal.steps.push({ step, at: new Date().toISOString(), data })
    this.flush()
  }

  plan(facts: Record<string, unknown>): void {
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

export function hasStep(j: Journal, step: string): boolean {
  return j.steps.some((s) => s.step === step)
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
    mkdirSync(stateDir, { recursive: true, mode: 0o700 })
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
export function isStale(path: string, owner: Owner): boolean {
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
