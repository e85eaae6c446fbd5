// The rollouts every operation is made of: a single node moved through a temporary standby
// (one or two handoffs by layout), or a failover pair moved through its own standby. Each
// step is journaled before it is taken; any failure after the first handoff rolls back.
import type { Context, OperationResult } from './context.js'
import { OperationError } from './context.js'
import { publishedPorts } from './container-spec.js'
import {
  describePorts,
  GateError,
  handoff,
  memberOf,
  newRun,
  runOf,
  standbyReady,
  startClone,
  timeouts,
  type Member,
  type NodeLink,
  type Timeouts
} from './handoff.js'
import { formatMs } from './duration.js'
import type { Proven } from './gates.js'
import { describeChecks } from './health.js'
import { ReadinessWatcher } from './watch.js'
import { containerName, type ContainerInfo } from './docker.js'
import { inspectNode, requireHealthUrl, requireLeader, type NodeContainer, type NodeView } from './node.js'
import { nodeNames } from './node-db.js'
import {
  describeSessions,
  notDroppableMessage,
  restoreRestartPolicy,
  rollback,
  schemasNotDroppable
} from './rollback.js'
import { foreignSessions } from './foreign-sessions.js'
import { JournalWriter, journalPath, nodeKey, readJournal, withHostLock } from './state.js'
import { backupBeforeUpgrade } from './backup-step.js'
import { rehearseMigration } from './rehearsal.js'

export const SUFFIX_NEXT = '-rollout-next'
export const SUFFIX_PREVIOUS = '-rollout-previous'

/** What is being rolled out: a new image (upgrade) or the same one (handoff, restart). */
export interface Change {
  operation: 'upgrade' | 'handoff' | 'restart'
  /** reference to create containers from */
  createRef: string
  /** digest-qualified, for outputs */
  display: string
  /** take the pre-upgrade backup (upgrade only) */
  backup: boolean
}

interface Prepared {
  view: NodeView
  leader: NodeContainer
  /** the pair's other container, proven waiting for the lock */
  other?: NodeContainer
  link: NodeLink
  t: Timeouts
}

/**
 * Host lock, interrupted-run check, node inspection and leader proof; then `fn`. Everything
 * before `fn` only reads.
 */
