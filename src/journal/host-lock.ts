// The host lock, a file in `state-dir` beside the journal (src/journal/journal.ts): one operation per node
// at a time, across workflows and runners of the host.
import { closeSync, fsyncSync, openSync, readFileSync, rmSync, statSync, writeSync, utimesSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { Context } from '../context.js'
import { sleep } from '../sleep.js'
import { fsyncDir, nodeKey, privateDirSync, safeName } from './journal.js'

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
 * Runs `fn` holding the host lock of the node (its sorted container names, `nodeKey`), once Docker
 * answers: the client waits out a daemon restart (bounded, src/docker/daemon-wait.ts), so the post
 * step and `repair` after a daemon restart find it back instead of failing at the first ping.
 * Waits up to input `lock-timeout` for another operation to finish.
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
