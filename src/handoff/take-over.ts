// The lock handoff, step by step (docs/algorithm.md steps 3-6): start a standby from the leader's own
// config, prove it waits for the lock, stop the leader gracefully, prove the standby took the
// lock and nobody else holds it, and hold it to the health gate. Each step proves itself.
import { aimDelay, LEASE_POLL_JITTER } from './aim.js'
import type { Context } from '../context.js'
import { sleep } from '../sleep.js'
import { formatMs } from '../duration.js'
import { awaitSession, healthGate, lockTaken } from './gate-loops.js'
import { GateError, runOf, type Member, type NodeLink, type Timeouts } from './types.js'
import { readLockState } from '../node/lock.js'
import { healthBase, networkView } from '../node/health-url.js'
import { ReadinessWatcher } from './watch.js'

/** Whether the stop was aimed at the standby's next lock poll, and when not, why. */
type Aim = { engaged: true; waitedMs: number } | { engaged: false; why: string }

function describeAim(a: Aim): string {
  return a.engaged ? `aimed (held ${a.waitedMs} ms)` : `not aimed: ${a.why}`
}

/**
 * A waiting standby polls the lock every refresh interval (+/-10% jitter); a release that lands
 * just after a poll waits out almost a whole interval. Its polls are visible as its lock
 * session's query_start, so send the stop to land before the earliest next poll, timed from the
 * poll itself: the query also returns how long ago it ran by the DB server's own clock (the
 * runner's clock is never compared with the server's). Between polls the session's last query
 * is the transaction's end, which the node's driver sends in lower case (`commit`): matched in
 * any case. A poll already too old to aim at is let pass for the next. Bounded to two intervals.
 */
export async function aimStop(ctx: Context, link: NodeLink, to: { appId?: string }, deltaMs: number): Promise<Aim> {
  if (link.mode === 'advisorylock') return { engaged: false, why: 'advisory lock mode: no lease polls to aim at' }
  if (!to.appId) return { engaged: false, why: "the standby's app id is not known" }
  const interval = link.config.leaseRefreshMs
  const delayAt = (age: number) =>
    aimDelay({ pollAgeMs: age, intervalMs: interval, jitter: LEASE_POLL_JITTER, stopLatencyMs: deltaMs })
  /** The age of the standby's last poll as of now, or undefined when none is visible. */
  const pollAge = async () => {
    const sent = Date.now()
    const rows = await link.db.query<{ age_ms: number | null }>(
      `SELECT (EXTRACT(EPOCH FROM clock_timestamp() - max(query_start)) * 1000)::float8 AS age_ms FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE $1 AND (query ILIKE '%lease_lock%' OR lower(btrim(query, E' \\t\\n;')) IN ('commit', 'rollback', 'end'))`,
      [`%|App|${to.appId}%`]
    )
    const age = rows[0]?.age_ms
    // measured from the send: the age reads a little old, so the stop goes a little early
    return age === null || age === undefined ? undefined : age + (Date.now() - sent)
  }
  const first = await pollAge()
  if (first === undefined)
    return {
      engaged: false,
      why: "no lease poll of the standby visible in pg_stat_activity (a role that cannot read other sessions' queries?)"
    }
  if (delayAt(0) === undefined)
    return {
      engaged: false,
      why: `the last release took ${formatMs(deltaMs)}, too long to land between polls ${formatMs(interval)} apart`
    }
  const start = Date.now()
  let age: number | undefined = first
  while (Date.now() - start < 2 * interval) {
    const delay = age === undefined ? undefined : delayAt(age)
    if (delay !== undefined) {
      await sleep(delay, ctx.signal)
      return { engaged: true, waitedMs: Date.now() - start }
    }
    await sleep(10, ctx.signal)
    age = await pollAge()
  }
  return { engaged: false, why: `the standby's lease poll did not move within ${formatMs(2 * interval)}` }
}