export async function withNode(ctx: Context, fn: (p: Prepared) => Promise<OperationResult>): Promise<OperationResult> {
  const { inputs, docker, report } = ctx
  return withHostLock(ctx, async () => {
    const key = nodeKey(inputs)
    const prior = readJournal(inputs.stateDir, key)
    if (prior && prior.phase === 'in-progress')
      throw new OperationError(
        `An interrupted ${prior.operation} (run ${prior.runId}, started ${prior.startedAt}) is recorded in ${journalPath(inputs.stateDir, key)}; run operation 'repair' first`
      )
    const names = nodeNames(inputs)
    for (const n of names) {
      for (const suffix of [SUFFIX_NEXT, SUFFIX_PREVIOUS]) {
        if (await docker.inspect(n + suffix))
          throw new OperationError(
            `A container '${n + suffix}' from an earlier run exists; run operation 'repair' first`
          )
      }
    }
    const view = await inspectNode(ctx, names)
    try {
      const leader = requireLeader(view)
      if (view.mode === 'none')
        throw new OperationError(
          `'${leader.name}' runs with lock mode 'none': without a DB lock no zero-downtime handoff is possible; enable [Database.Lock] (v2) or DATABASE_LOCKING_MODE=lease`
        )
      if (!inputs.standby && leader.name !== inputs.container)
        throw new OperationError(`Container '${inputs.container}' is not the leader`)
      // A health URL that does not reach the node would leave every gate blind.
      requireHealthUrl(view, leader, inputs.healthUrl)
      let other: NodeContainer | undefined
      if (inputs.standby) {
        other = view.containers.find((c) => c !== leader)!
        // The pair's standby must be alive and waiting before anything changes.
        if (!other.info.State.Running)
          throw new OperationError(
            `Input 'standby': '${other.name}' is ${other.info.State.Status} (exit code ${other.info.State.ExitCode}), not waiting for the lock; start it (or fix it) first`
          )
        if (!other.session)
          throw new OperationError(
            `Input 'standby': '${other.name}' is running but has no DB session on the node's database: it is not waiting for the lock`
          )
      }
      report.fact(
        'Node',
        view.containers
          .map(
            (c) =>
              `${c.name}${c === leader ? ' (leader)' : ' (standby)'}: ${c.image}${c.digest ? ` (${c.digest})` : ''}`
          )
          .join('; ') + `, version ${view.version ?? '?'}`
      )
      // A rollback that restores must be able to replace every schema: checked before anything changes.
      if (inputs.operation === 'upgrade' && inputs.rollback && inputs.dbRollback === 'restore') {
        const blocked = await schemasNotDroppable(view.db)
        if (blocked.length)
          throw new OperationError(
            `Input 'db-rollback': 'restore' cannot work: ${notDroppableMessage((await view.db.query<{ u: string }>('SELECT current_user AS u'))[0].u, blocked)}`
          )
      }
      // A node of this DB on another host can win a handoff's release (or take the lease
      // during a DB rollback); it is not refused here, as a remote standby is a valid layout.
      const foreign = await foreignSessions(ctx, view)
      if (foreign.length)
        report.note(
          `Node sessions on the database belong to no container on this host (${describeSessions(foreign)}): a node on another host may take the lock during a handoff, and a DB rollback waits for it to stop.`
        )
      report.fact(
        'Lock',
        `${view.mode} (${view.config.lockModeSource}); lease ${formatMs(view.config.leaseDurationMs)}, refresh ${formatMs(view.config.leaseRefreshMs)}`
      )
      report.fact(
        'Database',
        `goose ${view.dbVersion.goose ?? '-'}, node_versions ${view.dbVersion.nodeVersion ?? '-'}`
      )
      // /health is evidence, not a veto: what already fails on the leader may still fail after
      const failingBefore = leader.health?.checks
      report.fact(
        'Health before',
        failingBefore === undefined
          ? `/health of '${leader.name}' not read (${leader.health?.health ?? leader.health?.error ?? 'no answer'}): failing checks are not compared`
          : failingBefore.length
            ? `failing on '${leader.name}' before the change (allowed to fail after it): ${describeChecks(failingBefore)}`
            : `no check failing on '${leader.name}'`
      )
      const link: NodeLink = {
        db: view.db,
        config: view.config,
        mode: view.mode,
        databaseUrl: view.databaseUrl,
        run: newRun(failingBefore)
      }
      try {
        return await fn({ view, leader, other, link, t: timeouts(ctx, view.config, leader.info) })
      } finally {
        const b = runOf(link).observers.budget
        if (b.total)
          report.fact(
            'HTTP requests',
            `${b.total} to the node's HTTP server, at most ${b.maxInWindow()} in any 60 s window (budget ${b.limit}; the node allows 1000 a minute per client address)`
          )
      }
    } finally {
      await view.db.close()
    }
  })
}

export function planText(
  p: Prepared,
  ch: Change,
  preferPrimary: boolean,
  finish: 'swap' | 'second-handoff' = 'swap'
): string {
  const { leader, other } = p
  if (other) {
    const steps =
      ch.operation === 'handoff'
        ? [`hand off from '${leader.name}' to the waiting '${other.name}'`, `restart '${leader.name}' as the standby`]
        : [
            `recreate the waiting '${other.name}' on ${ch.createRef}`,
            `hand off to it`,
            `recreate '${leader.name}' on ${ch.createRef} as the standby`
          ]
    if (preferPrimary && leader.name === p.view.containers[0].name) steps.push(`hand back to '${leader.name}'`)
    return steps.join(', then ')
  }
  const twoHandoffs =
    leader.info.HostConfig.NetworkMode !== 'host' && Object.keys(publishedPorts(leader.info)).length > 0
  if (twoHandoffs && finish === 'swap')
    return `verify ${ch.createRef} as a waiting standby '${leader.name}${SUFFIX_NEXT}' on spare ports, remove it, then stop '${leader.name}' and start the new container in its place on the original ports (${describePorts(leader.info)})`
  return twoHandoffs
    ? `start '${leader.name}${SUFFIX_NEXT}' on ${ch.createRef} with ports remapped, hand off to it, then start '${leader.name}' on the original ports (${describePorts(leader.info)}) and hand off again`
    : `start '${leader.name}${SUFFIX_NEXT}' on ${ch.createRef} (${describePorts(leader.info)}), hand off to it, then give it the name '${leader.name}'`
}

