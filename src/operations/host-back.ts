// The way back from a bad target in a rolling upgrade across hosts (docs/hosts.md, "A bad
// target"). A new version that took the lock has migrated the DB; an old instance anywhere can no
// longer run on it (the version gate, docs/node-facts.md §9), and only the new image's `node db
// rollback`, run while no process of the new version is on the DB, takes it back (§10). A new
// version that crashes after migrating and has a restart policy is restarted by its own host's
// Docker and takes the lock again: only that host's runner can stop it. So the way back runs
// there: the rollback job's `upgrade` to the previous image on the host whose instance runs the
// newer image stops it, runs that image's `node db rollback` (the image is on that host) to the
// goose version this host recorded before the upgrade (src/journal/host-upgraded.ts), resets
// node_versions and starts the previous image there, to lead. The node is down from the crash
// until that step, and no longer. The leader's host, whose old instance the failed handoff left
// stopped, waits for that step (its upgrade refuses, changing nothing) and then rejoins as the
// standby (its upgrade to the previous image, as any standby host).
import type { Context, OperationResult } from '../context.js'
import type { Inputs } from '../inputs/types.js'
import { OperationError } from '../errors.js'
import { containerName, type ContainerInfo } from '../docker/client.js'
import type { NodeView } from '../node/view.js'
import { readLockState, sameApp } from '../node/lock.js'
import type { DbVersion, NodeSession } from '../postgres/database.js'
import { startClone } from '../handoff/clone.js'
import { takeOver } from '../handoff/take-over.js'
import { timeouts, type NodeLink } from '../handoff/types.js'
import { nodeKey } from '../journal/journal.js'
import { clearDrainRecord, readDrainRecord, writeDrainRecord } from '../journal/drained.js'
import { clearHostUpgraded, readHostUpgraded } from '../journal/host-upgraded.js'
import { cmpVersion } from '../rollout/cross-host.js'
import { migrateDownTo } from '../rollout/migrate-down.js'
import { sleep } from '../sleep.js'

/** the old container while its successor takes the lock: `<name>-host-back` */
const SUFFIX_HOST_BACK = '-host-back'

/** Pure: the processes of a version newer than `version` on the DB, one line each. */
export function newerProcesses(sessions: NodeSession[], version: string | undefined): NodeSession[] {
  const seen = new Map<string, NodeSession>()
  for (const s of sessions) if ((cmpVersion(s.version, version) ?? 0) > 0 && !seen.has(s.appId)) seen.set(s.appId, s)
  return [...seen.values()]
}

const where = (s: NodeSession) =>
  `app ${s.appId} (Chainlink ${s.version})${s.clientAddr ? ` from ${s.clientAddr}` : ''}`

/**
 * Pure: which way back this host's `upgrade` to an older target takes when the DB is migrated
 * past it. `none`: not a way back (the usual paths decide: a target older than the DB is refused).
 */
export function wayBack(o: {
  targetVersion?: string
  db: DbVersion
  /** the version of this host's instance (its image) */
  localVersion?: string
  /** an instance holds the lock with live sessions (elsewhere, or this host's) */
  served: boolean
}): 'none' | 'wait' | 'back' {
  if (o.served) return 'none'
  if ((cmpVersion(o.targetVersion, o.db.nodeVersion) ?? 0) >= 0) return 'none'
  // this host's instance runs the version that migrated (or newer): its image knows the Down steps
  return (cmpVersion(o.localVersion, o.db.nodeVersion) ?? -1) >= 0 ? 'back' : 'wait'
}

/**
 * After a failed handoff to a new version: the DB back to `before` when the new version migrated
 * it (docs/node-facts.md §10): every process of a newer version gone from the DB first (the
 * rollback takes no lock), then the new image's `node db rollback` and node_versions reset. A
 * newer process that comes back (restarted by its host's Docker) ends the wait at once: this
 * host's runner cannot stop it.
 */
