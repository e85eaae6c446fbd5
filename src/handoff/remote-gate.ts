// The gates of a drain (docs/hosts.md): the lock went to an instance on another host, which
// this runner cannot inspect in Docker. What proves it leads is in the database: the lease names
// its app id and is renewed, its sessions are alive, and its own sessions (not the lock's) do
// work; and, when the operator gives its health URL (input 'remote-health-url'), /readyz 200 there
// through the window. The judgements are pure (as gates.ts); the loop observes.
import type { Context } from '../context.js'
import type { NodeSession } from '../postgres/database.js'
import { formatMs } from '../duration.js'
import { sleep } from '../sleep.js'
import { pollsLock, sameApp } from '../node/lock.js'
import type { ReadyObs } from '../node/observer.js'
import type { Verdict } from './gates.js'
import { GateError, runOf, type NodeLink } from './types.js'

export interface RemoteObs {
  at: number
  /** the lease row: its holder and expiry (ms, by the DB clock), whether it ran out */
  lease?: { clientId: string; expiresAt: number; expired: boolean }
  sessions: NodeSession[]
  /** the remote's /readyz, when its URL is known */
  ready?: ReadyObs
}

interface RemoteProof {
  /** lease renewals seen in the window */
  renewals: number
  /** queries of the node's own sessions (not the lock's) seen start in the window */
  work: number
  readyAt?: number
}

/** A query that is only the lock's: its poll or refresh, the end or start of its transaction, its session setup. */
const lockOnly = (s: NodeSession) => pollsLock(s) || /^\s*(begin|set |$)/i.test(s.query)

/**
 * How many new queries the node's own work started: on the sessions of `appId` that were seen
 * running anything but the lock's queries (the lock session only ever shows its upsert and the
 * transaction's end), each later query_start counts.
 */
function workStarts(obs: RemoteObs[], appId: string): number {
  const work = new Set<number>()
  for (const o of obs) for (const s of o.sessions) if (sameApp(s.appId, appId) && !lockOnly(s)) work.add(s.pid)
  const seen = new Map<number, number>()
  let starts = 0
  for (const o of obs)
    for (const s of o.sessions) {
      if (!work.has(s.pid) || !sameApp(s.appId, appId) || !s.queryStart) continue
      const t = s.queryStart.getTime()
      const prev = seen.get(s.pid)
      if (prev !== undefined && t > prev) starts++
      seen.set(s.pid, t)
    }
  return starts
}

/**
 * Pure: the remote instance `appId` leads and keeps leading for `stableMs` from its first
 * observation: every look shows the lease its own and unexpired and a session of it alive; the
 * lease's expiry moved forward at least twice (renewals); its other sessions started new queries
 * (the node's own work); with a URL, /readyz answered 200 and no later answer said otherwise.
 * Fails at the first look that shows the lease another app's, run out, or no session of it.
 */
export function judgeRemoteLeader(
  obs: RemoteObs[],
  p: { appId: string; stableMs: number; withUrl: boolean; readyBy: number }
): Verdict<RemoteProof> {
  if (!obs.length) return { kind: 'wait', why: 'no look yet' }
  let renewals = 0
  let readyAt: number | undefined
  for (let i = 0; i < obs.length; i++) {
    const o = obs[i]
    if (!o.lease || !sameApp(o.lease.clientId, p.appId))
      return {
        kind: 'fail',
        reason: `the lock left app ${p.appId}: the lease is ${o.lease ? `app ${o.lease.clientId}'s` : 'gone'}`
      }
    if (o.lease.expired) return { kind: 'fail', reason: `the lease of app ${p.appId} ran out unrenewed` }
    if (!o.sessions.some((s) => sameApp(s.appId, p.appId)))
      return { kind: 'fail', reason: `app ${p.appId} has no DB session left: its node exited` }
    const prev = obs[i - 1]?.lease
    if (prev && o.lease.expiresAt > prev.expiresAt) renewals++
    if (p.withUrl && o.ready) {
      if (o.ready.kind === 'ready') readyAt ??= o.at
      else if (o.ready.kind === 'not-ready' && readyAt !== undefined)
        return {
          kind: 'fail',
          reason: `the remote instance's /readyz answered ${o.ready.status ?? o.ready.error} after it was ready`
        }
    }
  }
  const last = obs.at(-1)!
  if (p.withUrl && readyAt === undefined) {
    if (last.at >= p.readyBy)
      return { kind: 'fail', reason: `the remote instance's /readyz did not answer 200 in time` }
    return { kind: 'wait', why: 'not ready yet' }
  }
  const from = readyAt ?? obs[0].at
  const work = workStarts(obs, p.appId)
  if (last.at - from < p.stableMs) return { kind: 'wait', why: 'stable window not over' }
  if (renewals < 2) {
    if (last.at - from >= 3 * p.stableMs)
      return { kind: 'fail', reason: `the lease of app ${p.appId} was renewed ${renewals} time(s) in the window` }
    return { kind: 'wait', why: 'fewer than two lease renewals seen' }
  }
  if (work === 0) {
    if (last.at - from >= 3 * p.stableMs)
      return {
        kind: 'fail',
        reason: `app ${p.appId} holds the lease but its own sessions ran no query in ${formatMs(last.at - from)}: it does not work`
      }
    return { kind: 'wait', why: 'no work of the node seen yet' }
  }
  return {
    kind: 'pass',
    proved: { renewals, work, readyAt },
    detail: `app ${p.appId} held the lease for ${formatMs(last.at - from)}: ${renewals} renewals, ${work} queries of its own sessions${readyAt !== undefined ? ', /readyz 200 at its URL throughout' : ''}`
  }
}

/** Observes the remote leader until the judgement passes or fails (a GateError). */
export async function remoteLeaderGate(
  ctx: Context,
  link: NodeLink,
  appId: string,
  stableMs: number,
  readyMs: number,
  url?: string
): Promise<RemoteProof> {
  const start = Date.now()
  const observer = url ? runOf(link).observers.of(url) : undefined
  const unwatch = observer?.watch()
  const obs: RemoteObs[] = []
  try {
    for (;;) {
      const rows = await link.db.query<{ client_id: string; ms: number; expired: boolean }>(
        `SELECT client_id::text, (EXTRACT(EPOCH FROM expires_at) * 1000)::float8 AS ms, expires_at < NOW() AS expired FROM lease_lock`
      )
      const r = observer?.latest
      obs.push({
        at: Date.now(),
        lease: rows[0] && { clientId: rows[0].client_id, expiresAt: rows[0].ms, expired: rows[0].expired },
        sessions: await link.db.nodeSessions(),
        ready: r && r.at >= start ? r : undefined
      })
      const v = judgeRemoteLeader(obs, { appId, stableMs, withUrl: !!url, readyBy: start + readyMs })
      if (v.kind === 'pass') {
        ctx.report.gate('health', true, v.detail)
        return v.proved
      }
      if (v.kind === 'fail') {
        ctx.report.gate('health', false, v.reason)
        throw new GateError('health', v.reason)
      }
      await sleep(250, ctx.signal)
    }
  } finally {
    await unwatch?.()
  }
}