function openJournal(ctx: Context, p: Prepared, ch: Change): JournalWriter {
  const j = new JournalWriter(journalPath(ctx.inputs.stateDir, nodeKey(ctx.inputs)), {
    runId: Date.now().toString(36),
    operation: ch.operation,
    container: ctx.inputs.container,
    plan: {
      leaderId: p.leader.info.Id,
      leaderName: p.leader.name,
      otherId: p.other?.info.Id,
      otherName: p.other?.name,
      leaderImage: p.leader.image,
      target: ch.createRef,
      dbBefore: p.view.dbVersion,
      mode: p.view.mode,
      failingBefore: p.link.run?.failingBefore
    }
  })
  ctx.onJournal?.(j.journal.runId)
  return j
}

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

function gapsOut(gaps: number[]): string | undefined {
  const g = gaps.filter((x) => Number.isFinite(x))
  return g.length ? String(Math.max(...g)) : undefined
}

async function failedContainerLogs(ctx: Context, m: Member, e?: unknown): Promise<void> {
  if (e instanceof GateError && e.containerId && e.containerId !== m.id) return
  const text = await ctx.docker.logs(m.id, 40)
  if (text.trim()) ctx.report.logs.push({ container: m.name, text })
}

/**
 * The standby-ready gate of a new container before any handoff: on failure its logs go to the
 * report, `undo` puts things back as they were (the leader was never touched) and the run ends.
 */
async function standbyOrUndo(
  ctx: Context,
  p: Prepared,
  journal: JournalWriter,
  m: Member,
  knownApps: Set<string>,
  undo: () => Promise<void>
): Promise<Member & Proven> {
  let proven: Proven
  try {
    if (!p.view.lock.holder) throw new OperationError('no lock holder was proven in preflight')
    proven = await standbyReady(ctx, p.link, m, p.view.lock.holder, knownApps, p.t.standbyMs)
  } catch (e) {
    if (ctx.signal.aborted) throw e // cancelled: the post step repairs from the journal
    await failedContainerLogs(ctx, m)
    // the leader stopped as well (a Docker daemon restart stops every container and may start
    // none): not a standby to undo but a rollback, run from the journal by the post step or repair
    if (!(await ctx.docker.inspect(p.leader.info.Id))?.State.Running) throw e
    await undo()
    journal.done('failed')
    throw e
  }
  knownApps.add(proven.appId)
  return { ...m, ...proven }
}

/** The verified pre-upgrade backup (journaled), when the change and the inputs ask for one. */
async function preUpgradeBackup(
  ctx: Context,
  p: Prepared,
  ch: Change,
  journal: JournalWriter
): Promise<string | undefined> {
  if (!ch.backup || !ctx.inputs.backup) return undefined
  journal.step('backup')
  const backupFile = await backupBeforeUpgrade(ctx, p.view, p.leader)
  journal.plan({ backupFile })
  if (ctx.inputs.rehearseMigration && ch.operation === 'upgrade') {
    // on a copy of the database, before anything of the node is touched
    journal.step('rehearsal')
    try {
      await rehearseMigration(ctx, p.view, p.leader, backupFile, ch.createRef)
    } catch (e) {
      if (!ctx.signal.aborted) journal.done('failed')
      throw e
    }
  }
  return backupFile
}

const done = (ch: Change) => (ch.operation === 'upgrade' ? 'upgraded' : 'ok') as 'upgraded' | 'ok'

