// operation: upgrade on one host of a node that runs on several (docs/hosts.md, "Rolling upgrade
// across hosts"). Each host's runner upgrades only its own instance; the workflow runs the
// standby hosts first and the leader's host last (examples/ha.yml):
// - this host's instance waits (or was drained) and an instance on another host leads: it is
//   recreated on the new image and proven waiting with the new version (it migrates nothing);
// - this host's instance leads and the instances waiting elsewhere already run the target: a
//   drain hands the lock to one of them (it migrates the DB, the node's own order, §4), the same
//   gates prove it leads, then this host's instance is recreated on the new image as a standby.
// A new leader that fails its gate or never takes the lock: this host's old instance leads again,
// on a DB taken back by the new image's `node db rollback` when the new version had migrated it.
// Any other layout returns undefined: the one-host path decides (and refuses a foreign node).
import type { Context, OperationResult } from '../context.js'
import type { Inputs } from '../inputs/types.js'
import { OperationError } from '../errors.js'
import type { ImageInfo, ContainerInfo } from '../docker/client.js'
import { formatRef, repoTag, type ImageRef } from '../image/ref.js'
import { untrustedTarget } from '../trust/repository.js'
import { inspectNode } from '../node/inspect.js'
import { nodeVersionOf } from '../node/config.js'
import type { NodeContainer, NodeView } from '../node/view.js'
import { describeInstance, findInstances, reportInstances, type Instance } from '../node/instances.js'
import { linkOf, timeouts, type NodeLink } from '../handoff/types.js'
import { withHostLock } from '../journal/host-lock.js'
import { JournalWriter, journalPath, nodeKey, refuseOpenJournal } from '../journal/journal.js'
import { clearDrainRecord, readDrainRecord } from '../journal/drained.js'
import { cmpVersion } from '../rollout/cross-host.js'
import { recreateWaiting } from '../rollout/recreate-waiting.js'
import { keyContainers } from '../rollout/plan.js'
import { writeHostUpgraded } from '../journal/host-upgraded.js'
import { dbBack, hostBack, wayBack } from './host-back.js'

interface Target {
  image: ImageInfo
  createRef: string
  digest?: string
}

/**
 * What the entry hands in (src/index.ts): the one-host upgrade's pull and backup, the drain's
 * handoff and refusal (src/operations/drain.ts), kept out of this module's imports for depth.
 */
interface Deps {
  resolve: (ctx: Context, ref: ImageRef) => Promise<Target>
  backup: (ctx: Context, inputs: Inputs, view: NodeView, leader: NodeContainer) => Promise<string>
  handOff: (
    ctx: Context,
    inputs: Inputs,
    view: NodeView,
    instances: Instance[],
    all: string,
    journalKey: string,
    opts: { target?: string; beforeStartAgain?: (link: NodeLink) => Promise<void> }
  ) => Promise<OperationResult>
  drainRefusal: (instances: Instance[], leaderApp: string, dbVersion: string | undefined) => string | undefined
}

/** Pure: which part of a rolling upgrade this host runs, from the instances the DB shows. */
export function hostPart(
  instances: Instance[],
  localName: string
): { kind: 'one-host' } | { kind: 'standby-host'; leader: Instance } | { kind: 'leader-host'; waiting: Instance[] } {
  const leader = instances.find((x) => x.role === 'leader')
  const remote = instances.filter((x) => x.host === 'remote' && x.role !== 'other')
  if (!remote.length || !leader) return { kind: 'one-host' }
  if (leader.host === 'remote') return { kind: 'standby-host', leader }
  if (leader.container !== localName) return { kind: 'one-host' }
  return { kind: 'leader-host', waiting: remote.filter((x) => x.role === 'waiting') }
}

/**
 * Pure: the leader's host goes last: every instance waiting elsewhere must already run the
 * target's version (any of them may take the lock), else the refusal.
 */
export function leaderHostRefusal(waiting: Instance[], targetVersion: string | undefined): string | undefined {
  if (!targetVersion) return undefined
  const behind = waiting.filter((x) => cmpVersion(x.version, targetVersion) !== 0)
  if (!behind.length) return undefined
  return `${behind.map(describeInstance).join('; ')} does not run the target's Chainlink ${targetVersion}: the leader's host is upgraded last, after the instances waiting on the other hosts (their runners' upgrade recreates them on the target first, docs/hosts.md). Nothing was changed`
}

