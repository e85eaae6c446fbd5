// The three ways a single node's rollout finishes once its standby waits on the new image
// (chosen once by finishOf, see plan.ts). Each leaves the new container leading under the node's
// name, or throws for the rollout to roll back.
import type { Context } from '../context.js'
import { startClone } from '../clone.js'
import { describePorts } from '../container-spec.js'
import { standbyReady } from '../gate-loops.js'
import type { Proven } from '../gates.js'
import { handoff } from '../handoff.js'
import type { Member } from '../handoff-types.js'
import { SUFFIX_NEXT, SUFFIX_PREVIOUS, type Change, type Finish, type Prepared } from './plan.js'
import { made, replaceCreated, type RolloutRecord } from './record.js'
import { previousIsKept } from './steps.js'

/** A single node's run from the moment its standby waits for the lock. */
interface SingleRun {
  ctx: Context
  p: Prepared
  ch: Change
  r: RolloutRecord
  /** the new container on spare ports (or on the leader's own, for `rename`) */
  standby: Member
  /** the same, proven waiting for the lock */
  waiting: Member & Proven
  /** the stopped copy of a `--rm` leader */
  kept?: Member
}

/** The old leader leaves the node's name: its kept copy once it is gone (`--rm`), else renamed. */
async function retirePrevious(s: SingleRun, journaled: boolean): Promise<void> {
  const { ctx, p, r, kept } = s
  const leader = p.leader.info
  if (kept) {
    r.previous = await previousIsKept(ctx, leader, kept)
    return
  }
  const name = p.leader.name + SUFFIX_PREVIOUS
  if (journaled) r.journal.step('rename-previous', { id: leader.Id, name })
  await ctx.docker.rename(leader.Id, name)
  r.previous.name = name
}

/** The handoff from the leader to the waiting standby, then the leader leaves its name. */
async function firstHandoff(s: SingleRun): Promise<void> {
  const { ctx, p, r } = s
  r.journal.step('handoff', { from: p.leader.info.Id, to: s.standby.id })
  r.gaps.push((await handoff(ctx, p.link, r.previous, s.waiting, p.t)).gapMs ?? NaN)
  await retirePrevious(s, true)
}

/** The standby already serves on the leader's ports: it takes the name. */
async function rename(s: SingleRun): Promise<void> {
  await firstHandoff(s)
  s.r.journal.step('rename-standby', { id: s.standby.id, name: s.p.leader.name })
  await s.ctx.docker.rename(s.standby.id, s.p.leader.name)
}

/**
 * Verify-then-swap (the default, on the bench's numbers): the new image proved it opens its DB
 * session and waits; the standby goes, and one prepared stop -> start puts the new container on
 * the original ports.
 */
async function swap(s: SingleRun): Promise<void> {
  const { ctx, p, ch, r, standby } = s
  const { docker, report } = ctx
  const name = p.leader.name
  r.journal.step('standby-verified', { id: standby.id })
  await docker.stop(standby.id, p.t.stopS)
  await docker.remove(standby.id)
  report.step(
    'standby verified and removed',
    `'${standby.name}' waited for the lock on ${ch.createRef}; the swap follows`
  )
  r.journal.step('final-create', { name: name + SUFFIX_NEXT })
  const final = await startClone(ctx, p.leader.info, {
    image: ch.createRef,
    name: name + SUFFIX_NEXT,
    ports: 'keep',
    runId: r.runId,
    role: 'final',
    start: false,
    onCreated: (m) => made(r, m)
  })
  replaceCreated(r, final)
  r.journal.step('swap', { from: p.leader.info.Id, to: final.id })
  const prepare = async () => {
    await retirePrevious(s, false)
    await docker.rename(final.id, name)
    final.name = name
  }
  r.gaps.push((await handoff(ctx, p.link, r.previous, final, p.t, { prepare })).gapMs ?? NaN)
}

/** A second handoff, from the standby on spare ports to a new container on the original ports. */
async function secondHandoff(s: SingleRun): Promise<void> {
  const { ctx, p, ch, r, standby, waiting } = s
  await firstHandoff(s)
  r.journal.step('final-create', { name: p.leader.name })
  const final = await startClone(ctx, p.leader.info, {
    image: ch.createRef,
    name: p.leader.name,
    ports: 'keep',
    runId: r.runId,
    role: 'final',
    onCreated: (m) => made(r, m)
  })
  replaceCreated(r, final)
  r.journal.step('final-started', { id: final.id })
  ctx.report.step('final container started', `'${final.name}' on the original ports (${describePorts(final.info)})`)
  const finalWaiting = {
    ...final,
    ...(await standbyReady(ctx, p.link, final, waiting.appId, r.knownApps, p.t.standbyMs))
  }
  r.journal.step('handoff-2', { from: standby.id, to: final.id })
  r.gaps.push((await handoff(ctx, p.link, waiting, finalWaiting, p.t)).gapMs ?? NaN)
  r.journal.step('remove-interim', { id: standby.id })
  await ctx.docker.remove(standby.id)
}

export const FINISHES: Record<Finish, (s: SingleRun) => Promise<void>> = {
  rename,
  swap,
  'second-handoff': secondHandoff
}