/** Rolls back after a failure past the first handoff, or says exactly where the node is. */
async function recover(
  ctx: Context,
  p: Prepared,
  ch: Change,
  journal: JournalWriter,
  e: unknown,
  created: Member[],
  previous: Member,
  others: Array<{ member: Member; name: string }>,
  backupFile: string | undefined,
  gaps: number[]
): Promise<OperationResult> {
  if (ctx.signal.aborted) throw e // cancelled: the post step repairs from the journal
  const reason = e instanceof Error ? e.message : String(e)
  for (const m of created) await failedContainerLogs(ctx, m, e)
  if (!ctx.inputs.rollback) {
    journal.done('failed')
    throw new OperationError(
      `${reason}. Rollback is off (input 'rollback: false'): the node is left as it is; the previous container is kept stopped as '${previous.name}'`
    )
  }
  journal.step('rollback', { reason })
  try {
    await rollback(
      ctx,
      p.link,
      {
        name: p.leader.name,
        previous,
        others,
        created,
        newImage: ch.createRef,
        dbBefore: p.view.dbVersion,
        backupFile
      },
      p.t,
      reason
    )
  } catch (re) {
    journal.step('rollback-failed', { reason: (re as Error).message })
    throw new OperationError(
      `${ch.operation} failed (${reason}) and the rollback failed too: ${(re as Error).message}. Run operation 'repair' after fixing the cause; the journal is ${journal.path}`
    )
  }
  journal.done('rolled-back')
  return {
    result: 'rolled-back',
    ok: false,
    message: `${ch.operation} to ${ch.display} failed (${reason}); rolled back: '${p.leader.name}' leads on ${p.leader.image}`,
    outputs: {
      'previous-image': p.leader.image,
      image: p.leader.image,
      leader: p.leader.name,
      'leader-gap-ms': gapsOut(gaps)
    }
  }
}

/**
 * The containers a run created, each journaled and listed the moment it exists: one whose
 * start fails is still removed by a rollback or repair, and never holds a name they need.
 */
function tracked(journal: JournalWriter): {
  created: Member[]
  made: (m: Member) => void
  replaceCreated: (m: Member) => void
} {
  const created: Member[] = []
  return {
    created,
    made: (m) => {
      created.push(m)
      journal.step('created', { id: m.id, name: m.name })
    },
    // the started container's fuller view replaces the one recorded at create
    replaceCreated: (m) => {
      const i = created.findIndex((c) => c.id === m.id)
      if (i >= 0) created[i] = m
      else created.push(m)
    }
  }
}

/**
 * A stopped copy of a `--rm` leader on its own image (journaled before it is made), with restart
 * policy `no`: it must neither vanish nor be started by a daemon restart while it is the
 * rollback copy.
 */
async function keepCopy(ctx: Context, info: ContainerInfo, journal: JournalWriter): Promise<Member> {
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
    start: false
  })
  await docker.setRestartPolicy(kept.id, { Name: 'no' })
  journal.step('kept-previous', { id: kept.id })
  report.step(
    'previous kept',
    `'${containerName(info)}' runs with --rm and is deleted when it stops: '${name}', a stopped copy of it, is what a rollback would start`
  )
  return { ...kept, appId: undefined }
}

/** Once the `--rm` leader is gone (its name free again), its kept copy is the previous container. */
async function previousIsKept(ctx: Context, leader: ContainerInfo, kept: Member): Promise<Member> {
  if (!(await ctx.docker.waitGone(leader.Id, 30_000, ctx.signal)))
    throw new OperationError(`'${containerName(leader)}' runs with --rm but was not removed after its stop`)
  return kept
}

/**
 * A container this run stops is the rollback copy while it is stopped: with restart policy
 * `always` a daemon restart or a reboot would start it (an old binary on a migrated DB). Its
 * policy is `no` from just before its stop; a rollback gives the operator's back.
 */
async function noRestart(ctx: Context, journal: JournalWriter, info: ContainerInfo): Promise<void> {
  const policy = info.HostConfig.RestartPolicy
  if (!policy?.Name || policy.Name === 'no') return
  journal.step('restart-policy-no', { id: info.Id, policy })
  await ctx.docker.setRestartPolicy(info.Id, { Name: 'no' })
}

