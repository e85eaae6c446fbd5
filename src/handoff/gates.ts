// The gates as judgements: each is a pure function from the observations made so far (oldest
// first) to pass (with what it proved), wait, or fail (with the reason). The loops that make
// the observations are in gate-loops.ts; nothing here reads the clock, Docker or the DB.
import type { NodeSession } from '../postgres/database.js'
import { describeChecks, type Check } from '../node/health.js'
import { sameApp } from '../node/lock.js'
import type { ChecksObs, ReadyObs } from '../node/observer.js'

export type Verdict<T> =
  | { kind: 'pass'; proved: T; detail: string }
  | { kind: 'wait'; why: string }
  /** `lockMovedTo`: the gate saw another app hold the lock (evidence that outlives a lease freed a moment later) */
  | { kind: 'fail'; reason: string; lockMovedTo?: string; hostFault?: string }

/** a container as Docker showed it; undefined in an observation: it is gone */
export interface ContainerObs {
  running: boolean
  restarting?: boolean
  status: string
  exitCode: number
  restartCount: number
  /** State.StartedAt as Docker reports it */
  startedAt?: string
  /** the image's HEALTHCHECK: status, and when its latest check started (ms) */
  health?: { status: string; lastCheckAt?: number; lastOutput?: string }
}

export interface LockObs {
  /** app id holding the lock, when exactly one does */
  holder?: string
  problem?: string
  sessions: NodeSession[]
  /** the lease row as read (lease and dual modes): its app, and whether it ran out by the DB clock */
  lease?: { clientId: string; expired: boolean }
}

/**
 * The lease still names `appId` and has not run out, but that app has no DB session: its
 * connections just dropped (a Postgres restart, a managed DB's failover, a pooler reconnect).
 * The node keeps running and checks out a new connection at its next refresh, and nobody else
 * can take an unexpired lease (docs/node-facts.md §3): until it runs out this is evidence of
 * nothing. Once it ran out unrenewed, or names another app, it is.
 */
function reconnecting(lock: LockObs, appId: string): boolean {
  const l = lock.lease
  return !!l && !l.expired && sameApp(l.clientId, appId) && !lock.sessions.some((s) => sameApp(s.appId, appId))
}

const fmt = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`)
const exitText = (c: ContainerObs | undefined) => (c ? `${c.status}, exit code ${c.exitCode}` : 'gone')

// ---------------------------------------------------------------------------------------------
// standby-ready: running, no restart, a DB session of its own, the lock still the leader's

export interface StandbyObs {
  at: number
  container?: ContainerObs
  lock: LockObs
  /** node sessions that are the standby's (new since it started) */
  mine: NodeSession[]
}

export interface Proven {
  appId: string
  version?: string
}

export function judgeStandby(
  obs: StandbyObs[],
  p: { name: string; leaderAppId: string; deadline: number; within?: string }
): Verdict<Proven> {
  let why = 'no DB session yet'
  for (const o of obs) {
    const c = o.container
    if (!c) return { kind: 'fail', reason: `standby '${p.name}' disappeared` }
    if (!c.running || c.restarting)
      return {
        kind: 'fail',
        reason: `standby '${p.name}' is not running (${exitText(c)}) before taking the lock`
      }
    if (c.restartCount > 0) return { kind: 'fail', reason: `standby '${p.name}' restarted ${c.restartCount} time(s)` }
    if (o.lock.holder && !sameApp(o.lock.holder, p.leaderAppId))
      return {
        kind: 'fail',
        reason: `the lock moved to app ${o.lock.holder} before the handoff`,
        lockMovedTo: o.lock.holder
      }
    if (o.mine.length) {
      const s = o.mine[0]
      if (sameApp(o.lock.holder, p.leaderAppId))
        return {
          kind: 'pass',
          proved: { appId: s.appId, version: s.version },
          detail: `'${p.name}' running, DB session of version ${s.version} (app ${s.appId}), waiting: the lock is still the leader's`
        }
      why = o.lock.problem ?? 'lock state unclear'
    }
  }
  const last = obs.at(-1)
  if (last && last.at >= p.deadline)
    return {
      kind: 'fail',
      reason: `standby '${p.name}' did not open a DB session and wait for the lock ${p.within ?? 'in time'} (${why})`
    }
  return { kind: 'wait', why }
}

// ---------------------------------------------------------------------------------------------
// session: a started container's node process opened a DB session

interface SessionObs {
  at: number
  container?: ContainerObs
  mine: NodeSession[]
}

export function judgeSession(obs: SessionObs[], p: { name: string; deadline: number }): Verdict<Proven> {
  for (const o of obs) {
    if (!o.container?.running)
      return { kind: 'fail', reason: `'${p.name}' exited (${exitText(o.container)}) before opening its DB session` }
    if (o.mine.length)
      return {
        kind: 'pass',
        proved: { appId: o.mine[0].appId, version: o.mine[0].version },
        detail: `'${p.name}' opened a DB session (app ${o.mine[0].appId})`
      }
  }
  const last = obs.at(-1)
  if (last && last.at >= p.deadline) return { kind: 'fail', reason: `'${p.name}' opened no DB session in time` }
  return { kind: 'wait', why: 'no DB session yet' }
}