export async function dbBack(
  ctx: Context,
  link: NodeLink,
  before: DbVersion,
  o: {
    config: ContainerInfo
    name: string
    image: string
    display: string
    waitMs: number
    /** how long no newer process may be seen before the rollback runs */
    quietMs: number
    readyTimeoutMs: number
    /** app ids on the DB before the handoff: a newer one not among them is a restart */
    known: string[]
  }
): Promise<void> {
  const now = await link.db.version()
  if (now.goose === before.goose && now.nodeVersion === before.nodeVersion) {
    ctx.report.step('database', `not migrated (goose ${now.goose ?? '-'}, node_versions ${now.nodeVersion ?? '-'})`)
    return
  }
  const moved = `goose ${before.goose ?? '-'} -> ${now.goose ?? '-'}, node_versions ${before.nodeVersion ?? '-'} -> ${now.nodeVersion ?? '-'}`
  ctx.report.step(
    'database',
    `migrated by the new version (${moved}): it held the lock; taken back before the old instance starts`
  )
  if (before.goose === undefined)
    throw new OperationError(`the database was migrated to goose ${now.goose}, and its version before is not known`)
  const next = `Next, the workflow's rollback job (examples/ha.yml): upgrade to the previous image on that host stops it there, takes the database back with the new image's 'node db rollback ${before.goose}' and starts the previous version to lead; then upgrade to the previous image here brings '${o.name}' back as its standby`
  // gone for a while, not for a moment: a restart policy brings the new version back within its
  // backoff (from 100 ms) and boot, and it would migrate again under the old one
  const deadline = Date.now() + o.waitMs + o.quietMs
  let goneSince: number | undefined
  for (;;) {
    const l = await readLockState(link.db, link.mode, link.config.advisoryLockId)
    const newer = newerProcesses(l.sessions, before.nodeVersion)
    if (!newer.length) {
      goneSince ??= Date.now()
      if (Date.now() - goneSince >= o.quietMs) break
      await sleep(250, ctx.signal)
      continue
    }
    goneSince = undefined
    const restarted = newer.filter((s) => !o.known.some((k) => sameApp(k, s.appId)))
    if (restarted.length || Date.now() >= deadline)
      throw new OperationError(
        `the new version migrated the database (${moved}) and ${restarted.length ? `is restarted by its host after it exited: ${restarted.map(where).join('; ')}` : `still runs on it: ${newer.map(where).join('; ')}`}. 'node db rollback' needs every newer process stopped, which only its own host's runner can do; '${o.name}' cannot run on the migrated database and stays stopped (restart policy no). ${next}`
      )
    await sleep(250, ctx.signal)
  }
  await migrateDownTo(ctx, link, {
    config: o.config,
    name: o.name,
    image: o.image,
    goose: before.goose,
    nodeVersion: before.nodeVersion,
    whose: 'the new image',
    display: o.display,
    readyTimeoutMs: o.readyTimeoutMs
  })
}

/**
 * This host's `upgrade` to an older target while the DB is migrated past it and no instance
 * serves: `wait` refuses (changing nothing) until the host with the newer image went back; `back`
 * is that host: its instance stopped, the DB taken back with its image, the target started to lead.
 */
