// operation: drain (docs/hosts.md). One node, instances on several hosts, one runner per host:
// this host's leader hands the lock to an instance waiting on another host (a graceful stop,
// aimed at the standby's next lock poll, which the DB shows for a remote standby too), the DB
// proves the remote instance took it and keeps it (and its health URL, when given), and this
// host's container is left stopped with restart policy `no`, so the host can be rebooted or
// patched. Nothing changes when no healthy instance waits elsewhere. A failed handoff starts
// this host's instance again: the node is never left with no leader.
import type { Context, OperationResult } from '../context.js'
import type { Inputs } from '../inputs/types.js'
import { OperationError } from '../errors.js'
import { formatMs } from '../duration.js'
import { inspectNode, requireLeader } from '../node/inspect.js'
import { describeInstance, findInstances, reportInstances, type Instance } from '../node/instances.js'
import type { NodeView } from '../node/view.js'
import { aimStop } from '../handoff/take-over.js'
import { remoteLeaderGate } from '../handoff/remote-gate.js'
import { linkOf, timeouts, type NodeLink } from '../handoff/types.js'
import { withHostLock } from '../journal/host-lock.js'
import { JournalWriter, journalPath, nodeKey, refuseOpenJournal } from '../journal/journal.js'
import { clearDrainRecord, readDrainRecord, writeDrainRecord } from '../journal/drained.js'
import { remoteLockTaken, versionGateRefusal } from '../rollout/cross-host.js'
import { startAgain } from './repair-drain.js'
import { noRestart } from '../rollout/steps.js'

/**
 * Pure: the refusal of a drain before anything changes, or undefined. The lock must go to an
 * instance on another host: one waits there, every instance that could take it (any waiting one)
 * is on another host, and each can run on the DB's migrations.
 */
export function drainRefusal(
  instances: Instance[],
  leaderApp: string,
  dbVersion: string | undefined
): string | undefined {
  const waiting = instances.filter((x) => x.role === 'waiting' && x.appId !== leaderApp)
  const remote = waiting.filter((x) => x.host === 'remote')
  const seen = instances.map(describeInstance).join('; ')
  if (!remote.length)
    return `No instance of the node waits for the lock on another host, so a drain would leave the node with no leader; nothing was changed. Instances: ${seen}`
  const local = waiting.filter((x) => x.host === 'local')
  if (local.length)
    return `${local.map(describeInstance).join('; ')} also waits for the lock on this host: it could take the lock instead of the instance on another host; stop it (or drain it first), then run again. Nothing was changed`
  const old = remote.map((x) => [x, versionGateRefusal(x.version, dbVersion)] as const).filter(([, r]) => r)
  if (old.length)
    return `${old.map(([x, r]) => `${describeInstance(x)}: ${r}`).join('; ')}. Upgrade it first (the standby hosts go first in a rolling upgrade, docs/hosts.md); nothing was changed`
  return undefined
}

