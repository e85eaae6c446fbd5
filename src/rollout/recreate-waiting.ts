// A rolling upgrade across hosts (docs/hosts.md): this host's instance waits for the lock while
// an instance on another host leads, and is recreated on the new image. A waiting instance holds
// no lock and runs no migration (they run after the lock is taken, docs/node-facts.md §4), so
// the new one waiting changes nothing in the DB. The old container is stopped and renamed aside
// (restart policy `no`), kept until the new one is proven waiting with the new version, then
// removed; on any failure the new one is removed and the old one is put back, waiting again.
import type { Context } from '../context.js'
import { OperationError } from '../errors.js'
import { containerName, type ContainerInfo } from '../docker/client.js'
import { readLockState, sameApp } from '../node/lock.js'
import { startClone } from '../handoff/clone.js'
import { standbyReady } from '../handoff/gate-loops.js'
import { GateError, memberOf, type Member, type NodeLink, type Timeouts } from '../handoff/types.js'
import type { JournalWriter } from '../journal/journal.js'
import { cmpVersion, provePolling, versionGateRefusal } from './cross-host.js'

/** the old container while its successor is proven: `<name>-host-previous` */
const SUFFIX_HOST_PREVIOUS = '-host-previous'

interface Target {
  /** the reference to create from, and the image id it must name */
  createRef: string
  imageId: string
  /** the Chainlink version the image runs (from its labels or tag), when known */
  version?: string
}

/**
 * Pure: why the instance proven waiting does not run the target (its DB session names another
 * version), or undefined.
 */
export function wrongVersion(proven: string | undefined, target: string | undefined): string | undefined {
  if (!target || !proven) return undefined
  return cmpVersion(proven, target) === 0 ? undefined : `it runs Chainlink ${proven}, not the target's ${target}`
}

/**
 * Recreates `info` (this host's instance: waiting, or stopped by a drain) on `target` and proves
 * it waits behind `leaderApp` with the target's version. Returns the new instance's app id.
 */
export async function recreateWaiting(
  ctx: Context,
  link: NodeLink,
  o: { info: ContainerInfo; target: Target; leaderApp: string; dbVersion?: string; t: Timeouts },
  journal: JournalWriter
): Promise<{ appId: string; version?: string }> {
  const { docker, report } = ctx
  const name = containerName(o.info)
  const aside = `${name}${SUFFIX_HOST_PREVIOUS}`
  const old = versionGateRefusal(o.target.version, o.dbVersion)
  if (old) throw new OperationError(`the target could never lead: ${old}. Nothing was changed`)
  journal.step('host-previous', { id: o.info.Id, name, aside, policy: o.info.HostConfig.RestartPolicy })
  // stopped before the new one starts: both would publish the same ports
  await docker.setRestartPolicy(o.info.Id, { Name: 'no' })
  if (o.info.State.Running) await docker.stop(o.info.Id, o.t.stopS)
  await docker.rename(o.info.Id, aside)
  report.step('previous kept', `'${name}' stopped and renamed '${aside}' until its successor is proven waiting`)
  let made: Member | undefined
  try {
    const known = new Set(
      (await readLockState(link.db, link.mode, link.config.advisoryLockId)).sessions.map((s) => s.appId)
    )
    made = await startClone(ctx, o.info, {
      image: o.target.createRef,
      imageId: o.target.imageId,
      name,
      ports: 'keep',
      runId: journal.journal.runId,
      role: 'host-standby',
      restartPolicy: o.info.HostConfig.RestartPolicy?.Name
        ? (o.info.HostConfig.RestartPolicy as { Name: string })
        : undefined,
      onCreated: (m) => journal.step('host-standby', { id: m.id })
    })
    report.step('standby recreated', `'${name}' on ${o.target.createRef}`)
    const proven = await standbyReady(ctx, link, made, o.leaderApp, known, o.t.standbyMs)
    const wrong = wrongVersion(proven.version, o.target.version)
    if (wrong) throw new GateError('standby-ready', `'${name}' waits but ${wrong}`)
    await provePolling(ctx, link, proven.appId, name)
    journal.step('remove-previous', { id: o.info.Id })
    await docker.remove(o.info.Id)
    report.step('previous removed', `'${aside}': '${name}' waits with Chainlink ${proven.version ?? '?'}`)
    return { appId: proven.appId, version: proven.version }
  } catch (e) {
    if (ctx.signal.aborted) throw e
    // the new one taking the lock means the leader died meanwhile: it leads (and migrated)
    const l = await readLockState(link.db, link.mode, link.config.advisoryLockId).catch(() => undefined)
    if (made && l?.holder && !sameApp(l.holder, o.leaderApp) && made.info) {
      const now = await docker.inspect(made.id)
      if (now?.State.Running && l.sessions.some((s) => sameApp(s.appId, l.holder)))
        throw new OperationError(
          `'${name}' on the new image took the lock (app ${l.holder}) while it was being proven waiting: the leader elsewhere let it go. It leads now; '${aside}' is kept stopped. ${(e as Error).message}`
        )
    }
    await putBack(ctx, link, { id: o.info.Id, name, policy: o.info, made: made?.id, leaderApp: o.leaderApp, t: o.t })
    throw new OperationError(
      `'${name}' on ${o.target.createRef} was not proven waiting (${(e as Error).message}); it was removed and the previous container was put back, waiting`
    )
  }
}

/**
 * The old container back under its name with the operator's restart policy, started and proven
 * waiting when an instance leads elsewhere (a drained one stays stopped: `wasRunning` false).
 */
export async function putBack(
  ctx: Context,
  link: NodeLink,
  o: {
    id: string
    name: string
    policy: ContainerInfo
    made?: string
    leaderApp?: string
    t: Timeouts
    start?: boolean
  }
): Promise<void> {
  const { docker, report } = ctx
  if (o.made) await docker.remove(o.made).catch(() => undefined)
  const cur = await docker.inspect(o.id)
  if (!cur) throw new OperationError(`the previous container '${o.name}' (id ${o.id}) is gone: it cannot be put back`)
  if (containerName(cur) !== o.name) await docker.rename(o.id, o.name)
  // the operator's policy back (as rollout/steps.ts restoreRestartPolicy; not imported, for depth)
  const p = o.policy.HostConfig.RestartPolicy
  if (p?.Name && p.Name !== 'no')
    await docker.setRestartPolicy(o.id, {
      Name: p.Name,
      ...(p.Name === 'on-failure' ? { MaximumRetryCount: p.MaximumRetryCount ?? 0 } : {})
    })
  if (o.start === false) return
  const l = await readLockState(link.db, link.mode, link.config.advisoryLockId)
  const leader = o.leaderApp ?? l.holder
  if (!cur.State.Running) await docker.start(o.id)
  if (leader && l.sessions.some((s) => sameApp(s.appId, leader))) {
    const known = new Set(l.sessions.map((s) => s.appId))
    if (!cur.State.Running)
      await standbyReady(ctx, link, memberOf((await docker.inspect(o.id))!), leader, known, o.t.standbyMs)
  }
  report.step('put back', `'${o.name}' on its previous image again`)
}
