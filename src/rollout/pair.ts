// A failover pair (the docs' primary and secondary on one DB): the waiting standby is moved
// first, leadership is handed to it, then the old leader is moved and becomes the standby.
// `handoff` moves no image: it only hands over and restarts the old leader as the standby.
import type { Context, OperationResult } from '../context.js'
import { OperationError } from '../errors.js'
import { startClone } from '../handoff/clone.js'
import { describePorts } from '../handoff/container-spec.js'
import { standbyReady } from '../handoff/gate-loops.js'
import { handoff } from '../handoff/take-over.js'
import { memberOf, type Member } from '../handoff/types.js'
import { recover, succeeded } from './outcome.js'
import {
  made,
  openRecord,
  replaceCreated,
  SUFFIX_PREVIOUS,
  type Change,
  type Prepared,
  type RolloutDeps
} from './plan.js'
import { LockLeftLeader, noRestart, restoreRestartPolicy, standbyOrUndo } from './steps.js'

/** The rollout of a failover pair; `deps` are the backup before it and the rollback after a failure. */
export async function rollPair(ctx: Context, p: Prepared, ch: Change, deps: RolloutDeps): Promise<OperationResult> {
  const { docker, report } = ctx
  const { leader, link, t, view } = p
  const other = p.other!
  for (const c of [leader, other])
    if (c.info.HostConfig.AutoRemove)
      throw new OperationError(
        `'${c.name}' runs with --rm: Docker deletes it when it stops, so a pair cannot keep it for a rollback; recreate it without --rm first`
      )
  const previous: Member = memberOf(leader.info, view.lock.holder)
  const oldStandby: Member = memberOf(other.info, other.session?.appId)
  const r = openRecord(ctx, p, ch, previous, [{ member: oldStandby, name: other.name }])
  const { journal, runId, gaps } = r
  await deps.backup(ctx, p, ch, r)
  const replaceImage = ch.operation !== 'handoff'
  let next: Member = oldStandby
  // 1. The waiting standby gets the new image (or a fresh process): the leader is untouched.
  if (replaceImage) {
    await noRestart(ctx, journal, other.info)
    journal.step('standby-stop', { id: other.info.Id })
    report.step(
      `stop ${other.name}`,
      'waiting standby (it exits 1 "failed to take initial lease: stopped", as the node does)'
    )
    await docker.stop(other.info.Id, t.stopS)
    journal.step('rename-standby-previous', { id: other.info.Id, name: other.name + SUFFIX_PREVIOUS })
    await docker.rename(other.info.Id, other.name + SUFFIX_PREVIOUS)
    oldStandby.name = other.name + SUFFIX_PREVIOUS
    journal.step('standby-create', { name: other.name })
    next = await startClone(ctx, other.info, {
      image: ch.createRef,
      imageId: ch.imageId,
      name: other.name,
      ports: 'keep',
      runId,
      role: 'standby',
      onCreated: (m) => made(r, m)
    })
    replaceCreated(r, next)
    journal.step('standby-started', { id: next.id })
    report.step('standby started', `'${next.name}' on ${ch.createRef} (${describePorts(next.info)})`)
    const fresh = next
    try {
      next = await standbyOrUndo(
        ctx,
        p,
        r,
        fresh,
        async () => {
          // the leader was never touched: put the old standby back
          await docker.remove(fresh.id)
          await docker.rename(other.info.Id, other.name)
          await restoreRestartPolicy(ctx, other.info.Id, other.info)
          await docker.start(other.info.Id)
          report.step(
            'standby restored',
            `'${other.name}' back on ${other.image}; '${leader.name}' was never touched (gap 0)`
          )
        },
        ch.window
      )
    } catch (e) {
      // the lock left the leader before the handoff: the way back is the rollback, DB included
      if (e instanceof LockLeftLeader) return recover(ctx, p, ch, r, e, deps.rollback)
      throw e
    }
  }
  try {
    // 2. Hand off to it.
    await noRestart(ctx, journal, leader.info)
    journal.step('handoff', { from: leader.info.Id, to: next.id })
    const first = await handoff(ctx, link, previous, next, t)
    gaps.push(first.gapMs ?? NaN)
    const nextLeader = first.leader
    // 3. The old leader becomes the standby (recreated on the new image, or restarted).
    let newStandby: Member
    const known = new Set((await link.db.nodeSessions()).map((s) => s.appId))
    if (replaceImage) {
      journal.step('rename-previous', { id: leader.info.Id, name: leader.name + SUFFIX_PREVIOUS })
      await docker.rename(leader.info.Id, leader.name + SUFFIX_PREVIOUS)
      previous.name = leader.name + SUFFIX_PREVIOUS
      journal.step('final-create', { name: leader.name })
      newStandby = await startClone(ctx, leader.info, {
        image: ch.createRef,
        imageId: ch.imageId,
        name: leader.name,
        ports: 'keep',
        runId,
        role: 'final',
        onCreated: (m) => made(r, m)
      })
      replaceCreated(r, newStandby)
    } else {
      journal.step('restart-previous', { id: leader.info.Id })
      await restoreRestartPolicy(ctx, leader.info.Id, leader.info)
      await docker.start(leader.info.Id)
      newStandby = memberOf(leader.info)
    }
    report.step('standby started', `'${leader.name}' waits for the lock`)
    const standbyWaiting = {
      ...newStandby,
      ...(await standbyReady(ctx, link, newStandby, nextLeader.appId, known, t.standbyMs))
    }
    let finalLeader: Member = nextLeader
    // 4. Hand back to the primary when asked.
    if (ch.preferPrimary && leader.name === p.node.container) {
      journal.step('handoff-back', { from: next.id, to: newStandby.id })
      const back = await handoff(ctx, link, nextLeader, standbyWaiting, t)
      gaps.push(back.gapMs ?? NaN)
      const known2 = new Set((await link.db.nodeSessions()).map((s) => s.appId))
      await docker.start(next.id)
      await standbyReady(ctx, link, next, back.leader.appId, known2, t.standbyMs)
      finalLeader = back.leader
    }
    if (replaceImage) {
      journal.step('remove-previous', { ids: [leader.info.Id, other.info.Id] })
      await docker.remove(leader.info.Id)
      await docker.remove(other.info.Id)
    }
    report.step(
      'done',
      `'${finalLeader.name}' leads on ${ch.display}; '${finalLeader === nextLeader ? leader.name : other.name}' waits as the standby`
    )
    return succeeded(p, ch, r, finalLeader.name, `'${finalLeader.name}' leads on ${ch.display}`)
  } catch (e) {
    return recover(ctx, p, ch, r, e, deps.rollback)
  }
}