/** A single node: temporary standby, handoff, then (docs layout) a second handoff onto the original name and ports. */
export async function rollSingle(ctx: Context, p: Prepared, ch: Change): Promise<OperationResult> {
  const { docker, report, inputs } = ctx
  const { leader, link, t, view } = p
  const name = leader.name
  const journal = openJournal(ctx, p, ch)
  const runId = journal.journal.runId
  const twoHandoffs =
    leader.info.HostConfig.NetworkMode !== 'host' && Object.keys(publishedPorts(leader.info)).length > 0
  const knownApps = new Set(view.lock.sessions.map((s) => s.appId))
  let previous: Member = memberOf(leader.info, view.lock.holder)
  const { created, made, replaceCreated } = tracked(journal)
  const backupFile = await preUpgradeBackup(ctx, p, ch, journal)
  // A `docker run --rm` leader is deleted by its own stop: a stopped copy of it, made while it
  // still leads, is the previous container a rollback starts.
  const kept = leader.info.HostConfig.AutoRemove ? await keepCopy(ctx, leader.info, journal) : undefined
  // Standby: fail here and the leader was never touched.
  journal.step('standby-create', { name: name + SUFFIX_NEXT })
  const standby = await startClone(ctx, leader.info, {
    image: ch.createRef,
    name: name + SUFFIX_NEXT,
    ports: 'remap',
    runId,
    role: 'next',
    // it takes the node's name only when there is no second container after it (docs/compose.md)
    asService: !twoHandoffs,
    onCreated: made
  })
  replaceCreated(standby)
  journal.step('standby-started', { id: standby.id })
  report.step('standby started', `'${standby.name}' (${describePorts(standby.info)})`)
  const waiting = await standbyOrUndo(ctx, p, journal, standby, knownApps, async () => {
    await docker.remove(standby.id)
    if (kept) await docker.remove(kept.id)
    report.step('standby removed', `'${name}' was never touched (gap 0)`)
  })
  const gaps: number[] = []
  const swap = twoHandoffs && inputs.finish === 'swap'
  // In the docs' layout clients use the published port, which a second handoff leaves dark
  // from the first handoff to the second: measure it as they see it.
  const portUrl = twoHandoffs ? publishedUrl(leader.info, link.config.httpPort) : undefined
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
    await noRestart(ctx, journal, leader.info)
    if (!swap) {
      journal.step('handoff', { from: leader.info.Id, to: standby.id })
      gaps.push((await handoff(ctx, link, previous, waiting, t)).gapMs ?? NaN)
      if (kept) previous = await previousIsKept(ctx, leader.info, kept)
      else {
        journal.step('rename-previous', { id: leader.info.Id, name: name + SUFFIX_PREVIOUS })
        await docker.rename(leader.info.Id, name + SUFFIX_PREVIOUS)
        previous.name = name + SUFFIX_PREVIOUS
      }
    }
    if (swap) {
      // verify-then-swap (the default, on the bench's numbers): the new image proved it opens
      // its DB session and waits; now one prepared stop -> start on the original ports.
      journal.step('standby-verified', { id: standby.id })
      await docker.stop(standby.id, t.stopS)
      await docker.remove(standby.id)
      report.step(
        'standby verified and removed',
        `'${standby.name}' waited for the lock on ${ch.createRef}; the swap follows`
      )
      journal.step('final-create', { name: name + SUFFIX_NEXT })
      const final = await startClone(ctx, leader.info, {
        image: ch.createRef,
        name: name + SUFFIX_NEXT,
        ports: 'keep',
        runId,
        role: 'final',
        start: false,
        onCreated: made
      })
      replaceCreated(final)
      journal.step('swap', { from: leader.info.Id, to: final.id })
      gaps.push(
        (
          await handoff(ctx, link, previous, final, t, {
            prepare: async () => {
              if (kept) previous = await previousIsKept(ctx, leader.info, kept)
              else {
                await docker.rename(leader.info.Id, name + SUFFIX_PREVIOUS)
                previous.name = name + SUFFIX_PREVIOUS
              }
              await docker.rename(final.id, name)
              final.name = name
            }
          })
        ).gapMs ?? NaN
      )
    } else if (twoHandoffs) {
      journal.step('final-create', { name })
      const final = await startClone(ctx, leader.info, {
        image: ch.createRef,
        name,
        ports: 'keep',
        runId,
        role: 'final',
        onCreated: made
      })
      replaceCreated(final)
      journal.step('final-started', { id: final.id })
      report.step('final container started', `'${final.name}' on the original ports (${describePorts(final.info)})`)
      const finalWaiting = {
        ...final,
        ...(await standbyReady(ctx, link, final, waiting.appId, knownApps, t.standbyMs))
      }
      journal.step('handoff-2', { from: standby.id, to: final.id })
      gaps.push((await handoff(ctx, link, waiting, finalWaiting, t)).gapMs ?? NaN)
      journal.step('remove-interim', { id: standby.id })
      await docker.remove(standby.id)
    } else {
      journal.step('rename-standby', { id: standby.id, name })
      await docker.rename(standby.id, name)
    }
  } catch (e) {
    await reportPort()
    if (kept && previous !== kept && !(await docker.inspect(leader.info.Id))?.State.Running)
      previous = await previousIsKept(ctx, leader.info, kept)
    // a kept copy that is not the previous container (the leader never stopped) goes with the rest
    const withKept = kept && previous !== kept ? [...created, kept] : created
    return recover(ctx, p, ch, journal, e, withKept, previous, [], backupFile, gaps)
  }
  await reportPort()
  journal.step('remove-previous', { id: leader.info.Id, ...(kept ? { kept: kept.id } : {}) })
  await docker.remove(leader.info.Id)
  if (kept) {
    await docker.remove(kept.id)
    report.note(
      `'${name}' ran with --rm; its replacement does not (Docker cannot set it on an existing container, and a stopped node must stay for a rollback).`
    )
  }
  journal.done(done(ch))
  report.step('done', `'${name}' leads on ${ch.display}`)
  return {
    result: done(ch),
    ok: true,
    message: `'${name}' ${ch.operation === 'upgrade' ? `upgraded from ${leader.image} to` : 'now runs a fresh process of'} ${ch.display}`,
    outputs: {
      'previous-image': leader.image,
      image: ch.display,
      leader: name,
      'leader-gap-ms': gapsOut(gaps),
      ...(backupFile ? { 'backup-file': backupFile } : {})
    }
  }
}