export async function upgradeAcrossHosts(
  ctx: Context,
  inputs: Inputs,
  ref: ImageRef,
  deps: Deps
): Promise<OperationResult | undefined> {
  if (inputs.standby) return undefined
  // keyed as the one-host path keys it (the names a killed run may have left), and an open
  // journal refused first: a re-run after a killed swap finds no container by its name
  return withHostLock(ctx, inputs, keyContainers(inputs), async (keys) => {
    refuseOpenJournal(inputs.stateDir, keys.read)
    const view = await inspectNode(ctx, [inputs.container], inputs)
    try {
      const instances = await findInstances(ctx, view)
      const local = view.containers[0]
      const back = await wayBackHere(ctx, inputs, view, instances, ref, deps)
      if (back) return back
      const part = hostPart(instances, local.name)
      if (part.kind === 'one-host') return undefined
      // no instance elsewhere on the target's version (by its tag) yet: no rolling upgrade has
      // begun, and the one-host path's refusal names the node that would take the lock
      const byTag = nodeVersionOf({ Image: formatRef(ref) })
      if (part.kind === 'leader-host' && byTag && !part.waiting.some((x) => cmpVersion(x.version, byTag) === 0))
        return undefined
      const all = reportInstances(ctx, instances)
      const untrusted = untrustedTarget(ref, [local.image], inputs.allowedRepositories)
      if (untrusted) throw new OperationError(`Input 'allowed-repositories': ${untrusted}`)
      const target = await deps.resolve(ctx, ref)
      const display = `${repoTag(ref)}@${target.digest ?? target.image.id}`
      const version = nodeVersionOf({ ...target.image.config, Image: formatRef(ref) })
      ctx.report.fact('Target', `${display} (Chainlink ${version ?? '?'})`)
      const link = linkOf(view, inputs.healthUrl)
      const base = { 'previous-image': local.image, image: display, instances: all }
      const onTarget = (await ctx.docker.imageInfo(local.info.Image))?.id === target.image.id
      if (onTarget && local.info.State.Running && (part.kind === 'standby-host' || view.leader?.name === local.name)) {
        ctx.report.step('unchanged', `'${local.name}' already runs ${display}`)
        return { result: 'unchanged', ok: true, message: `'${local.name}' already runs ${display}`, outputs: base }
      }
      if (part.kind === 'standby-host')
        return await standbyHost(
          ctx,
          inputs,
          link,
          view,
          part.leader,
          { ...target, display, version },
          keys.write,
          base
        )
      const refusal =
        leaderHostRefusal(part.waiting, version) ??
        deps.drainRefusal(instances, view.leader!.session!.appId, view.dbVersion.nodeVersion)
      if (refusal) throw new OperationError(refusal)
      if (view.mode === 'none' || local.info.HostConfig.AutoRemove)
        throw new OperationError(
          `'${local.name}' runs ${view.mode === 'none' ? "with lock mode 'none'" : 'with --rm'}: a rolling upgrade across hosts drains it and keeps it; nothing was changed`
        )
      return await leaderHost(
        ctx,
        inputs,
        link,
        view,
        instances,
        { ...target, display, version },
        keys.write,
        base,
        deps
      )
    } finally {
      await view.db.close()
    }
  })
}

type Resolved = Target & { display: string; version?: string }

/** The container as its drain recorded it: a drained instance's successor gets the operator's restart policy back. */
function withDrainedPolicy(inputs: Inputs, info: ContainerInfo): ContainerInfo {
  const rec = readDrainRecord(inputs.stateDir, nodeKey(inputs))
  return rec?.containerId === info.Id
    ? { ...info, HostConfig: { ...info.HostConfig, RestartPolicy: rec.policy } }
    : info
}

