// A single node: a temporary standby on the new image proves it waits for the lock (the leader
// untouched until then), then one of the three finishes (chosen once by finishOf, see plan.ts)
// puts it in the leader's place, under the node's name; any failure after the first handoff
// rolls back. Each step is journaled before it is taken.
import type { Context, OperationResult } from '../context.js'
import { createPortHolder, startClone } from '../handoff/clone.js'
import { currentLayout, HOLDER_SUFFIX, joinedView, ownView } from '../handoff/port-holder.js'
import { describePorts, publishedPorts } from '../handoff/container-spec.js'
import type { ContainerInfo } from '../docker/client.js'
import { formatMs } from '../duration.js'
import { standbyReady } from '../handoff/gate-loops.js'
import type { Proven } from '../handoff/gates.js'
import { handoff } from '../handoff/take-over.js'
import { memberOf, runOf, type Member } from '../handoff/types.js'
import { ReadinessWatcher } from '../handoff/watch.js'
import { recover, succeeded } from './outcome.js'
import {
  finishOf,
  made,
  openRecord,
  replaceCreated,
  SUFFIX_NEXT,
  SUFFIX_PREVIOUS,
  type Change,
  type Finish,
  type Prepared,
  type RolloutDeps,
  type RolloutRecord
} from './plan.js'
import { keepCopy, LockLeftLeader, noRestart, previousIsKept, standbyOrUndo } from './steps.js'

/** The node's HTTP port as published on the host (0.0.0.0 probed on 127.0.0.1). */
function publishedUrl(info: ContainerInfo, httpPort: number): string | undefined {
  const b = publishedPorts(info)[`${httpPort}/tcp`]?.[0]
  if (!b?.HostPort) return undefined
  const ip =
    !b.HostIp || b.HostIp === '0.0.0.0'
      ? '127.0.0.1'
      : b.HostIp === '::'
        ? '[::1]'
        : b.HostIp.includes(':')
          ? `[${b.HostIp}]`
          : b.HostIp
  return `http://${ip}:${b.HostPort}`
}