/** Notes when the leader's lease release lands (expires_at no longer in the future). */
function watchRelease(
  link: NodeLink,
  from: Member,
  elapsed: () => number
): { done: () => Promise<number | undefined> } {
  if (link.mode === 'advisorylock' || !from.appId) return { done: async () => undefined }
  let stop = false
  let at: number | undefined
  const loop = (async () => {
    while (!stop && at === undefined) {
      try {
        const r = await link.db.query<{ released: boolean }>(
          `SELECT expires_at <= NOW() AS released FROM lease_lock WHERE client_id = $1`,
          [from.appId]
        )
        if (!r.length || r[0].released) at = elapsed()
      } catch {
        return
      }
      await new Promise((res) => setTimeout(res, 10))
    }
  })()
  return {
    done: async () => {
      stop = true
      await loop
      return at
    }
  }
}

interface HandoffResult {
  stop: 'graceful' | 'killed' | 'already stopped'
  lockTakenMs: number
  gapMs?: number
  stopMs: number
  aim: Aim
  /** the new leader, with the app id its session proved */
  leader: Member & { appId: string }
}

/**
 * Stops `from` gracefully (SIGTERM, then SIGKILL after the stop timeout), then proves `to`
 * holds the lock alone and passes the health gate. Returns the measured leader gap.
 * `swap`: `to` is created but not started (it needs `from`'s ports): after the stop,
 * `swap.prepare()` runs (renames), then `to` starts and takes the lock at once.
 */
export async function handoff(
  ctx: Context,
  link: NodeLink,
  from: Member,
  to: Member,
  t: Timeouts,
  swap?: { prepare: () => Promise<void> }
): Promise<HandoffResult> {
  const { docker, report } = ctx
  const run = runOf(link)
  const fromUrl = healthBase(await networkView(docker, from.info), link.config.httpPort, link.healthUrl)
  // The gap is measured from the old node's last ready answer to the new one's first: poll
  // fast from here to the new node's first ready answer, slowly before and after.
  const endFast = run.observers.fast()
  const oldWatch = fromUrl ? new ReadinessWatcher(run.observers.of(fromUrl)).start() : undefined
  let newWatch: ReadinessWatcher | undefined
  let toUrl: string | undefined
  const watchNew = async () => {
    toUrl = healthBase(await networkView(docker, (await docker.inspect(to.id))!), link.config.httpPort, link.healthUrl)
    if (!toUrl) throw new GateError('health', `cannot address '${to.name}' from the host (no IP address)`, to.id)
    newWatch = new ReadinessWatcher(run.observers.of(toUrl)).start()
  }
  try {
    if (!swap) await watchNew()
    // the gap starts at the old node's last ready answer: have one before the stop (bounded; the
    // old node still serves meanwhile)
    await oldWatch?.readySeen(2000)
    const aim: Aim = swap
      ? { engaged: false, why: 'swap: the new node starts after the stop' }
      : await aimStop(ctx, link, to, run.aimDeltaMs)
    // names as they are now: a swap renames both containers after the stop
    const fromName = from.name
    report.step(
      swap ? `swap ${fromName} -> its replacement on the same ports` : `handoff ${fromName} -> ${to.name}`,
      `docker stop with ${t.stopS} s timeout; ${aim.engaged ? `held ${aim.waitedMs} ms to land the release just before the standby's next lock poll` : `stop not aimed (${aim.why})`}`
    )
    const t0 = Date.now()
    const release = watchRelease(link, from, () => Date.now() - t0)
    await docker.stop(from.id, t.stopS)
    const stopMs = Date.now() - t0
    const releasedMs = await release.done()
    if (releasedMs !== undefined) run.aimDeltaMs = releasedMs
    const after = await docker.inspect(from.id)
    // docker stop SIGKILLs after the timeout: exit 137 without OOM means the node ignored SIGTERM.
    const killed = after?.State.ExitCode === 137 && !after.State.OOMKilled
    report.step(
      `${fromName} stopped`,
      `${killed ? 'killed after ignoring SIGTERM for' : 'exited gracefully in'} ${formatMs(stopMs)} (exit ${after?.State.ExitCode})${releasedMs !== undefined ? `; lease released ${formatMs(releasedMs)} after the stop signal` : ''}`
    )
    if (killed)
      report.note(
        `'${fromName}' ignored SIGTERM for ${t.stopS} s and was killed; its lease was not released, so '${to.name}' waited for it to expire.`
      )
    let proven = to.appId
    let version = to.version
    // the lock wait is timed from the moment `to` can take it: a swap's prepare may take long (a
    // downgrade's `db rollback` runs there, src/rollout/single.ts), and is added to the bound
    let prepareMs = 0
    if (swap) {
      await swap.prepare()
      const known = new Set((await link.db.nodeSessions()).map((x) => x.appId))
      prepareMs = Math.max(0, Date.now() - (t0 + stopMs))
      await docker.start(to.id)
      await watchNew()
      const s = await awaitSession(ctx, link, to, known, t.standbyMs)
      proven = s.appId
      version = s.version
    }
    if (!proven) throw new GateError('lock-handoff', `'${to.name}' has no known DB session`, to.id)
    const leader = { ...to, appId: proven, version }
    const lockMs = await lockTaken(ctx, link, from, leader, t.lockMs + prepareMs, t0 + stopMs)
    await oldWatch?.stop()
    await healthGate(ctx, link, leader, t, { onReady: endFast })
    // With host networking both nodes answer on one URL: a ready answer before the old node
    // exited is the old one's, after it the new one's.
    const stoppedAt = t0 + stopMs
    const sameUrl = fromUrl === toUrl
    const lastOld = oldWatch?.lastReadyBefore(sameUrl ? stoppedAt : Infinity)
    const firstNew = newWatch?.firstReadyAfter(sameUrl ? stoppedAt : 0)
    const gapMs = firstNew !== undefined && lastOld !== undefined ? firstNew - lastOld : undefined
    const res: HandoffResult = { stop: killed ? 'killed' : 'graceful', lockTakenMs: lockMs, gapMs, stopMs, aim, leader }
    report.handoffs.push({
      from: fromName,
      to: swap ? `${to.name} (new container)` : to.name,
      stop: res.stop,
      lockTakenMs: lockMs,
      gapMs,
      note: describeAim(aim)
    })
    return res
  } finally {
    endFast()
    await oldWatch?.stop()
    await newWatch?.stop()
  }
}

