// What a drain, a resume and their repair share (docs/hosts.md): the version check against the
// DB's migrations, the proof that the lock went to an instance on another host, the proof that
// this host's instance polls the lock without holding it, and the way back when a drain failed:
// this host's instance started again, to lead when nobody does (src/operations/repair-drain.ts).
import type { Context } from '../context.js'
import { formatMs } from '../duration.js'
import { sleep } from '../sleep.js'
import { readLockState, sameApp } from '../node/lock.js'
import { GateError, type NodeLink } from '../handoff/types.js'

/** Pure: a - b for x.y.z versions (a pre-release suffix is ignored); undefined when either does not parse. */
export function cmpVersion(a: string | undefined, b: string | undefined): number | undefined {
  const parse = (v?: string) =>
    /^v?(\d+)\.(\d+)\.(\d+)/
      .exec(v ?? '')
      ?.slice(1)
      .map(Number)
  const pa = parse(a)
  const pb = parse(b)
  if (!pa || !pb) return undefined
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i]
  return 0
}

/**
 * Pure: why a node of `version` cannot run on a DB whose node_versions says `dbVersion` (the
 * version gate, docs/node-facts.md §9: it would take the lease, refuse and exit), or undefined.
 */
export function versionGateRefusal(version: string | undefined, dbVersion: string | undefined): string | undefined {
  const d = cmpVersion(version, dbVersion)
  if (d === undefined || d >= 0) return undefined
  return `Chainlink ${version} is lower than the database's version ${dbVersion} (node_versions): it would take the lock, fail the version gate and exit`
}

interface TakeObs {
  holder?: string
  /** app ids with a DB session */
  live: string[]
}

/**
 * Pure: the lock went to one of `to` (app ids of instances on other hosts) and `from` (this
 * host's stopped leader) has no session left: pass with the new holder; another holder fails.
 */
export function judgeRemoteTake(
  o: TakeObs,
  p: { from?: string; to: string[] }
): { kind: 'pass'; appId: string } | { kind: 'wait' } | { kind: 'fail'; reason: string } {
  if (!o.holder) return { kind: 'wait' }
  const winner = p.to.find((x) => sameApp(x, o.holder))
  if (!winner) {
    if (p.from && sameApp(p.from, o.holder)) return { kind: 'wait' }
    return { kind: 'fail', reason: `the lock went to app ${o.holder}, which is not a waiting instance on another host` }
  }
  if (p.from && o.live.some((x) => sameApp(x, p.from))) return { kind: 'wait' }
  return { kind: 'pass', appId: winner }
}

/** Waits until one of `to` holds the lock alone; returns it and how long after `since` it was seen. */
export async function remoteLockTaken(
  ctx: Context,
  link: NodeLink,
  from: string | undefined,
  to: string[],
  timeoutMs: number,
  since: number
): Promise<{ appId: string; ms: number }> {
  const deadline = Math.max(since + timeoutMs, Date.now())
  let last = 'nobody holds it'
  for (;;) {
    const l = await readLockState(link.db, link.mode, link.config.advisoryLockId)
    const v = judgeRemoteTake({ holder: l.holder, live: l.sessions.map((s) => s.appId) }, { from, to })
    if (v.kind === 'pass') {
      const ms = Date.now() - since
      ctx.report.gate(
        'lock-handoff',
        true,
        `app ${v.appId} on another host holds the lock, ${formatMs(ms)} after the stop`
      )
      return { appId: v.appId, ms }
    }
    last = l.holder ? `app ${l.holder} holds it` : (l.problem ?? last)
    const reason =
      v.kind === 'fail'
        ? v.reason
        : Date.now() >= deadline
          ? `no instance on another host took the lock within ${formatMs(timeoutMs)} of the stop (${last})`
          : undefined
    if (reason) {
      ctx.report.gate('lock-handoff', false, reason)
      throw new GateError('lock-handoff', reason)
    }
    await sleep(100, ctx.signal)
  }
}

/**
 * Proves `appId` polls the lock: its sessions' latest query_start moves forward at least twice
 * while the lock stays another's (a waiting node retries every refresh interval, §3).
 */
export async function provePolling(ctx: Context, link: NodeLink, appId: string, name: string): Promise<void> {
  const end = Date.now() + 4 * link.config.leaseRefreshMs + 3000
  const starts = new Set<number>()
  while (Date.now() < end) {
    const l = await readLockState(link.db, link.mode, link.config.advisoryLockId)
    if (sameApp(l.holder, appId)) throw new GateError('standby-ready', `'${name}' took the lock instead of waiting`)
    const mine = l.sessions.filter((s) => sameApp(s.appId, appId))
    if (!mine.length) throw new GateError('standby-ready', `'${name}' has no DB session left: it exited`)
    const t = Math.max(...mine.map((s) => s.queryStart?.getTime() ?? 0))
    if (t) starts.add(t)
    if (starts.size >= 3) {
      ctx.report.gate('standby-ready', true, `'${name}' (app ${appId}) polls the lock and does not hold it`)
      return
    }
    await sleep(Math.max(50, link.config.leaseRefreshMs / 4), ctx.signal)
  }
  throw new GateError('standby-ready', `'${name}' (app ${appId}) was not seen polling the lock`)
}