/** The journal of this host's instance recreated as a waiting standby (repair: `repairHostStandby`). */
function hostStandbyJournal(
  ctx: Context,
  inputs: Inputs,
  journalKey: string,
  id: string,
  was: { name: string; image: string },
  target: Resolved,
  view: NodeView
): JournalWriter {
  const path = journalPath(inputs.stateDir, journalKey)
  const journal = new JournalWriter(path, {
    runId: Date.now().toString(36),
    operation: 'upgrade-host-standby',
    container: inputs.container,
    plan: {
      leaderId: id,
      leaderName: was.name,
      leaderImage: was.image,
      target: target.createRef,
      dbBefore: view.dbVersion,
      mode: view.mode
    }
  })
  ctx.onJournal?.(journal.journal.runId, path)
  return journal
}

/** A standby host: this host's instance recreated on the target, proven waiting behind the remote leader. */
async function standbyHost(
  ctx: Context,
  inputs: Inputs,
  link: NodeLink,
  view: NodeView,
  leader: Instance,
  target: Resolved,
  journalKey: string,
  base: Record<string, string>
): Promise<OperationResult> {
  const { report } = ctx
  const local = view.containers[0]
  const info = withDrainedPolicy(inputs, local.info)
  report.fact(
    'Plan',
    `standby host: recreate '${local.name}' (${local.info.State.Running ? 'waiting' : 'stopped'}) on ${target.display} and prove it waits behind ${describeInstance(leader)}`
  )
  if (inputs.dryRun)
    return { result: 'planned', ok: true, message: `dry run: would recreate '${local.name}'`, outputs: base }
  const journal = hostStandbyJournal(ctx, inputs, journalKey, local.info.Id, local, target, view)
  const t = timeouts(inputs, view.config, local.info)
  try {
    const w = await recreateWaiting(
      ctx,
      link,
      {
        info,
        target: { createRef: target.createRef, imageId: target.image.id, version: target.version },
        leaderApp: leader.appId,
        dbVersion: view.dbVersion.nodeVersion,
        t
      },
      journal
    )
    clearDrainRecord(inputs.stateDir, nodeKey(inputs))
    // the DB before any new version ran on it: this host's way back if the new one migrates and crashes
    writeHostUpgraded(inputs.stateDir, nodeKey(inputs), {
      previousImage: local.image,
      image: target.display,
      dbBefore: view.dbVersion,
      at: new Date().toISOString()
    })
    journal.done('ok')
    report.step(
      'done',
      `'${local.name}' waits on ${target.display} (app ${w.appId}); ${describeInstance(leader)} leads`
    )
    return {
      result: 'upgraded',
      ok: true,
      message: `standby host: '${local.name}' recreated on ${target.display} and proven waiting (Chainlink ${w.version ?? '?'}, app ${w.appId}); app ${leader.appId} on another host leads`,
      outputs: { ...base, 'leader-host': 'remote', 'leader-app-id': leader.appId }
    }
  } catch (e) {
    if (!ctx.signal.aborted) journal.done('failed')
    throw e
  }
}

/**
 * The leader's host: the lock handed to an upgraded instance elsewhere (it migrates), then this
 * host's drained instance recreated on the target as the new standby.
 */