/** The rollout of a single node; `deps` are the backup before it and the rollback after a failure. */
export async function rollSingle(ctx: Context, p: Prepared, ch: Change, deps: RolloutDeps): Promise<OperationResult> {
  const { docker, report } = ctx
  const { leader, link, view } = p
  const name = leader.name
  // a downgrade takes the DB down between the leader's stop and the older image's start: only the
  // swap has that moment (a standby waiting on the lock would take it at once and hit the gate)
  const finish: Finish = ch.downgrade ? 'swap' : finishOf(leader.info, ch.finish, p.layout)
  const r = openRecord(ctx, p, ch, memberOf(leader.info, view.lock.holder))
  await deps.backup(ctx, p, ch, r)
  // A `docker run --rm` leader is deleted by its own stop: a stopped copy of it, made while it
  // still leads, is the previous container a rollback starts.
  const kept = leader.info.HostConfig.AutoRemove ? await keepCopy(ctx, leader.info, r.journal) : undefined
  // Standby: fail here and the leader was never touched.
  r.journal.step('standby-create', { name: name + SUFFIX_NEXT })
  const standby = await startClone(ctx, leader.info, {
    image: ch.createRef,
    imageId: ch.imageId,
    name: name + SUFFIX_NEXT,
    ports: 'remap',
    runId: r.runId,
    role: 'next',
    // it takes the node's name only when there is no second container after it (docs/compose.md)
    asService: finish === 'rename',
    onCreated: (m) => made(r, m)
  })
  replaceCreated(r, standby)
  r.journal.step('standby-started', { id: standby.id })
  report.step('standby started', `'${standby.name}' (${describePorts(standby.info)})`)
  let waiting: Awaited<ReturnType<typeof standbyOrUndo>>
  try {
    waiting = await standbyOrUndo(
      ctx,
      p,
      r,
      standby,
      async () => {
        await docker.remove(standby.id)
        if (kept) await docker.remove(kept.id)
        report.step('standby removed', `'${name}' was never touched (gap 0)`)
      },
      ch.window
    )
  } catch (e) {
    // the lock left the leader before the handoff: the way back is the rollback, DB included
    if (e instanceof LockLeftLeader) {
      // a `--rm` leader a daemon restart stopped is deleted: its kept copy is what comes back
      if (kept && !(await docker.inspect(leader.info.Id))?.State.Running)
        r.previous = await previousIsKept(ctx, leader.info, kept)
      const created = kept && r.previous !== kept ? [...r.created, kept] : r.created
      return recover(ctx, p, ch, { ...r, created }, e, deps.rollback)
    }
    throw e
  }
  // In the docs' layout clients use the published port, which a second handoff leaves dark
  // from the first handoff to the second: measure it as they see it.
  const portUrl = finish !== 'rename' ? publishedUrl(p.owner ?? leader.info, link.config.httpPort) : undefined
  const portWatch = portUrl ? new ReadinessWatcher(runOf(link).observers.of(portUrl)).start() : undefined
  const reportPort = async () => {
    await portWatch?.stop()
    const g = portWatch?.longestGap()
    if (g !== undefined)
      report.fact(
        'Published port',
        `${portUrl}: longest time without a ready answer ${formatMs(g)} (probed fast around each handoff, slowly between)`
      )
  }
  try {
    await noRestart(ctx, r.journal, leader.info)
    await FINISHES[finish]({ ctx, p, ch, r, standby, waiting, kept, deps })
  } catch (e) {
    await reportPort()
    if (kept && r.previous !== kept && !(await docker.inspect(leader.info.Id))?.State.Running)
      r.previous = await previousIsKept(ctx, leader.info, kept)
    // a kept copy that is not the previous container (the leader never stopped) goes with the rest
    const created = kept && r.previous !== kept ? [...r.created, kept] : r.created
    return recover(ctx, p, ch, { ...r, created }, e, deps.rollback)
  }
  await reportPort()
  r.journal.step('remove-previous', { id: leader.info.Id, ...(kept ? { kept: kept.id } : {}) })
  await docker.remove(leader.info.Id)
  if (finish === 'from-holder' && p.owner) {
    r.journal.step('remove-holder', { id: p.owner.Id })
    await docker.remove(p.owner.Id)
  }
  if (kept) {
    await docker.remove(kept.id)
    report.note(
      `'${name}' ran with --rm; its replacement does not (Docker cannot set it on an existing container, and a stopped node must stay for a rollback).`
    )
  }
  report.step('done', `'${name}' leads on ${ch.display}`)
  const layout = await currentLayout(docker, name)
  const res = succeeded(
    p,
    ch,
    r,
    name,
    `'${name}' ${ch.downgrade ? `downgraded from ${leader.image} (${ch.downgrade.from}) to` : ch.operation === 'upgrade' ? `upgraded from ${leader.image} to` : 'now runs a fresh process of'} ${ch.display}${ch.downgrade ? `, the database at goose ${ch.downgrade.goose} and node_versions ${ch.downgrade.to}` : ''}${finish === 'to-holder' ? `, in the port-holder layout ('${name}${HOLDER_SUFFIX}' holds its ports)` : finish === 'from-holder' ? ', back on its own network and ports' : ''}`
  )
  return layout ? { ...res, outputs: { ...res.outputs, layout } } : res
}

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
  deps: RolloutDeps
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
async function swap(s: SingleRun, via?: SwapVia): Promise<void> {
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
  const holder = await via?.before?.()
  r.journal.step('final-create', { name: name + SUFFIX_NEXT })
  const final = await startClone(ctx, holder ? joinedView(p.leader.info, holder.id) : (via?.from ?? p.leader.info), {
    image: ch.createRef,
    imageId: ch.imageId,
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
    if (ch.downgrade) {
      r.journal.step('downgrade-db', { goose: ch.downgrade.goose, to: ch.downgrade.to })
      if (!s.deps.downgradeDb) throw new Error('a downgrade without its database step')
      await s.deps.downgradeDb(ctx, p, ch.downgrade)
    }
    await retirePrevious(s, false)
    await docker.rename(final.id, name)
    final.name = name
    await via?.atSwap?.(holder)
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
    imageId: ch.imageId,
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

/** How a layout-changing swap makes its new container and what it does at the swap. */
interface SwapVia {
  /** the config the new container is cloned from (default: the leader's) */
  from?: ContainerInfo
  /** before the new container is made: the port holder it joins */
  before?: () => Promise<Member>
  /** after the old leader stopped and the renames, before the new container starts */
  atSwap?: (holder?: Member) => Promise<void>
}

/**
 * Into the port-holder layout (docs/port-holder.md): the swap, with a new holder taking the
 * leader's network and ports at the swap and the new container joined to it.
 */
async function toHolder(s: SingleRun): Promise<void> {
  const { ctx, p, ch, r } = s
  await swap(s, {
    before: async () => {
      const name = p.leader.name + HOLDER_SUFFIX
      r.journal.step('holder-create', { name })
      const h = await createPortHolder(ctx, p.leader.info, {
        image: ch.createRef,
        imageId: ch.imageId,
        name,
        runId: r.runId,
        onCreated: (m) => made(r, m)
      })
      ctx.report.step('port holder created', `'${name}' (${describePorts(h.info)}), started at the swap`)
      return h
    },
    atSwap: async (h) => {
      r.journal.step('holder-start', { id: h!.id })
      await ctx.docker.start(h!.id)
    }
  })
}

/** Out of the port-holder layout: the swap onto the holder's network and ports, the holder stopped at the swap. */
async function fromHolder(s: SingleRun): Promise<void> {
  const { ctx, p, r } = s
  const owner = p.owner!
  await swap(s, {
    from: ownView(p.leader.info, owner),
    atSwap: async () => {
      r.journal.step('holder-stop', { id: owner.Id })
      await ctx.docker.stop(owner.Id, 1)
    }
  })
}

const FINISHES: Record<Finish, (s: SingleRun) => Promise<void>> = {
  rename,
  swap: (s) => swap(s),
  'second-handoff': secondHandoff,
  'to-holder': toHolder,
  'from-holder': fromHolder
}
