// The lock handoff, step by step (design.md steps 2-6): start a standby from the leader's own
// config, prove it waits for the lock, stop the leader gracefully, prove the standby took the
// lock and nobody else holds it, and hold it to the health gate. Each step proves itself.
import type { Context } from './context.js'
import { OperationError, sleep } from './context.js'
import type { Database, NodeSession } from './database.js'
import { cloneSpec, publishedPorts, remapPorts, type PortBindings } from './container-spec.js'
import { containerIps, containerName, freePort, type ContainerInfo } from './docker.js'
import { formatMs } from './duration.js'
import { isReady, probe } from './health.js'
import { readLockState, sameApp } from './lock.js'
import type { NodeConfig, LockMode } from './node-config.js'
import { healthBase } from './node.js'
import { ReadinessWatcher } from './watch.js'

export const LABEL_RUN = 'io.chainlink-rollout.run'
export const LABEL_ROLE = 'io.chainlink-rollout.role'

/** What a handoff needs to know about the node and its database. */
export interface NodeLink {
  db: Database
  /** for a restore during rollback */
  databaseUrl?: string
  config: NodeConfig
  mode: LockMode
}

export interface Member {
  id: string
  name: string
  info: ContainerInfo
  appId?: string
  /** node version from its DB session */
  version?: string
}

/**
 * The lock a node of `version` takes: v2 knows only the lease (a v1 `dual` or `advisorylock`
 * setting maps to lease there), so a v1 -> v2 upgrade changes what the new leader holds.
 */
export function modeOf(link: NodeLink, m: Member): LockMode {
  const major = m.version ? parseInt(m.version, 10) : NaN
  if (major >= 2 && (link.mode === 'dual' || link.mode === 'advisorylock')) return 'lease'
  return link.mode
}

export class GateError extends OperationError {
  constructor(
    readonly gate: string,
    message: string,
    readonly containerId?: string
  ) {
    super(message)
  }
}

export interface Timeouts {
  stopS: number
  standbyMs: number
  readyMs: number
  stableMs: number
  lockMs: number
}

/** Timeouts from the inputs, else derived from the node's own lease and grace settings. */
export function timeouts(ctx: Context, cfg: NodeConfig, leader?: ContainerInfo): Timeouts {
  const i = ctx.inputs
  const containerStop = (leader?.Config as { StopTimeout?: number } | undefined)?.StopTimeout
  const stopMs = i.stopTimeoutMs ?? Math.max((containerStop ?? 10) * 1000, cfg.shutdownGraceMs + 5000)
  return {
    stopS: Math.ceil(stopMs / 1000),
    standbyMs: i.standbyTimeoutMs ?? 30_000 + 3 * cfg.leaseRefreshMs,
    readyMs: i.readyTimeoutMs,
    stableMs: i.stableForMs,
    // a killed leader's lease runs out one duration after its last refresh; the standby sees
    // it at its next poll (+10% jitter)
    lockMs: cfg.leaseDurationMs + 2 * Math.max(cfg.leaseRefreshMs, cfg.advisoryCheckMs) + 2000
  }
}

/** Creates and starts a container from `from`'s config with another image (and maybe ports). */
export async function startClone(
  ctx: Context,
  from: ContainerInfo,
  opts: {
    image: string
    name: string
    ports: 'remap' | 'keep'
    runId: string
    role: string
    start?: boolean
    /** told the container as soon as it exists, before it starts (a failed start leaves it) */
    onCreated?: (m: Member) => void
  }
): Promise<Member> {
  const { docker } = ctx
  const oldImage = await docker.imageInfo(from.Image)
  let portBindings: PortBindings | undefined
  if (opts.ports === 'remap') {
    const published = publishedPorts(from)
    if (Object.keys(published).length) portBindings = await remapPorts(published, freePort)
  }
  const spec = cloneSpec(from, {
    name: opts.name,
    image: opts.image,
    portBindings,
    oldImageConfig: oldImage?.config,
    extraLabels: { [LABEL_RUN]: opts.runId, [LABEL_ROLE]: opts.role },
    keepAddress: opts.ports === 'keep'
  })
  // Engines before API 1.44 take one endpoint at create: the rest are connected before start.
  const endpoints = spec.NetworkingConfig?.EndpointsConfig ?? {}
  const primaryNet = from.HostConfig.NetworkMode ?? 'default'
  const later = Object.entries(endpoints).filter(([n]) => n !== primaryNet && Object.keys(endpoints).length > 1)
  if (later.length)
    spec.NetworkingConfig = {
      EndpointsConfig: Object.fromEntries(Object.entries(endpoints).filter(([n]) => !later.some(([l]) => l === n)))
    }
  const id = await docker.create(spec)
  opts.onCreated?.({ id, name: opts.name, info: (await docker.inspect(id))! })
  for (const [net, ep] of later) await docker.api.getNetwork(net).connect({ Container: id, EndpointConfig: ep })
  if (opts.start !== false) await docker.start(id)
  const info = (await docker.inspect(id))!
  return { id, name: opts.name, info }
}