/**
 * Starts a stopped container and proves it becomes the leader with the same gates as a
 * handoff: a new DB session from it, the lock its own (lock-handoff), then the health gate.
 * A node whose start-up failed after taking the lease did not release it: the lock wait
 * expects that lease to stay held up to the lease duration after its last refresh.
 */
export async function takeOver(
  ctx: Context,
  link: NodeLink,
  m: Member,
  t: Timeouts,
  gate: { anyCheck?: string } = {}
): Promise<Member & { appId: string }> {
  const { report } = ctx
  const lock0 = await readLockState(link.db, link.mode, link.config.advisoryLockId)
  const before = new Set(lock0.sessions.map((s) => s.appId))
  const lease = lock0.lease
  const orphan = lease && !lease.expired && !lock0.sessions.some((s) => s.appId === lease.clientId)
  let lockMs = t.lockMs
  let expect: string | undefined
  if (orphan) {
    const leftMs = Math.max(0, lease.expiresAt.getTime() - Date.now())
    lockMs = Math.max(lockMs, leftMs + 2 * link.config.leaseRefreshMs + 2000)
    expect = `the lease of app ${lease.clientId} was still held by a node that exited without releasing it (a start-up that fails after taking the lease keeps it until it runs out)`
    report.note(
      `The lease is still held by app ${lease.clientId}, whose node exited without releasing it (a start-up that fails after taking the lease does not release it): '${m.name}' takes the lock when it runs out, up to ${formatMs(link.config.leaseDurationMs)} after its last refresh (about ${formatMs(leftMs)} from now).`
    )
  }
  const t0 = Date.now()
  await ctx.docker.start(m.id)
  const s = await awaitSession(ctx, link, m, before, t.standbyMs)
  const member = { ...m, appId: s.appId, version: s.version }
  const taken = await lockTaken(ctx, link, undefined, member, lockMs, t0, expect)
  await healthGate(ctx, link, member, t, gate)
  report.handoffs.push({
    from: orphan ? `(lease of app ${lease.clientId.slice(0, 8)}, not released)` : '(none)',
    to: m.name,
    stop: 'start',
    lockTakenMs: taken,
    note: orphan ? 'waited for an unreleased lease to run out' : undefined
  })
  return member
}
