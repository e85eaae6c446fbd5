// The gates against the live node: each loop observes (Docker, the lock in the DB, the run's
// HTTP observer), hands every observation made so far to its pure judgement (gates.ts) and
// ends on pass (returning what was proven) or fail (a GateError). Only the observer sends
// HTTP requests, within the run's budget.
import type { Context } from '../context.js'
import { sleep } from '../sleep.js'
import { describePgError, isConnectionError, type DbApi, type NodeSession } from '../postgres/database.js'
import type { ContainerInfo } from '../docker/client.js'
import { formatMs } from '../duration.js'
import {
  judgeHealth,
  judgeLockTaken,
  judgeSession,
  judgeStandby,
  type ContainerObs,
  type HealthObs,
  type HealthProof,
  type LockObs,
  type Proven,
  type Verdict
} from './gates.js'
import { GateError, modeOf, runOf, type Member, type NodeLink, type Timeouts } from './types.js'
import { describeChecks } from '../node/health.js'
import { readLockState } from '../node/lock.js'
import { healthBase, networkView } from '../node/health-url.js'
import { dbClockAheadMs, sessionContainerOf } from '../node/session-container.js'
import { newSessionsOf as sessionsOfNew } from '../node/sessions.js'

/** A container as the gates see it. */
function containerObs(info: ContainerInfo | undefined): ContainerObs | undefined {
  if (!info) return undefined
  const h = info.State.Health as { Status?: string; Log?: Array<{ Start?: string; Output?: string }> } | undefined
  const lastLog = h?.Log?.at(-1)
  const lastCheckAt = lastLog?.Start ? Date.parse(lastLog.Start) : undefined
  return {
    running: info.State.Running,
    restarting: info.State.Restarting,
    status: info.State.Status,
    exitCode: info.State.ExitCode,
    restartCount: info.RestartCount,
    startedAt: info.State.StartedAt,
    health: h?.Status
      ? {
          status: h.Status,
          lastCheckAt: Number.isFinite(lastCheckAt) ? lastCheckAt : undefined,
          lastOutput: lastLog?.Output
        }
      : undefined
  }
}

/**
 * The node sessions a container opened that are not among `known` (read before it started):
 * by app id and start time, never requiring an address (src/node/sessions.ts).
 */
function newSessionsOf(info: ContainerInfo, sessions: NodeSession[], known: Set<string>, db?: DbApi): NodeSession[] {
  const ahead = db && dbClockAheadMs(db)
  // without a measured clock offset the start time cannot be compared: `known` alone decides
  return sessionsOfNew(
    sessionContainerOf(info),
    sessions,
    known,
    ahead ?? 0,
    ahead === undefined ? Infinity : undefined
  )
}

async function lockObs(link: NodeLink, mode = link.mode): Promise<LockObs> {
  const l = await readLockState(link.db, mode, link.config.advisoryLockId)
  // the lease row too: a lease still the node's whose sessions dropped is a DB blip (gates.ts)
  const lease = l.lease && { clientId: l.lease.clientId, expired: l.lease.expired }
  return { holder: l.holder, problem: l.problem, sessions: l.sessions, ...(lease ? { lease } : {}) }
}

/**
 * The lock as the health gate reads it through a DB outage. Each query already waits 30 s for a
 * lost connection to come back (src/postgres/database.ts); a DB still unreachable once the lease
 * could have run out since this look began (its duration plus two refreshes: the node cannot
 * have renewed it, docs/node-facts.md §3) fails the gate, naming the outage instead of the
 * driver's error. A shorter outage is a blip: the look is made again.
 */
async function lockThroughOutage(
  ctx: Context,
  link: NodeLink,
  mode: NodeLink['mode'],
  to: { name: string; id: string }
): Promise<LockObs> {
  const since = Date.now()
  const leaseMs = link.config.leaseDurationMs
  const bound = leaseMs + 2 * link.config.leaseRefreshMs
  for (;;) {
    try {
      return await lockObs(link, mode)
    } catch (e) {
      if (!isConnectionError(e)) throw e
      const down = Date.now() - since
      if (down >= bound)
        throw new GateError(
          'health',
          `the node's database did not answer for ${formatMs(down)} (${describePgError(e)}), longer than the lease (${formatMs(leaseMs)}): '${to.name}' cannot have kept its lock through the stable-for window`,
          to.id
        )
      await sleep(500, ctx.signal)
    }
  }
}