export function describePorts(info: ContainerInfo): string {
  const pb = publishedPorts(info)
  const parts = Object.entries(pb).flatMap(([p, binds]) =>
    (binds ?? []).map((b) => `${b.HostIp || '0.0.0.0'}:${b.HostPort}->${p}`)
  )
  return parts.length
    ? parts.join(', ')
    : info.HostConfig.NetworkMode === 'host'
      ? 'host network'
      : 'no published ports'
}

/**
 * The node sessions a container opened that are not among `known`: by its addresses on its
 * networks, or any new one with host networking (every client then comes from the host).
 */
export function newSessionsOf(info: ContainerInfo, sessions: NodeSession[], known: Set<string>): NodeSession[] {
  const ips = containerIps(info)
  return sessions.filter(
    (s) => !known.has(s.appId) && (ips.length === 0 || (s.clientAddr !== null && ips.includes(s.clientAddr)))
  )
}

/**
 * Standby-ready gate: the container is running (not restarting, not exited), it has a DB
 * session of its own, and the lock is still the leader's: it is waiting for the lock.
 */
export async function standbyReady(
  ctx: Context,
  link: NodeLink,
  standby: Member,
  leaderAppId: string,
  knownAppIds: Set<string>,
  timeoutMs: number
): Promise<NodeSession> {
  const end = Date.now() + timeoutMs
  let lastWhy = 'no DB session yet'
  while (Date.now() < end) {
    const info = await ctx.docker.inspect(standby.id)
    if (!info) throw new GateError('standby-ready', `standby '${standby.name}' disappeared`, standby.id)
    if (!info.State.Running || info.State.Restarting)
      throw new GateError(
        'standby-ready',
        `standby '${standby.name}' is not running (${info.State.Status}, exit code ${info.State.ExitCode}) before taking the lock`,
        standby.id
      )
    if (info.RestartCount > 0)
      throw new GateError(
        'standby-ready',
        `standby '${standby.name}' restarted ${info.RestartCount} time(s)`,
        standby.id
      )
    const lock = await readLockState(link.db, link.mode, link.config.advisoryLockId)
    const mine = newSessionsOf(info, lock.sessions, knownAppIds)
    if (lock.holder && !sameApp(lock.holder, leaderAppId))
      throw new GateError('standby-ready', `the lock moved to app ${lock.holder} before the handoff`, standby.id)
    if (mine.length) {
      if (sameApp(lock.holder, leaderAppId)) {
        standby.appId = mine[0].appId
        standby.version = mine[0].version
        ctx.report.gate(
          'standby-ready',
          true,
          `'${standby.name}' running, DB session of version ${mine[0].version} (app ${mine[0].appId}), waiting: the lock is still the leader's`
        )
        return mine[0]
      }
      lastWhy = lock.problem ?? 'lock state unclear'
    }
    await sleep(200, ctx.signal)
  }
  throw new GateError(
    'standby-ready',
    `standby '${standby.name}' did not open a DB session and wait for the lock within ${formatMs(timeoutMs)} (${lastWhy})`,
    standby.id
  )
}

/**
 * How long after SIGTERM the last leader released the lease, as measured: the estimate for
 * aiming the next stop (the first one assumes a prompt release).
 */
let aimDeltaMs = 100

/**
 * A waiting standby polls the lock every refresh interval (+/-10% jitter); a release that lands
 * just after a poll waits out almost a whole interval. Its polls are visible as its lock
 * session's query_start, so wait for one and send the stop to land before the earliest next
 * poll. Bounded to two intervals; skipped when the standby's polls cannot be seen.
 */