/**
 * A failover pair (the docs' primary and secondary on one DB): the waiting standby is moved
 * first, leadership is handed to it, then the old leader is moved and becomes the standby.
 * `handoff` moves no image: it only hands over and restarts the old leader as the standby.
 */
export async function rollPair(ctx: Context, p: Prepared, ch: Change): Promise<OperationResult> {
  const { docker, report, inputs } = ctx
  const { leader, link, t, view } = p
  const other = p.other!
  for (const c of [leader, other])
    if (c.info.HostConfig.AutoRemove)
      throw new OperationError(
        `'${c.name}' runs with --rm: Docker deletes it when it stops, so a pair cannot keep it for a rollback; recreate it without --rm first`
      )
  const journal = openJournal(ctx, p, ch)
  const runId = journal.journal.runId
  const knownApps = new Set(view.lock.sessions.map((s) => s.appId))
  const previous: Member = memberOf(leader.info, view.lock.holder)
  const oldStandby: Member = memberOf(other.info, other.session?.appId)
  const { created, made, replaceCreated } = tracked(journal)
  const others = [{ member: oldStandby, name: other.name }]
  const gaps: number[] = []
  const backupFile = await preUpgradeBackup(ctx, p, ch, journal)
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
      name: other.name,
      ports: 'keep',
      runId,
      role: 'standby',
      onCreated: made
    })
    replaceCreated(next)
    journal.step('standby-started', { id: next.id })
    report.step('standby started', `'${next.name}' on ${ch.createRef} (${describePorts(next.info)})`)
    const fresh = next
    next = await standbyOrUndo(ctx, p, journal, fresh, knownApps, async () => {
      // the leader was never touched: put the old standby back
      await docker.remove(fresh.id)
      await docker.rename(other.info.Id, other.name)
      await restoreRestartPolicy(ctx, other.info.Id, other.info)
      await docker.start(other.info.Id)
      report.step(
        'standby restored',
        `'${other.name}' back on ${other.image}; '${leader.name}' was never touched (gap 0)`
      )
    })
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
        name: leader.name,
        ports: 'keep',
        runId,
        role: 'final',
        onCreated: made
      })
      replaceCreated(newStandby)
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
    if (inputs.preferPrimary && leader.name === inputs.container) {
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
    journal.done(done(ch))
    report.step(
      'done',
      `'${finalLeader.name}' leads on ${ch.display}; '${finalLeader === nextLeader ? leader.name : other.name}' waits as the standby`
    )
    return {
      result: done(ch),
      ok: true,
      message: `'${finalLeader.name}' leads on ${ch.display}`,
      outputs: {
        'previous-image': leader.image,
        image: ch.display,
        leader: finalLeader.name,
        'leader-gap-ms': gapsOut(gaps),
        ...(backupFile ? { 'backup-file': backupFile } : {})
      }
    }
  } catch (e) {
    return recover(ctx, p, ch, journal, e, created, previous, others, backupFile, gaps)
  }
}