// ---------------------------------------------------------------------------------------------
// lock-handoff: the lock is the new node's alone, the old node's sessions are gone

export interface LockTakenObs {
  at: number
  container?: ContainerObs
  lock: LockObs
}

export function judgeLockTaken(
  obs: LockTakenObs[],
  p: {
    name: string
    appId: string
    mode: string
    from?: { name: string; appId?: string }
    /** when the clock starts: the stop of `from`, or the start of `name` */
    since: number
    deadline: number
    /** why the wait may be long (a lease still held by a node that did not release it) */
    expect?: string
  }
): Verdict<{ ms: number }> {
  let last = 'no observation yet'
  for (const o of obs) {
    const fromLeft = !p.from?.appId || !o.lock.sessions.some((s) => sameApp(s.appId, p.from!.appId))
    if (sameApp(o.lock.holder, p.appId) && fromLeft) {
      const ms = o.at - p.since
      return {
        kind: 'pass',
        proved: { ms },
        detail: `lock (${p.mode}) held by '${p.name}' (app ${p.appId}) ${fmt(ms)} after ${p.from ? `'${p.from.name}' stopped; its sessions are gone` : 'it started'}`
      }
    }
    if (!o.container?.running)
      return { kind: 'fail', reason: `'${p.name}' exited (${exitText(o.container)}) before taking the lock` }
    last = o.lock.holder ? `held by app ${o.lock.holder}` : (o.lock.problem ?? 'free')
    if (!fromLeft) last += `; '${p.from!.name}' still has a DB session`
  }
  const end = obs.at(-1)
  if (end && end.at >= p.deadline)
    return {
      kind: 'fail',
      reason: `'${p.name}' did not take the lock within ${fmt(p.deadline - p.since)} of ${p.from ? 'the stop' : 'its start'} (${last})${p.expect ? `; ${p.expect}` : ''}`
    }
  return { kind: 'wait', why: last }
}

// ---------------------------------------------------------------------------------------------
// health: plain /readyz 200, no check failing that passed on the leader before, held for
// stable-for with no restart, the lock its own, and Docker not `unhealthy` from a check made
// while the node answered ready. 429s and timeouts are unknown: they neither count nor break.

export interface HealthObs {
  at: number
  container?: ContainerObs
  lock: LockObs
  /** the observer's latest /readyz and /health answers (repeated until new ones come) */
  ready?: ReadyObs
  checks?: ChecksObs
}

export interface HealthParams {
  name: string
  appId: string
  restarts0: number
  /** State.StartedAt when the gate opened */
  startedAt0?: string
  /** checks failing on the leader before anything changed; undefined: not known */
  before?: Check[]
  stableMs: number
  /** first ready (and settled) answer by then */
  readyBy: number
  /** ready-timeout as written, for the message */
  readyTimeout?: string
  /** how long a stable window may stay without a counted answer (429s) before it fails */
  unknownMs?: number
  /** every failing check is let pass (named in the detail, not judged) */
  anyCheck?: boolean
}

export interface HealthProof {
  /** from the gate's first observation to the first ready answer */
  readyAt: number
  heldMs: number
  /** checks failing now that failed before too */
  stillFailing: Check[]
  last: string
  /** /health answered this (401/403): behind authentication, its checks were not compared */
  checksHidden?: number
}

/** checks failing in `now` that did not fail `before` */
export function newFailures(now: Check[], before: Check[] | undefined): Check[] {
  if (!before) return []
  return now.filter((c) => !before.some((b) => b.name === c.name))
}