async function aimStop(
  ctx: Context,
  link: NodeLink,
  to: Member,
  deltaMs: number
): Promise<{ waitedMs: number } | undefined> {
  if (link.mode === 'advisorylock' || !to.appId) return undefined
  const interval = link.config.leaseRefreshMs
  const pollsOf = async () => {
    const rows = await link.db.query<{ qs: Date | null }>(
      `SELECT max(query_start) AS qs FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE $1 AND (query ILIKE '%lease_lock%' OR query IN ('COMMIT', 'ROLLBACK'))`,
      [`%|App|${to.appId}%`]
    )
    return rows[0]?.qs?.getTime()
  }
  const first = await pollsOf()
  if (first === undefined) return undefined
  const start = Date.now()
  while (Date.now() - start < 2 * interval) {
    await sleep(10, ctx.signal)
    const cur = await pollsOf()
    if (cur !== undefined && cur !== first) {
      // seen within ~10 ms of the poll; the next one comes at 0.9-1.1 intervals from it
      const target = Date.now() + Math.max(0, 0.9 * interval - deltaMs - 40)
      await sleep(target - Date.now(), ctx.signal)
      return { waitedMs: Date.now() - start }
    }
  }
  return undefined
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

export interface HandoffResult {
  stop: 'graceful' | 'killed' | 'already stopped'
  lockTakenMs: number
  gapMs?: number
  stopMs: number
}

/** Waits for a DB session of a container's node process that is not among `known`. */
export async function awaitSession(
  ctx: Context,
  link: NodeLink,
  m: Member,
  known: Set<string>,
  timeoutMs: number
): Promise<NodeSession> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    const cur = await ctx.docker.inspect(m.id)
    if (!cur?.State.Running)
      throw new GateError(
        'lock-handoff',
        `'${m.name}' exited (code ${cur?.State.ExitCode}) before opening its DB session`,
        m.id
      )
    const s = newSessionsOf(cur, await link.db.nodeSessions(), known)[0]
    if (s) {
      m.appId = s.appId
      m.version = s.version
      m.info = cur
      return s
    }
    await sleep(50, ctx.signal)
  }
  throw new GateError('lock-handoff', `'${m.name}' opened no DB session within ${formatMs(timeoutMs)}`, m.id)
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
  const fromUrl = healthBase(
    from.info,
    link.config.httpPort,
    from.name === ctx.inputs.container ? ctx.inputs.healthUrl : undefined
  )
  const oldWatch = fromUrl ? new ReadinessWatcher(fromUrl).start() : undefined
  let newWatch: ReadinessWatcher | undefined
  let toUrl: string | undefined
  const watchNew = async () => {
    toUrl = healthBase((await docker.inspect(to.id))!, link.config.httpPort)
    if (!toUrl) throw new GateError('health', `cannot address '${to.name}' from the host (no IP address)`, to.id)
    newWatch = new ReadinessWatcher(toUrl).start()
  }
  try {
    if (!swap) await watchNew()
    const aim = swap ? undefined : await aimStop(ctx, link, to, aimDeltaMs)
    // names as they are now: a swap renames both containers after the stop
    const fromName = from.name
    report.step(
      swap ? `swap ${fromName} -> its replacement on the same ports` : `handoff ${fromName} -> ${to.name}`,
      `docker stop with ${t.stopS} s timeout${aim ? `, held ${aim.waitedMs} ms to land the release just before the standby's next lock poll` : ''}`
    )
    const t0 = Date.now()
    const release = watchRelease(link, from, () => Date.now() - t0)
    await docker.stop(from.id, t.stopS)
    const stopMs = Date.now() - t0
    const releasedMs = await release.done()
    if (releasedMs !== undefined) aimDeltaMs = releasedMs
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
    if (swap) {
      await swap.prepare()
      const known = new Set((await link.db.nodeSessions()).map((x) => x.appId))
      await docker.start(to.id)
      await watchNew()
      await awaitSession(ctx, link, to, known, t.standbyMs)
    }
    const lockMs = await lockTaken(ctx, link, from, to, t.lockMs, t0 + stopMs)
    await oldWatch?.stop()
    await healthGate(ctx, link, to, t)
    // With host networking both nodes answer on one URL: a ready answer before the old node
    // exited is the old one's, after it the new one's.
    const stoppedAt = t0 + stopMs
    const sameUrl = fromUrl === toUrl
    const lastOld = oldWatch?.lastReadyBefore(sameUrl ? stoppedAt : Infinity)
    const firstNew = newWatch?.firstReadyAfter(sameUrl ? stoppedAt : 0)
    const gapMs = firstNew !== undefined && lastOld !== undefined ? firstNew - lastOld : undefined
    const res: HandoffResult = { stop: killed ? 'killed' : 'graceful', lockTakenMs: lockMs, gapMs, stopMs }
    report.handoffs.push({
      from: fromName,
      to: swap ? `${to.name} (new container)` : to.name,
      stop: res.stop,
      lockTakenMs: lockMs,
      gapMs
    })
    return res
  } finally {
    await oldWatch?.stop()
    await newWatch?.stop()
  }
}

/**
 * Lock-handoff check: the lock belongs to `to`'s app id and nobody else; `from`'s session is
 * gone. Without `from` (a stopped container started again) it times from `stoppedAt` = now.
 */