export async function drain(ctx: Context, inputs: Inputs): Promise<OperationResult> {
  const { report } = ctx
  report.title = `chainlink-rollout drain of ${inputs.container}`
  if (inputs.standby)
    throw new OperationError(
      "Input 'standby': a drain moves the lock off this host; name only this host's instance as 'container'"
    )
  return withHostLock(ctx, inputs, [inputs.container], async (keys) => {
    // the drain record is this host's, under the container's name; the journal under the node's DB
    const key = nodeKey(inputs)
    refuseOpenJournal(inputs.stateDir, keys.read)
    const view = await inspectNode(ctx, [inputs.container], inputs)
    try {
      const instances = await findInstances(ctx, view)
      const all = reportInstances(ctx, instances)
      const local = view.containers[0]
      const lead = instances.find((x) => x.role === 'leader')
      if (!view.leader) {
        if (lead?.host === 'remote' && !view.lock.problem) {
          if (!local.info.State.Running) {
            const rec = readDrainRecord(inputs.stateDir, key)
            report.step('already drained', `'${local.name}' is stopped; ${describeInstance(lead)} leads`)
            return {
              result: 'ok',
              ok: true,
              message: `'${local.name}' is drained already${rec ? ` (since ${rec.at})` : ''}: ${describeInstance(lead)} leads`,
              outputs: { 'leader-host': 'remote', 'leader-app-id': lead.appId, instances: all }
            }
          }
          throw new OperationError(
            `'${local.name}' does not lead: ${describeInstance(lead)} does. A drain runs on the leader's host; to stop this waiting instance, stop it`
          )
        }
        requireLeader(view)
      }
      const leader = view.leader!
      if (view.mode === 'none')
        throw new OperationError(
          `'${leader.name}' runs with lock mode 'none': without a DB lock no handoff is possible`
        )
      if (leader.info.HostConfig.AutoRemove)
        throw new OperationError(
          `'${leader.name}' runs with --rm (AutoRemove): Docker deletes it when it stops, so a drained instance could not be resumed; recreate it without --rm first. Nothing was changed`
        )
      const refusal = drainRefusal(instances, leader.session!.appId, view.dbVersion.nodeVersion)
      if (refusal) throw new OperationError(refusal)
      return await handOff(ctx, inputs, view, instances, all, keys.write)
    } finally {
      await view.db.close()
    }
  })
}

/** What a rolling upgrade adds to a drain (src/operations/upgrade-hosts.ts). */
interface HandOffOptions {
  /** the image the drain hands to (the journal's target), for the report */
  target?: string
  /**
   * Before this host's instance starts again after a failed handoff: the DB back where this
   * instance can run (a new version on another host may have migrated it).
   */
  beforeStartAgain?: (link: NodeLink) => Promise<void>
}