export function judgeHealth(obs: HealthObs[], p: HealthParams): Verdict<HealthProof> {
  let firstReady: number | undefined
  let settled: number | undefined
  let lastReady: number | undefined
  let lastKnown: number | undefined
  let newFailing: Check[] = []
  let stillFailing: Check[] = []
  let seenReady = -1
  let seenChecks = -1
  /** /health answered 401/403: behind authentication, the checks are not compared */
  let hidden: number | undefined
  let last = 'not answering yet'
  /** the latest observation saw the lease still ours but no session of ours (a DB blip) */
  let lockUnproven = false
  for (const o of obs) {
    const c = o.container
    if (!c?.running)
      return {
        kind: 'fail',
        reason: `'${p.name}' exited (${exitText(c)}) ${settled !== undefined ? 'while holding ready' : 'before becoming ready'}; last: ${last}`
      }
    if (c.restartCount !== p.restarts0) return { kind: 'fail', reason: `'${p.name}' restarted during the health gate` }
    // Started again with no restart counted: a restart policy counts the restarts it makes after
    // an exit; the daemon's own start of its containers when it comes back does not. The daemon
    // restarted (a runner paused across it never meets the outage): the host's fault, typed so
    // the quarantine does not read it as the image's (issue 21 N16).
    if (p.startedAt0 && c.startedAt && c.startedAt !== p.startedAt0)
      return {
        kind: 'fail',
        reason: `'${p.name}' was started again by the Docker daemon during the health gate (started ${p.startedAt0}, now ${c.startedAt}, no restart counted): the daemon restarted`,
        hostFault: 'the Docker daemon restarted during the health gate (it started the new container again)'
      }
    lockUnproven = !sameApp(o.lock.holder, p.appId) && reconnecting(o.lock, p.appId)
    if (!sameApp(o.lock.holder, p.appId) && !lockUnproven)
      return {
        kind: 'fail',
        reason: `'${p.name}' lost the lock (${o.lock.holder ? `now held by app ${o.lock.holder}` : o.lock.problem})`
      }
    // Docker's HEALTHCHECK runs every 30 s by default: it is not waited for, but a check that
    // ran while the node answered ready and left it unhealthy is evidence against it.
    const h = c.health
    if (
      h?.status === 'unhealthy' &&
      firstReady !== undefined &&
      h.lastCheckAt !== undefined &&
      h.lastCheckAt >= firstReady
    )
      return {
        kind: 'fail',
        reason: `'${p.name}': Docker health is unhealthy${h.lastOutput ? ` (${h.lastOutput.trim().slice(0, 200)})` : ''}; last: ${last}`
      }
    const r = o.ready
    if (r && r.at > seenReady) {
      seenReady = r.at
      const route = r.route ?? '/readyz'
      if (r.kind === 'unknown') {
        last = `${route} ${r.status ?? r.error} (no evidence${r.status === 401 || r.status === 403 ? ': behind authentication on both readiness routes' : ''}: waiting)`
      } else if (r.kind === 'ready') {
        firstReady ??= r.at
        lastReady = r.at
        lastKnown = r.at
        last = `${route} 200`
      } else {
        lastKnown = r.at
        const what = r.status !== undefined ? `${route} ${r.status}` : `not answering (${r.error})`
        if (firstReady !== undefined)
          return { kind: 'fail', reason: `'${p.name}' was ready, then not (${what}) within the stable-for window` }
        last = what
      }
    }
    const k = o.checks
    if (k && k.at > seenChecks && firstReady !== undefined && k.at >= firstReady) {
      seenChecks = k.at
      if (k.kind === 'checks') {
        hidden = undefined
        newFailing = newFailures(k.failing, p.before)
        stillFailing = k.failing.filter((f) => !newFailing.includes(f))
        if (newFailing.length) settled = undefined
        else settled ??= Math.max(k.at, firstReady)
      } else if (k.kind === 'hidden') {
        // no evidence either way: readiness and the lock decide alone
        hidden = k.status
        newFailing = []
        stillFailing = []
        settled ??= Math.max(k.at, firstReady)
      }
    }
    const readyText = `${o.ready?.route ?? '/readyz'} 200`
    if (newFailing.length)
      last = `${readyText}, /health failing ${describeChecks(newFailing)}, which passed on the leader before`
    else if (firstReady !== undefined && settled === undefined && r?.kind === 'ready')
      last = `${readyText}, /health not read yet`
    if (!lockUnproven && settled !== undefined && lastReady !== undefined && lastReady - settled >= p.stableMs)
      return {
        kind: 'pass',
        proved: {
          readyAt: firstReady!,
          heldMs: lastReady - settled,
          stillFailing,
          last,
          ...(hidden ? { checksHidden: hidden } : {})
        },
        detail: `'${p.name}': ${readyText}${hidden ? `, /health ${hidden} (behind authentication: checks not compared)` : stillFailing.length ? `, failing ${p.anyCheck ? '(let pass)' : 'as before the upgrade'}: ${describeChecks(stillFailing)}` : ', no check failing that passed before'}, held ${fmt(lastReady - settled)} without a restart`
      }
  }
  const end = obs.at(-1)
  if (!end) return { kind: 'wait', why: last }
  if (lockUnproven)
    last += `; the lease is still '${p.name}''s but it has no DB session (connections dropped: a DB restart?), waiting for it to reconnect before the lease runs out`
  if (settled === undefined && end.at >= p.readyBy) {
    if (newFailing.length)
      return {
        kind: 'fail',
        reason: `'${p.name}': check${newFailing.length > 1 ? 's' : ''} ${describeChecks(newFailing)} failing after the handoff, passing on the leader before`
      }
    return {
      kind: 'fail',
      reason: `'${p.name}' not ready within ready-timeout${p.readyTimeout ? ` ${p.readyTimeout}` : ''} (${last})`
    }
  }
  if (settled !== undefined && end.at - Math.max(lastKnown ?? settled, settled) > (p.unknownMs ?? 90_000))
    return {
      kind: 'fail',
      reason: `'${p.name}': no counted answer for ${fmt(end.at - (lastKnown ?? settled))} (${last})`
    }
  return { kind: 'wait', why: last }
}
