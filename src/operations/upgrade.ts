// operation: upgrade (design.md steps 0-8). Preflight changes nothing; from the first handoff on
// every failure rolls back; every step is journaled before it is taken.
import { readFileSync } from 'node:fs'
import type { Context, OperationResult } from '../context.js'
import { OperationError } from '../context.js'
import { publishedPorts } from '../container-spec.js'
import { digestFor, type ImageInfo } from '../docker.js'
import { formatMs } from '../duration.js'
import { describePorts, GateError, handoff, memberOf, standbyReady, startClone, timeouts, type Member, type NodeLink } from '../handoff.js'
import { readDesiredImage } from '../image-file.js'
import { formatRef, parseImageRef, repository, repoTag, type ImageRef } from '../image-ref.js'
import { inspectNode, requireLeader } from '../node.js'
import { rollback } from '../rollback.js'
import { HostLock, JournalWriter, journalPath, readJournal } from '../state.js'
import { backupBeforeUpgrade } from '../backup-step.js'

export const SUFFIX_NEXT = '-rollout-next'
export const SUFFIX_PREVIOUS = '-rollout-previous'

/** The target from `image`, or from the desired-state file in the operator's repo. */
export function targetRef(ctx: Context): ImageRef {
  const { inputs } = ctx
  if (inputs.image) return inputs.image
  let text: string
  try {
    text = readFileSync(inputs.imageFile!, 'utf8')
  } catch (e) {
    throw new OperationError(`Input 'image-file': cannot read ${inputs.imageFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
  }
  try {
    return parseImageRef(readDesiredImage(text, inputs.imageFile!).reference)
  } catch (e) {
    throw new OperationError(`Input 'image-file': ${(e as Error).message}`)
  }
}

/** Pulls the target and checks its digest; returns the image and the reference to create from. */
export async function resolveTarget(ctx: Context, ref: ImageRef): Promise<{ image: ImageInfo; createRef: string; digest?: string }> {
  const { docker, report } = ctx
  report.step('pull', formatRef(ref))
  try {
    await docker.pull(ref, ctx.signal)
  } catch (e) {
    // A pull can fail while the image is present locally (an air-gapped host); use it only then.
    const local = await docker.imageInfo(ref.digest ? `${repository(ref)}@${ref.digest}` : repoTag(ref))
    if (!local) throw new OperationError(`Input 'image': cannot pull ${formatRef(ref)}: ${(e as Error).message.split('\n')[0]}`)
    report.note(`Pull of ${formatRef(ref)} failed (${(e as Error).message.split('\n')[0]}); using the copy already on this host.`)
  }
  const image = await docker.imageInfo(ref.digest ? `${repository(ref)}@${ref.digest}` : repoTag(ref))
  if (!image) throw new OperationError(`Input 'image': ${formatRef(ref)} is not on this host after the pull`)
  const digest = digestFor(image, ref)
  if (ref.digest && digest !== ref.digest) throw new OperationError(`Input 'image': digest mismatch for ${formatRef(ref)}: the registry serves ${digest ?? 'an image without a digest'}`)
  // Create from the tag when it still names the pulled image (readable in `docker ps`).
  let createRef = ref.digest ? `${repository(ref)}@${ref.digest}` : repoTag(ref)
  if (ref.tag) {
    const byTag = await docker.imageInfo(repoTag(ref))
    if (byTag?.id === image.id) createRef = repoTag(ref)
  }
  return { image, createRef, digest }
}

export async function upgrade(ctx: Context): Promise<OperationResult> {
  const { inputs, docker, report, log } = ctx
  report.title = `chainlink-rollout upgrade of ${inputs.container}`
  const ref = targetRef(ctx)
  await docker.ping()
  const hostLock = await HostLock.acquire(inputs.stateDir, inputs.container, inputs.lockTimeoutMs, ctx.signal, (o) => log.info(`Waiting for the host lock (held by ${o})`))
  try {
    const prior = readJournal(inputs.stateDir, inputs.container)
    if (prior && prior.phase === 'in-progress') throw new OperationError(`An interrupted ${prior.operation} (run ${prior.runId}, started ${prior.startedAt}) is recorded in ${journalPath(inputs.stateDir, inputs.container)}; run operation 'repair' first`)
    const view = await inspectNode(ctx, [inputs.container])
    try {
      const leader = requireLeader(view, inputs.container)
      if (view.mode === 'none') throw new OperationError(`Container '${inputs.container}' runs with lock mode 'none': without a DB lock no zero-downtime handoff is possible`)
      report.fact('Node', `${leader.name}: ${leader.image}${leader.digest ? ` (${leader.digest})` : ''}, version ${view.version ?? '?'}`)
      report.fact('Lock', `${view.mode} (${view.config.lockModeSource}); lease ${formatMs(view.config.leaseDurationMs)}, refresh ${formatMs(view.config.leaseRefreshMs)}`)
      report.fact('Database', `goose ${view.dbVersion.goose ?? '-'}, node_versions ${view.dbVersion.nodeVersion ?? '-'}`)
      for (const suffix of [SUFFIX_NEXT, SUFFIX_PREVIOUS]) {
        if (await docker.inspect(inputs.container + suffix)) throw new OperationError(`A container '${inputs.container + suffix}' from an earlier run exists; run operation 'repair' first`)
      }
      const target = await resolveTarget(ctx, ref)
      const leaderImage = await docker.imageInfo(leader.info.Image)
      const targetOut = `${repoTag(ref)}@${target.digest ?? target.image.id}`
      report.fact('Target', targetOut)
      const outputs = { 'previous-image': leader.image, image: targetOut, leader: inputs.container }
      if (leaderImage?.id === target.image.id) {
        report.step('unchanged', `'${leader.name}' already runs ${targetOut}`)
        return { result: 'unchanged', ok: true, message: `'${leader.name}' already runs ${targetOut}; nothing was restarted`, outputs }
      }
      const hostNet = leader.info.HostConfig.NetworkMode === 'host'
      const twoHandoffs = !hostNet && Object.keys(publishedPorts(leader.info)).length > 0
      const t = timeouts(ctx, view.config, leader.info)
      const plan = twoHandoffs
        ? `start '${inputs.container}${SUFFIX_NEXT}' on ${target.createRef} with ports remapped, hand off to it, then start '${inputs.container}' on the original ports (${describePorts(leader.info)}) and hand off again`
        : `start '${inputs.container}${SUFFIX_NEXT}' on ${target.createRef} (${describePorts(leader.info)}), hand off to it, then give it the name '${inputs.container}'`
      report.fact('Plan', plan)
      if (inputs.dryRun) {
        report.step('dry-run', 'nothing changed')
        return { result: 'planned', ok: true, message: `dry run: would ${plan}`, outputs: { 'previous-image': leader.image, image: targetOut, leader: leader.name } }
      }

      const runId = Date.now().toString(36)
      const journal = new JournalWriter(journalPath(inputs.stateDir, inputs.container), {
        runId,
        operation: 'upgrade',
        container: inputs.container,
        result: undefined,
        plan: { leaderId: leader.info.Id, leaderImage: leader.image, target: target.createRef, dbBefore: view.dbVersion, twoHandoffs, mode: view.mode }
      })
      const link: NodeLink = { db: view.db, config: view.config, mode: view.mode, databaseUrl: view.databaseUrl }
      const knownApps = new Set(view.lock.sessions.map((s) => s.appId))
      const previous: Member = memberOf(leader.info, view.lock.holder)
      const created: Member[] = []
      let backupFile: string | undefined
      if (inputs.backup) {
        journal.step('backup')
        backupFile = await backupBeforeUpgrade(ctx, view, leader)
        journal.plan({ backupFile })
      }

      // Standby: fail here and the leader was never touched.
      journal.step('standby-create', { name: inputs.container + SUFFIX_NEXT })
      const standby = await startClone(ctx, leader.info, { image: target.createRef, name: inputs.container + SUFFIX_NEXT, ports: 'remap', runId, role: 'next' })
      created.push(standby)
      journal.step('standby-started', { id: standby.id })
      report.step('standby started', `'${standby.name}' (${describePorts(standby.info)})`)
      try {
        await standbyReady(ctx, link, standby, view.lock.holder!, knownApps, t.standbyMs)
      } catch (e) {
        if (ctx.signal.aborted) throw e // cancelled: the post step repairs from the journal
        await failedContainerLogs(ctx, standby)
        await docker.remove(standby.id)
        journal.done('failed')
        report.step('standby removed', `'${leader.name}' was never touched (gap 0)`)
        throw e
      }
      knownApps.add(standby.appId!)

      let gaps: number[] = []
      let finalLeader: Member = standby
      try {
        journal.step('handoff', { from: leader.info.Id, to: standby.id })
        const h1 = await handoff(ctx, link, previous, standby, t)
        gaps.push(h1.gapMs ?? NaN)
        journal.step('rename-previous', { id: leader.info.Id, name: inputs.container + SUFFIX_PREVIOUS })
        await docker.rename(leader.info.Id, inputs.container + SUFFIX_PREVIOUS)
        previous.name = inputs.container + SUFFIX_PREVIOUS
        if (twoHandoffs) {
          journal.step('final-create', { name: inputs.container })
          const final = await startClone(ctx, leader.info, { image: target.createRef, name: inputs.container, ports: 'keep', runId, role: 'final' })
          created.push(final)
          journal.step('final-started', { id: final.id })
          report.step('final container started', `'${final.name}' on the original ports (${describePorts(final.info)})`)
          await standbyReady(ctx, link, final, standby.appId!, knownApps, t.standbyMs)
          journal.step('handoff-2', { from: standby.id, to: final.id })
          const h2 = await handoff(ctx, link, standby, final, t)
          gaps.push(h2.gapMs ?? NaN)
          finalLeader = final
          journal.step('remove-interim', { id: standby.id })
          await docker.remove(standby.id)
        } else {
          journal.step('rename-standby', { id: standby.id, name: inputs.container })
          await docker.rename(standby.id, inputs.container)
          finalLeader = { ...standby, name: inputs.container }
        }
      } catch (e) {
        if (ctx.signal.aborted) throw e // cancelled: the post step repairs from the journal
        const reason = e instanceof Error ? e.message : String(e)
        for (const m of created) await failedContainerLogs(ctx, m, e)
        if (!inputs.rollback) {
          journal.done('failed')
          throw new OperationError(`${reason}. Rollback is off (input 'rollback: false'): the node is left as it is; the previous container is kept stopped as '${previous.name}'`)
        }
        journal.step('rollback', { reason })
        try {
          await rollback(ctx, link, { name: inputs.container, previous, created, newImage: target.createRef, dbBefore: view.dbVersion, backupFile }, t, reason)
        } catch (re) {
          journal.step('rollback-failed', { reason: (re as Error).message })
          throw new OperationError(`Upgrade failed (${reason}) and the rollback failed too: ${(re as Error).message}. Run operation 'repair' after fixing the cause; the journal is ${journal.path}`)
        }
        journal.done('rolled-back')
        return { result: 'rolled-back', ok: false, message: `upgrade to ${targetOut} failed (${reason}); rolled back to ${leader.image}`, outputs: { ...outputs, image: leader.image, 'leader-gap-ms': gapsOut(gaps) } }
      }
      journal.step('remove-previous', { id: leader.info.Id })
      await docker.remove(leader.info.Id)
      journal.done('upgraded')
      report.step('done', `'${finalLeader.name}' leads on ${targetOut}`)
      gaps = gaps.filter((g) => !Number.isNaN(g))
      return { result: 'upgraded', ok: true, message: `'${inputs.container}' upgraded from ${leader.image} to ${targetOut}`, outputs: { ...outputs, 'leader-gap-ms': gapsOut(gaps), ...(backupFile ? { 'backup-file': backupFile } : {}) } }
    } finally {
      await view.db.close()
    }
  } finally {
    hostLock.release()
  }
}

/** The leader gap output: the longest handoff gap (each one is in the summary). */
export function gapsOut(gaps: number[]): string | undefined {
  const g = gaps.filter((x) => Number.isFinite(x))
  return g.length ? String(Math.max(...g)) : undefined
}

export async function failedContainerLogs(ctx: Context, m: Member, e?: unknown): Promise<void> {
  if (e instanceof GateError && e.containerId && e.containerId !== m.id) return
  const text = await ctx.docker.logs(m.id, 40)
  if (text.trim()) ctx.report.logs.push({ container: m.name, text })
}
