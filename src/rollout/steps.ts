// The steps the single-node and the pair rollouts share: the new container's standby gate with
// its undo, and what keeps a stopped previous container safe for a rollback (a kept copy of a
// `--rm` leader, restart policy `no`, and the operator's policy given back).
import type { Context } from '../context.js'
import { OperationError } from '../errors.js'
import { startClone } from '../handoff/clone.js'
import { containerName, type ContainerInfo } from '../docker/client.js'
import { failedContainerLogs, standbyReady } from '../handoff/gate-loops.js'
import type { Proven } from '../handoff/gates.js'
import { GateError, type Member } from '../handoff/types.js'
import { readLockState, sameApp } from '../node/lock.js'
import type { JournalWriter } from '../journal/journal.js'
import { SUFFIX_PREVIOUS, type Change, type Prepared, type RolloutRecord } from './plan.js'
import { describeOpening, isOpen, nextOpening } from '../safeguards/window.js'

/** The upgrade window closed while the run waited (host lock, backup, rehearsal, standby): nothing was stopped. */
export class WindowClosed extends Error {}

/**
 * The standby gate failed after the lock had already left the leader (the leader crashed or
 * stalled and the new node took the lease, maybe migrating the DB), or with the leader stopped
 * too (a Docker daemon restart): there is nothing to undo, the way back is the rollback, DB
 * included.
 */
export class LockLeftLeader extends Error {}

/** Whether the leader still holds the lock and the DB is where preflight found it; undefined when the DB does not say. */
async function leaderUntouched(p: Prepared): Promise<boolean | undefined> {
  try {
    const lock = await readLockState(p.link.db, p.link.mode, p.link.config.advisoryLockId)
    const now = await p.link.db.version()
    const before = p.view.dbVersion
    if (now.goose !== before.goose || now.nodeVersion !== before.nodeVersion) return false
    return !lock.holder || sameApp(lock.holder, p.view.lock.holder)
  } catch {
    return undefined
  }
}

/**
 * The standby-ready gate of a new container before any handoff: on failure its logs go to the
 * report, `undo` puts things back as they were (the leader was never touched) and the run ends.
 * The same undo when the upgrade window closed meanwhile: the lock wait, the backup and the
 * rehearsal can take hours, and the first stop is what the window guards.
 */
export async function standbyOrUndo(
  ctx: Context,
  p: Prepared,
  r: RolloutRecord,
  m: Member,
  undo: () => Promise<void>,
  window: Change['window'] = []
): Promise<Member & Proven> {
  let proven: Proven
  try {
    if (!p.view.lock.holder) throw new OperationError('no lock holder was proven in preflight')
    proven = await standbyReady(ctx, p.link, m, p.view.lock.holder, r.knownApps, p.t.standbyMs)
  } catch (e) {
    if (ctx.signal.aborted) throw e // cancelled: the post step repairs from the journal
    await failedContainerLogs(ctx, m)
    // the lock or the DB already moved (seed 7, run 12 of the fault campaign: the leader killed,
    // the standby took the lease and migrated): undoing the standby would leave the old leader on
    // a migrated DB, crash-looping on the version gate. The gate's own sighting counts even when
    // the lease reads free now: a Docker daemon restart (seed 2026, runs 16 and 134) stops both
    // containers after the standby took the lease, which then runs out. Main rolls back itself,
    // whether or not the daemon started the leader again: nothing is left open for the post step.
    const movedTo = e instanceof GateError ? e.lockMovedTo : undefined
    if (movedTo || (await leaderUntouched(p)) === false)
      throw new LockLeftLeader(
        `${(e as Error).message}; the lock or the database had already left '${p.leader.name}', so the standby is not simply removed: the run rolls back`
      )
    // the leader stopped as well, the lock untouched (a Docker daemon restart stops every
    // container and may start none): not a standby to undo but a rollback, which main runs
    // itself rather than leave the journal open for the post step
    if (!(await ctx.docker.inspect(p.leader.info.Id))?.State.Running)
      throw new LockLeftLeader(
        `${(e as Error).message}; '${p.leader.name}' stopped as well (a Docker daemon restart?): the run rolls back`
      )
    await undo()
    r.journal.done('failed')
    throw e
  }
  r.knownApps.add(proven.appId)
  const now = new Date()
  if (window.length && !isOpen(window, now)) {
    await undo()
    r.journal.done('deferred')
    const next = nextOpening(window, now)
    throw new WindowClosed(
      `the upgrade window (${window.map((w) => w.text).join(', ')}) closed before the first stop; ${next ? `it opens ${describeOpening(next, now)}` : 'no window ever opens'}`
    )
  }
  return { ...m, ...proven }
}

/**
 * A stopped copy of a `--rm` leader on its own image (journaled before it is made), with restart
 * policy `no`: it must neither vanish nor be started by a daemon restart while it is the
 * rollback copy.
 */
export async function keepCopy(ctx: Context, info: ContainerInfo, journal: JournalWriter): Promise<Member> {
  const { docker, report } = ctx
  const name = containerName(info) + SUFFIX_PREVIOUS
  // the reference it was created from, when that still names the image it runs
  const image = (await docker.imageInfo(info.Config.Image))?.id === info.Image ? info.Config.Image : info.Image
  journal.step('keep-previous', { name })
  const kept = await startClone(ctx, info, {
    image,
    name,
    ports: 'keep',
    runId: journal.journal.runId,
    role: 'previous',
    start: false,
    // created with it, not updated to it: Podman 4 has no restart-policy update
    restartPolicy: { Name: 'no' }
  })
  journal.step('kept-previous', { id: kept.id })
  report.step(
    'previous kept',
    `'${containerName(info)}' runs with --rm and is deleted when it stops: '${name}', a stopped copy of it, is what a rollback would start`
  )
  return { ...kept, appId: undefined }
}

/** Once the `--rm` leader is gone (its name free again), its kept copy is the previous container. */
export async function previousIsKept(ctx: Context, leader: ContainerInfo, kept: Member): Promise<Member> {
  if (!(await ctx.docker.waitGone(leader.Id, 30_000, ctx.signal)))
    throw new OperationError(`'${containerName(leader)}' runs with --rm but was not removed after its stop`)
  return kept
}

/**
 * A container this run stops is the rollback copy while it is stopped: with restart policy
 * `always` a daemon restart or a reboot would start it (an old binary on a migrated DB). Its
 * policy is `no` from just before its stop; a rollback gives the operator's back.
 */
export async function noRestart(ctx: Context, journal: JournalWriter, info: ContainerInfo): Promise<void> {
  const policy = info.HostConfig.RestartPolicy
  if (!policy?.Name || policy.Name === 'no') return
  journal.step('restart-policy-no', { id: info.Id, policy })
  await ctx.docker.setRestartPolicy(info.Id, { Name: 'no' })
}

/** The operator's restart policy (as inspected before the run) back on a container that leads or waits again. */
export async function restoreRestartPolicy(ctx: Context, id: string, operator: Member['info']): Promise<void> {
  const policy = operator.HostConfig.RestartPolicy
  if (!policy?.Name || policy.Name === 'no') return
  await ctx.docker.setRestartPolicy(id, {
    Name: policy.Name,
    ...(policy.Name === 'on-failure' ? { MaximumRetryCount: policy.MaximumRetryCount ?? 0 } : {})
  })
}