/**
 * One look at the lock, then at the container, in that order. A runner paused between the two
 * (fault-real row "dockerd SIGKILL + start at health gate, between two calls") meets a daemon
 * restart in between: read first, the container looked running as it was before the restart,
 * and the lock it had released in the daemon's stop then read as lost, which is the image's
 * fault. Read after the lock, the container shows what the restart did to it (stopped, exit 0;
 * or started again), which the judgement knows to be the host's.
 */
export async function lockThenContainer<L, C>(
  readLock: () => Promise<L>,
  inspect: () => Promise<C>
): Promise<{ lock: L; container: C }> {
  const lock = await readLock()
  return { lock, container: await inspect() }
}

/** Observes every `everyMs` until the judgement passes (its proof) or fails (a GateError). */
async function runGate<O extends { at: number }, T>(
  ctx: Context,
  gate: string,
  containerId: string,
  observe: () => Promise<O>,
  judge: (obs: O[]) => Verdict<T>,
  everyMs: number
): Promise<{ proved: T; detail: string }> {
  const obs: O[] = []
  for (;;) {
    obs.push(await observe())
    const v = judge(obs)
    if (v.kind === 'pass') return v
    if (v.kind === 'fail') throw new GateError(gate, v.reason, containerId, v.lockMovedTo, v.hostFault)
    await sleep(everyMs, ctx.signal)
  }
}

/**
 * Standby-ready gate: the container is running (not restarting, not exited), it has a DB
 * session of its own, and the lock is still the leader's: it is waiting for the lock.
 * Returns the standby's app id and version.
 */
export async function standbyReady(
  ctx: Context,
  link: NodeLink,
  standby: Member,
  leaderAppId: string,
  knownAppIds: Set<string>,
  timeoutMs: number
): Promise<Proven> {
  const deadline = Date.now() + timeoutMs
  const v = await runGate(
    ctx,
    'standby-ready',
    standby.id,
    async () => {
      const info = await ctx.docker.inspect(standby.id)
      const lock = await lockObs(link)
      return {
        at: Date.now(),
        container: containerObs(info),
        lock,
        mine: info ? newSessionsOf(info, lock.sessions, knownAppIds, link.db) : []
      }
    },
    (obs) => judgeStandby(obs, { name: standby.name, leaderAppId, deadline, within: `within ${formatMs(timeoutMs)}` }),
    200
  )
  ctx.report.gate('standby-ready', true, v.detail)
  return v.proved
}

/** Waits for a DB session of a container's node process that is not among `known`; returns its app id. */
export async function awaitSession(
  ctx: Context,
  link: NodeLink,
  m: Member,
  known: Set<string>,
  timeoutMs: number
): Promise<Proven> {
  const deadline = Date.now() + timeoutMs
  const v = await runGate(
    ctx,
    'lock-handoff',
    m.id,
    async () => {
      const info = await ctx.docker.inspect(m.id)
      const mine = info?.State.Running ? newSessionsOf(info, await link.db.nodeSessions(), known, link.db) : []
      return { at: Date.now(), container: containerObs(info), mine }
    },
    (obs) => judgeSession(obs, { name: m.name, deadline }),
    50
  )
  return v.proved
}

/**
 * Lock-handoff check: the lock belongs to `to`'s app id and nobody else; `from`'s session is
 * gone. Without `from` (a stopped container started again) it times from `since`. Returns how
 * long after `since` the lock was seen taken.
 */