export async function hostBack(
  ctx: Context,
  inputs: Inputs,
  view: NodeView,
  link: NodeLink,
  kind: 'wait' | 'back',
  target: () => Promise<{ createRef: string; imageId: string; display: string; version?: string }>
): Promise<OperationResult> {
  const { docker, report } = ctx
  const local = view.containers[0]
  const db = view.dbVersion
  const lock = await readLockState(link.db, link.mode, link.config.advisoryLockId)
  const newer = newerProcesses(lock.sessions, local.session?.version ?? db.nodeVersion)
  const migrated = `the database is migrated to goose ${db.goose ?? '-'}, node_versions ${db.nodeVersion ?? '-'}`
  if (kind === 'wait')
    throw new OperationError(
      `'${local.name}' (${local.image}) cannot run on this database: ${migrated} by a newer version, and no instance serves. Nothing was changed: the host whose instance runs the newer image goes first (its upgrade to the previous image takes the database back and starts it there)${newer.length ? `: ${newer.map(where).join('; ')}` : ''}; then run this again`
    )
  const key = nodeKey(inputs)
  const rec = readHostUpgraded(inputs.stateDir, key)
  if (rec?.dbBefore.goose === undefined || (cmpVersion(rec.dbBefore.nodeVersion, db.nodeVersion) ?? 0) >= 0)
    throw new OperationError(
      `${migrated}, and this host has no record of the database's version before the upgrade (its standby step writes one): the goose version to roll back to is not known. Nothing was changed; restore the backup the leader's host took (operation restore)`
    )
  const t = await target()
  report.fact(
    'Plan',
    `the way back on the host with the newer image: stop '${local.name}' (${local.image}), 'node db rollback ${rec.dbBefore.goose}' with it, node_versions ${rec.dbBefore.nodeVersion ?? '(empty)'}, then '${local.name}' on ${t.display} to lead`
  )
  if (inputs.dryRun)
    return { result: 'planned', ok: true, message: `dry run: would take the database back here`, outputs: {} }
  const timing = timeouts(inputs, view.config, local.info)
  const runId = Date.now().toString(36)
  // the operator's policy kept for every later run (as a drain keeps it), then no restart
  const drained = readDrainRecord(inputs.stateDir, key)
  const policy =
    drained?.containerId === local.info.Id ? drained.policy : (local.info.HostConfig.RestartPolicy ?? { Name: 'no' })
  writeDrainRecord(inputs.stateDir, key, {
    containerId: local.info.Id,
    container: local.name,
    policy: { Name: policy.Name ?? 'no', MaximumRetryCount: policy.MaximumRetryCount },
    at: new Date().toISOString(),
    runId
  })
  await docker.setRestartPolicy(local.info.Id, { Name: 'no' })
  await docker.stop(local.info.Id, timing.stopS)
  report.step('stopped', `'${local.name}' (${local.image}), restart policy no`)
  const deadline = Date.now() + 2 * timing.lockMs
  for (;;) {
    const l = await readLockState(link.db, link.mode, link.config.advisoryLockId)
    const left = newerProcesses(l.sessions, rec.dbBefore.nodeVersion)
    if (!left.length) break
    if (Date.now() >= deadline)
      throw new OperationError(
        `'${local.name}' was stopped here (restart policy no), but ${left.map(where).join('; ')} still runs on the database: run this on its host too (the last one to stop takes the database back), then here again`
      )
    await sleep(250, ctx.signal)
  }
  const info = (await docker.inspect(local.info.Id))!
  await migrateDownTo(ctx, link, {
    config: info,
    name: local.name,
    image: info.Image,
    goose: rec.dbBefore.goose,
    nodeVersion: rec.dbBefore.nodeVersion,
    whose: "this host's newer image",
    display: local.image,
    readyTimeoutMs: inputs.readyTimeoutMs
  })
  const name = containerName(info)
  await docker.rename(info.Id, `${name}${SUFFIX_HOST_BACK}`)
  const m = await startClone(ctx, info, {
    image: t.createRef,
    imageId: t.imageId,
    name,
    ports: 'keep',
    runId,
    role: 'host-back',
    start: false,
    restartPolicy: policy.Name && policy.Name !== 'no' ? { Name: policy.Name } : undefined
  })
  const led = await takeOver(ctx, link, m, timing)
  await docker.remove(info.Id)
  clearDrainRecord(inputs.stateDir, key)
  clearHostUpgraded(inputs.stateDir, key)
  report.step('done', `'${name}' leads on ${t.display} (app ${led.appId}); the database is back`)
  return {
    result: 'upgraded',
    ok: true,
    message: `the way back: '${name}' stopped, the database taken back with its newer image (goose ${db.goose ?? '-'} -> ${rec.dbBefore.goose}, node_versions ${rec.dbBefore.nodeVersion ?? '(empty)'}), and '${name}' on ${t.display} leads (app ${led.appId}); the other hosts' instances rejoin as standbys (their upgrade to ${t.display})`,
    outputs: {
      'previous-image': local.image,
      image: t.display,
      leader: name,
      'leader-host': 'local',
      'leader-app-id': led.appId
    }
  }
}