async function lockTaken(
  ctx: Context,
  link: NodeLink,
  from: Member | undefined,
  to: Member,
  timeoutMs: number,
  stoppedAt: number
): Promise<number> {
  const end = stoppedAt + timeoutMs
  let last = ''
  const mode = modeOf(link, to)
  while (Date.now() < end) {
    const lock = await readLockState(link.db, mode, link.config.advisoryLockId)
    const fromLeft = !from?.appId || !lock.sessions.some((s) => sameApp(s.appId, from.appId))
    if (sameApp(lock.holder, to.appId) && fromLeft) {
      const ms = Date.now() - stoppedAt
      ctx.report.gate(
        'lock-handoff',
        true,
        `lock (${mode}) held by '${to.name}' (app ${to.appId}) ${formatMs(ms)} after ${from ? `'${from.name}' stopped; its sessions are gone` : 'its DB session opened'}`
      )
      return ms
    }
    const info = await ctx.docker.inspect(to.id)
    if (!info?.State.Running)
      throw new GateError(
        'lock-handoff',
        `'${to.name}' exited (code ${info?.State.ExitCode}) before taking the lock`,
        to.id
      )
    last = lock.holder ? `held by app ${lock.holder}` : (lock.problem ?? 'free')
    if (!fromLeft) last += `; '${from!.name}' still has a DB session`
    await sleep(100, ctx.signal)
  }
  throw new GateError(
    'lock-handoff',
    `'${to.name}' did not take the lock within ${formatMs(timeoutMs)} of ${from ? 'the stop' : 'its start'} (${last})`,
    to.id
  )
}

/**
 * Health gate: /readyz 200, no failing /health check and a healthy Docker HEALTHCHECK when the
 * container has one, held for `stable-for` with no restart and the lock still its own.
 */
export async function healthGate(ctx: Context, link: NodeLink, to: Member, t: Timeouts): Promise<void> {
  const { docker } = ctx
  const start = Date.now()
  const end = start + t.readyMs
  const info0 = (await docker.inspect(to.id))!
  const url = healthBase(info0, link.config.httpPort)!
  const restarts0 = info0.RestartCount
  const hasHealthcheck = !!info0.State.Health
  let stableSince: number | undefined
  let last = 'not answering yet'
  // ready-timeout bounds the first ready answer; stable-for is then held on top of it
  while (stableSince !== undefined || Date.now() < end) {
    const info = await docker.inspect(to.id)
    if (!info?.State.Running)
      throw new GateError(
        'health',
        `'${to.name}' exited (code ${info?.State.ExitCode}) ${stableSince ? 'while holding ready' : 'before becoming ready'}; last: ${last}`,
        to.id
      )
    if (info.RestartCount !== restarts0)
      throw new GateError('health', `'${to.name}' restarted during the health gate`, to.id)
    const p = await probe(url, 1000)
    const dockerHealth = info.State.Health?.Status
    const lock = await readLockState(link.db, modeOf(link, to), link.config.advisoryLockId)
    if (!sameApp(lock.holder, to.appId))
      throw new GateError(
        'health',
        `'${to.name}' lost the lock (${lock.holder ? `now held by app ${lock.holder}` : lock.problem})`,
        to.id
      )
    const ok = isReady(p) && (!hasHealthcheck || dockerHealth === 'healthy')
    last =
      p.readyz !== undefined
        ? `/readyz ${p.readyz}, /health ${p.health}${p.failing.length ? ` failing ${p.failing.join(', ')}` : ''}${hasHealthcheck ? `, docker health ${dockerHealth}` : ''}`
        : `not answering (${p.error})`
    if (ok) {
      stableSince ??= Date.now()
      if (Date.now() - stableSince >= t.stableMs) {
        ctx.report.gate(
          'health',
          true,
          `'${to.name}': ${last}, held ${formatMs(Date.now() - stableSince)} without a restart (ready ${formatMs(stableSince - start)} after the gate opened)`
        )
        return
      }
    } else if (stableSince !== undefined) {
      throw new GateError('health', `'${to.name}' was ready, then not (${last}) within the stable-for window`, to.id)
    }
    await sleep(250, ctx.signal)
  }
  throw new GateError('health', `'${to.name}' not ready within ready-timeout ${formatMs(t.readyMs)} (${last})`, to.id)
}

export function memberOf(info: ContainerInfo, appId?: string): Member {
  return { id: info.Id, name: containerName(info), info, appId }
}

/**
 * Starts a stopped container and proves it becomes the leader with the same gates as a
 * handoff: a new DB session from it, the lock its own (lock-handoff), then the health gate.
 */
export async function takeOver(ctx: Context, link: NodeLink, m: Member, t: Timeouts): Promise<Member> {
  const before = new Set((await link.db.nodeSessions()).map((s) => s.appId))
  await ctx.docker.start(m.id)
  const member: Member = { ...m }
  await awaitSession(ctx, link, member, before, t.standbyMs)
  await lockTaken(ctx, link, undefined, member, t.lockMs, Date.now())
  await healthGate(ctx, link, member, t)
  return member
}