export async function lockTaken(
  ctx: Context,
  link: NodeLink,
  from: { name: string; appId?: string } | undefined,
  to: Member & { appId: string },
  timeoutMs: number,
  since: number,
  expect?: string
): Promise<number> {
  const mode = modeOf(link, to)
  // at least one look, however late this starts
  const deadline = Math.max(since + timeoutMs, Date.now())
  const v = await runGate(
    ctx,
    'lock-handoff',
    to.id,
    async () => ({
      at: Date.now(),
      lock: await lockObs(link, mode),
      container: containerObs(await ctx.docker.inspect(to.id))
    }),
    (obs) => judgeLockTaken(obs, { name: to.name, appId: to.appId, mode, from, since, deadline, expect }),
    100
  )
  ctx.report.gate('lock-handoff', true, v.detail)
  return v.proved.ms
}

/**
 * Health gate: plain /readyz 200 and no /health check failing that passed on the leader before
 * the upgrade, held for `stable-for` with no restart and the lock still its own; Docker's
 * HEALTHCHECK is not waited for, but `unhealthy` from a check made while ready fails it.
 * Reads the run's observer of the container's URL (within the request budget); `onReady` is
 * called at the first ready answer (the end of the fast polling around a handoff).
 */
export async function healthGate(
  ctx: Context,
  link: NodeLink,
  to: Member & { appId?: string },
  t: Timeouts,
  opts: {
    onReady?: () => void
    /** why any failing /health check is let pass (the only version the DB can run): reported, not judged */
    anyCheck?: string
  } = {}
): Promise<HealthProof> {
  const run = runOf(link)
  const start = Date.now()
  const info0 = await ctx.docker.inspect(to.id)
  if (!info0) throw new GateError('health', `'${to.name}' is gone`, to.id)
  const url = healthBase(await networkView(ctx.docker, info0), link.config.httpPort, link.healthUrl)
  if (!url) throw new GateError('health', `cannot address '${to.name}' from the host (no IP address)`, to.id)
  if (!to.appId) throw new GateError('health', `'${to.name}' has no known DB session`, to.id)
  const observer = run.observers.of(url)
  const unwatch = observer.watch({ health: true })
  const mode = modeOf(link, to)
  try {
    const v = await runGate<HealthObs, HealthProof>(
      ctx,
      'health',
      to.id,
      async () => {
        const { lock, container } = await lockThenContainer(
          () => lockThroughOutage(ctx, link, mode, to),
          async () => containerObs(await ctx.docker.inspect(to.id))
        )
        // only answers given since the gate opened: with host networking the URL answered for
        // the old node before it stopped
        const r = observer.latest
        const k = observer.checks
        const o: HealthObs = {
          at: Date.now(),
          container,
          lock,
          ready: r && r.at >= start ? r : undefined,
          checks: k && k.at >= start ? k : undefined
        }
        if (o.ready?.kind === 'ready') opts.onReady?.()
        return o
      },
      (obs) =>
        judgeHealth(obs, {
          name: to.name,
          appId: to.appId!,
          restarts0: info0.RestartCount,
          startedAt0: info0.State.StartedAt,
          before: opts.anyCheck ? undefined : run.failingBefore,
          anyCheck: !!opts.anyCheck,
          stableMs: t.stableMs,
          readyBy: start + t.readyMs,
          readyTimeout: formatMs(t.readyMs)
        }),
      250
    )
    ctx.report.gate('health', true, `${v.detail} (ready ${formatMs(v.proved.readyAt - start)} after the gate opened)`)
    if (v.proved.stillFailing.length)
      ctx.report.note(
        opts.anyCheck
          ? `'${to.name}' serves with ${describeChecks(v.proved.stillFailing)} failing, let pass: ${opts.anyCheck}.`
          : `'${to.name}' passed with ${describeChecks(v.proved.stillFailing)} failing, as on the leader before the change.`
      )
    return v.proved
  } finally {
    await unwatch()
  }
}

/** The last lines of a container that failed a gate go to the report (not of the one a gate named as someone else). */
export async function failedContainerLogs(ctx: Context, m: Member, e?: unknown): Promise<void> {
  if (e instanceof GateError && e.containerId && e.containerId !== m.id) return
  const text = await ctx.docker.logs(m.id, 40)
  if (text.trim()) ctx.report.logs.push({ container: m.name, text })
}