export async function handOff(
  ctx: Context,
  inputs: Inputs,
  view: NodeView,
  instances: Instance[],
  all: string,
  journalKey: string,
  opts: HandOffOptions = {}
): Promise<OperationResult> {
  const { report, docker } = ctx
  const key = nodeKey(inputs)
  const leader = view.leader!
  const fromApp = leader.session!.appId
  const to = instances.filter((x) => x.role === 'waiting' && x.host === 'remote')
  const link = linkOf(view, inputs.healthUrl)
  const t = timeouts(inputs, view.config, leader.info)
  report.fact(
    'Plan',
    `drain '${leader.name}': hand the lock to ${to.map(describeInstance).join(' or ')}, then keep '${leader.name}' stopped`
  )
  if (inputs.dryRun)
    return {
      result: 'planned',
      ok: true,
      message: `dry run: would drain '${leader.name}'`,
      outputs: { instances: all }
    }
  const journal = new JournalWriter(journalPath(inputs.stateDir, journalKey), {
    runId: Date.now().toString(36),
    operation: 'drain',
    container: inputs.container,
    plan: {
      leaderId: leader.info.Id,
      leaderName: leader.name,
      leaderImage: leader.image,
      target: opts.target ?? to.map((x) => `app:${x.appId}`).join(','),
      dbBefore: view.dbVersion,
      mode: view.mode
    }
  })
  ctx.onJournal?.(journal.journal.runId, journalPath(inputs.stateDir, journalKey))
  const policy = leader.info.HostConfig.RestartPolicy ?? { Name: 'no' }
  // the operator's policy, for `resume` (and repair), before anything changes
  writeDrainRecord(inputs.stateDir, key, {
    containerId: leader.info.Id,
    container: leader.name,
    policy: { Name: policy.Name ?? 'no', MaximumRetryCount: policy.MaximumRetryCount },
    at: new Date().toISOString(),
    runId: journal.journal.runId
  })
  let stopped = false
  try {
    await noRestart(ctx, journal, leader.info)
    const aim = await aimStop(ctx, link, to[0], 100)
    report.step(
      `drain ${leader.name} -> another host`,
      `docker stop with ${t.stopS} s timeout; ${aim.engaged ? `held ${aim.waitedMs} ms to land the release just before the standby's next lock poll` : `stop not aimed (${aim.why})`}`
    )
    journal.step('drain-stop', { id: leader.info.Id, to: to.map((x) => x.appId) })
    const t0 = Date.now()
    stopped = true
    await docker.stop(leader.info.Id, t.stopS)
    const stopMs = Date.now() - t0
    const after = await docker.inspect(leader.info.Id)
    const killed = after?.State.ExitCode === 137 && !after.State.OOMKilled
    report.step(
      `${leader.name} stopped`,
      `${killed ? 'killed after ignoring SIGTERM for' : 'exited in'} ${formatMs(stopMs)} (exit ${after?.State.ExitCode})`
    )
    const taken = await remoteLockTaken(
      ctx,
      link,
      fromApp,
      to.map((x) => x.appId),
      t.lockMs,
      t0
    )
    const winner = to.find((x) => x.appId === taken.appId)!
    await remoteLeaderGate(ctx, link, taken.appId, t.stableMs, t.readyMs, inputs.remoteHealthUrl)
    report.handoffs.push({
      from: leader.name,
      to: `app ${taken.appId.slice(0, 8)} on another host`,
      stop: killed ? 'killed' : 'graceful',
      lockTakenMs: taken.ms,
      note: aim.engaged ? `aimed (held ${aim.waitedMs} ms)` : `not aimed: ${aim.why}`
    })
    const rec = readDrainRecord(inputs.stateDir, key)
    if (rec) writeDrainRecord(inputs.stateDir, key, { ...rec, to: taken.appId })
    journal.done('ok')
    report.step(
      'done',
      `${describeInstance({ ...winner, role: 'leader' })} leads; '${leader.name}' stays stopped (restart policy no) ${opts.target ? 'until it is recreated on the target' : "until 'resume'"}`
    )
    return {
      result: 'ok',
      ok: true,
      message: `drained '${leader.name}': app ${taken.appId} (Chainlink ${winner.version}) on another host leads, lock taken ${formatMs(taken.ms)} after the stop`,
      outputs: { 'leader-host': 'remote', 'leader-app-id': taken.appId, instances: all }
    }
  } catch (e) {
    // cancelled: the post step repairs from the journal
    if (ctx.signal.aborted || !stopped) {
      if (!stopped) {
        await startAgainQuiet(ctx, link, view, policy, t)
        clearDrainRecord(inputs.stateDir, key)
        journal.done('failed')
      }
      throw e
    }
    const reason = e instanceof Error ? e.message : String(e)
    journal.step('drain-restart', { reason })
    try {
      await opts.beforeStartAgain?.(link)
    } catch (be) {
      if (ctx.signal.aborted) throw be
      // this host's instance cannot run on the DB as it is: it stays stopped (restart policy no,
      // the operator's kept in the drain record for the run that brings it back)
      journal.done('failed')
      report.step('kept stopped', `'${leader.name}' (restart policy no): ${(be as Error).message}`)
      return {
        result: 'failed',
        ok: false,
        message: `the drain of '${leader.name}' failed (${reason}), and '${leader.name}' cannot start again: ${(be as Error).message}`,
        outputs: { instances: all }
      }
    }
    const became = await startAgain(ctx, link, leader.info, policy, t)
    clearDrainRecord(inputs.stateDir, key)
    journal.done('failed')
    report.step('started again', `'${leader.name}' ${became}`)
    return {
      result: 'failed',
      ok: false,
      message: `the drain of '${leader.name}' failed (${reason}); '${leader.name}' was started again and ${became}`,
      outputs: { leader: leader.name }
    }
  }
}

/** Before the stop nothing but the restart policy changed: it is given back. */
async function startAgainQuiet(
  ctx: Context,
  link: NodeLink,
  view: NodeView,
  policy: NonNullable<NodeView['containers'][0]['info']['HostConfig']['RestartPolicy']>,
  t: ReturnType<typeof timeouts>
): Promise<void> {
  await startAgain(ctx, link, view.leader!.info, policy, t).catch(() => undefined)
}
