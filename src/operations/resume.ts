// operation: resume (docs/hosts.md). Starts this host's drained instance again, with the
// operator's restart policy back, as a waiting standby: proven to have its own DB session that
// polls the lock while the instance on another host keeps it. Handing the lock back is a drain
// run by the other host's runner, so each runner only ever stops its own host's instance. An
// instance whose version the DB's migrations have left behind (a rolling upgrade went on
// elsewhere) could never lead: it is stopped again and the run fails, saying so.
import type { Context, OperationResult } from '../context.js'
import type { Inputs } from '../inputs/types.js'
import { OperationError } from '../errors.js'
import { inspectNode } from '../node/inspect.js'
import { describeInstance, findInstances, reportInstances } from '../node/instances.js'
import { standbyReady } from '../handoff/gate-loops.js'
import { takeOver } from '../handoff/take-over.js'
import { linkOf, memberOf, timeouts } from '../handoff/types.js'
import { withHostLock } from '../journal/host-lock.js'
import { JournalWriter, journalPath, nodeKey, refuseOpenJournal } from '../journal/journal.js'
import { clearDrainRecord, readDrainRecord } from '../journal/drained.js'
import { provePolling, versionGateRefusal } from '../rollout/cross-host.js'
import { restoreRestartPolicy } from '../rollout/steps.js'

export async function resume(ctx: Context, inputs: Inputs): Promise<OperationResult> {
  const { report, docker } = ctx
  report.title = `chainlink-rollout resume of ${inputs.container}`
  if (inputs.standby)
    throw new OperationError("Input 'standby': resume starts this host's one instance; name it as 'container'")
  return withHostLock(ctx, inputs, [inputs.container], async (keys) => {
    // the drain record is this host's, under the container's name; the journal under the node's DB
    const key = nodeKey(inputs)
    refuseOpenJournal(inputs.stateDir, keys.read)
    const view = await inspectNode(ctx, [inputs.container], inputs)
    try {
      const local = view.containers[0]
      const instances = await findInstances(ctx, view)
      reportInstances(ctx, instances)
      const lead = instances.find((x) => x.role === 'leader')
      const mine = instances.find((x) => x.container === local.name)
      if (local.info.State.Running) {
        clearDrainRecord(inputs.stateDir, key)
        return {
          result: 'ok',
          ok: true,
          message: `'${local.name}' runs already${mine ? ` (${describeInstance(mine)})` : ''}`,
          outputs: { 'leader-host': lead?.host, 'leader-app-id': lead?.appId, instances: JSON.stringify(instances) }
        }
      }
      const rec = readDrainRecord(inputs.stateDir, key)
      const policy = rec?.containerId === local.info.Id ? rec.policy : local.info.HostConfig.RestartPolicy
      if (!rec)
        report.note(
          `No drain of '${local.name}' is recorded in ${inputs.stateDir}: its restart policy stays ${local.info.HostConfig.RestartPolicy?.Name ?? 'no'}.`
        )
      const link = linkOf(view, inputs.healthUrl)
      const t = timeouts(inputs, view.config, local.info)
      const journal = new JournalWriter(journalPath(inputs.stateDir, keys.write), {
        runId: Date.now().toString(36),
        operation: 'resume',
        container: inputs.container,
        plan: {
          leaderId: local.info.Id,
          leaderName: local.name,
          leaderImage: local.image,
          target: local.image,
          dbBefore: view.dbVersion,
          mode: view.mode
        }
      })
      ctx.onJournal?.(journal.journal.runId, journalPath(inputs.stateDir, keys.write))
      const operator = { ...local.info, HostConfig: { ...local.info.HostConfig, RestartPolicy: policy } }
      journal.step('resume-start', { id: local.info.Id, policy })
      await restoreRestartPolicy(ctx, local.info.Id, operator as typeof local.info)
      const m = memberOf(local.info)
      if (!lead || view.lock.problem) {
        // nobody leads: this instance is the node's way back, not a standby
        report.note(
          `No instance of the node holds the lock (${view.lock.problem ?? 'no leader'}): '${local.name}' starts to lead.`
        )
        const led = await takeOver(ctx, link, m, t)
        clearDrainRecord(inputs.stateDir, key)
        journal.done('ok')
        return {
          result: 'ok',
          ok: true,
          message: `'${local.name}' leads: no instance held the lock`,
          outputs: { leader: local.name, 'leader-host': 'local', 'leader-app-id': led.appId }
        }
      }
      const known = new Set(view.lock.sessions.map((s) => s.appId))
      await docker.start(local.info.Id)
      const proven = await standbyReady(ctx, link, m, lead.appId, known, t.standbyMs)
      const old = versionGateRefusal(proven.version, view.dbVersion.nodeVersion)
      if (old) {
        await docker.setRestartPolicy(local.info.Id, { Name: 'no' })
        await docker.stop(local.info.Id, t.stopS)
        journal.done('failed')
        throw new OperationError(
          `'${local.name}' runs ${old}; it was stopped again (restart policy no). Recreate it on the version the other hosts run, then resume`
        )
      }
      await provePolling(ctx, link, proven.appId, local.name)
      clearDrainRecord(inputs.stateDir, key)
      journal.done('ok')
      report.step(
        'done',
        `'${local.name}' (app ${proven.appId}, Chainlink ${proven.version}) waits; ${describeInstance(lead)} leads`
      )
      return {
        result: 'ok',
        ok: true,
        message: `resumed '${local.name}' as a waiting standby (app ${proven.appId}); app ${lead.appId} on ${lead.host === 'remote' ? 'another host' : 'this host'} leads`,
        outputs: { 'leader-host': lead.host, 'leader-app-id': lead.appId }
      }
    } finally {
      await view.db.close()
    }
  })
}