async function leaderHost(
  ctx: Context,
  inputs: Inputs,
  link: NodeLink,
  view: NodeView,
  instances: Instance[],
  target: Resolved,
  journalKey: string,
  base: Record<string, string>,
  deps: Deps
): Promise<OperationResult> {
  const { report } = ctx
  const leader = view.leader!
  report.fact(
    'Plan',
    `leader's host: drain '${leader.name}' to the instance waiting elsewhere on ${target.display} (it migrates the DB from goose ${view.dbVersion.goose ?? '-'}), then recreate '${leader.name}' on it as the standby`
  )
  if (inputs.dryRun)
    return {
      result: 'planned',
      ok: true,
      message: `dry run: would hand off and recreate '${leader.name}'`,
      outputs: base
    }
  const backupFile = inputs.backup ? await deps.backup(ctx, inputs, view, leader) : undefined
  const before = view.dbVersion
  const t = timeouts(inputs, view.config, leader.info)
  const drained = await deps.handOff(ctx, inputs, view, instances, base.instances, journalKey, {
    target: target.createRef,
    beforeStartAgain: (l) =>
      dbBack(ctx, l, before, {
        config: leader.info,
        name: leader.name,
        image: target.createRef,
        display: target.display,
        waitMs: 2 * t.lockMs,
        quietMs: t.lockMs,
        readyTimeoutMs: inputs.readyTimeoutMs,
        known: instances.map((x) => x.appId)
      })
  })
  const outs = { ...base, ...(backupFile ? { 'backup-file': backupFile } : {}) }
  // kept stopped: the DB could not be taken back (a newer process still on it); the message says where
  if (!drained.ok && !(await ctx.docker.inspect(leader.info.Id))?.State.Running)
    return { ...drained, outputs: { ...outs, ...drained.outputs } }
  if (!drained.ok)
    return {
      ...drained,
      result: 'rolled-back',
      message: `${drained.message}. The instances waiting on the other hosts still run ${target.display}: recreate them on ${leader.image} (their runners' upgrade, examples/ha.yml's rollback jobs)`,
      outputs: { ...outs, ...drained.outputs }
    }
  const newLeader = drained.outputs['leader-app-id']!
  const now = (await ctx.docker.inspect(leader.info.Id))!
  const info = withDrainedPolicy(inputs, now)
  const journal = hostStandbyJournal(ctx, inputs, journalKey, now.Id, leader, target, view)
  const dbNow = await link.db.version()
  try {
    const w = await recreateWaiting(
      ctx,
      link,
      {
        info,
        target: { createRef: target.createRef, imageId: target.image.id, version: target.version },
        leaderApp: newLeader,
        dbVersion: dbNow.nodeVersion,
        t
      },
      journal
    )
    clearDrainRecord(inputs.stateDir, nodeKey(inputs))
    journal.done('ok')
    return {
      result: 'upgraded',
      ok: true,
      message: `leader's host: app ${newLeader} on another host leads on ${target.display} (DB goose ${before.goose ?? '-'} -> ${dbNow.goose ?? '-'}); '${leader.name}' recreated on it and proven waiting (app ${w.appId})`,
      outputs: { ...outs, 'leader-host': 'remote', 'leader-app-id': newLeader }
    }
  } catch (e) {
    if (ctx.signal.aborted) throw e
    journal.done('failed')
    // the node runs (the new leader passed its gates); only this host's standby is missing
    return {
      result: 'failed',
      ok: false,
      message: `app ${newLeader} on another host leads on ${target.display}, but '${leader.name}' could not be recreated on it as the standby: ${(e as Error).message}. Run upgrade on this host again`,
      outputs: { ...outs, 'leader-host': 'remote', 'leader-app-id': newLeader }
    }
  }
}

/**
 * An older target on a DB a newer version migrated, with no instance serving (a bad target that
 * crashed after migrating): the way back (src/operations/host-back.ts), else undefined.
 */
async function wayBackHere(
  ctx: Context,
  inputs: Inputs,
  view: NodeView,
  instances: Instance[],
  ref: ImageRef,
  deps: Deps
): Promise<OperationResult | undefined> {
  const local = view.containers[0]
  const localImage = await ctx.docker.imageInfo(local.info.Image)
  const remoteLeads = instances.some((x) => x.role === 'leader' && x.host === 'remote')
  const kind = wayBack({
    targetVersion: nodeVersionOf({ Image: formatRef(ref) }),
    db: view.dbVersion,
    localVersion: nodeVersionOf({ ...localImage?.config, Image: local.image }),
    // a leader here (even one still migrating) is never stopped by a way back
    served: remoteLeads || !!view.leader
  })
  if (kind === 'none') return undefined
  const untrusted = untrustedTarget(ref, [local.image], inputs.allowedRepositories)
  if (untrusted) throw new OperationError(`Input 'allowed-repositories': ${untrusted}`)
  const link = linkOf(view, inputs.healthUrl)
  return hostBack(ctx, inputs, view, link, kind, async () => {
    const t = await deps.resolve(ctx, ref)
    return {
      createRef: t.createRef,
      imageId: t.image.id,
      display: `${repoTag(ref)}@${t.digest ?? t.image.id}`,
      version: nodeVersionOf({ ...t.image.config, Image: formatRef(ref) })
    }
  })
}
