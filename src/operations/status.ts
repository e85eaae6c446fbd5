// operation: status. Reports leader, images and digests, lock state, health and DB version;
// changes nothing. Two leaders, no lock table or an unreachable DB are errors.
import { isAuthStatus } from '../node/health.js'
import type { Context, OperationResult } from '../context.js'
import type { Inputs } from '../inputs/types.js'
import { inspectNode, requireLeader } from '../node/inspect.js'
import { checkEngine } from '../safeguards/engine-check.js'
import { OperationError } from '../errors.js'
import type { NodeView } from '../node/view.js'
import { nodeNames } from '../node/connect.js'
import { active, history, readQuarantine, type QuarantineEntry } from '../safeguards/quarantine.js'
import { containerName, joinedTo, type ContainerInfo } from '../docker/client.js'
import { describePorts } from '../handoff/container-spec.js'
import { holderProblem, layoutOf, type Layout } from '../handoff/port-holder.js'
import { LABEL_ROLE, LABEL_RUN } from '../handoff/clone.js'
import { keyContainers, SUFFIX_NEXT, SUFFIX_PREVIOUS } from '../rollout/plan.js'
import { findJournal, journalPath, nodeKey } from '../journal/journal.js'
import { journalKeys } from '../journal/host-lock.js'
import { describeInstance, findInstances, type Instance } from '../node/instances.js'

function describeContainers(view: NodeView): string[][] {
  return view.containers.map((c) => [
    c.name,
    c === view.leader
      ? 'leader'
      : c.info.State.Running
        ? c.session
          ? 'standby (waiting for the lock)'
          : 'running, no DB session'
        : `${c.info.State.Status}`,
    c.image,
    c.digest ?? '-',
    c.session ? `${c.session.version} (app ${c.session.appId})` : '-',
    c.health
      ? c.health.readyz !== undefined
        ? `${c.health.readyRoute ?? '/readyz'} ${c.health.readyz}${isAuthStatus(c.health.health) ? `, /health ${c.health.health} (behind authentication)` : ''}${c.health.failing.length ? `, failing: ${c.health.failing.join(', ')}` : ''}`
        : `not answering (${c.health.error})`
      : '-'
  ])
}

function lockSummary(view: NodeView): string {
  const parts = [`mode ${view.mode} (${view.config.lockModeSource})`]
  if (view.lock.lease)
    parts.push(
      `lease held by ${view.lock.lease.clientId} until ${view.lock.lease.expiresAt.toISOString()}${view.lock.lease.expired ? ' (expired)' : ''}`
    )
  if (view.mode === 'advisorylock' || view.mode === 'dual')
    parts.push(
      `advisory lock ${view.config.advisoryLockId}: ${view.lock.advisory.length ? view.lock.advisory.map((a) => a.appId ?? `pid ${a.pid}`).join(', ') : 'free'}`
    )
  return parts.join('; ')
}

export async function status(ctx: Context, inputs: Inputs): Promise<OperationResult> {
  const { report } = ctx
  report.title = `chainlink-rollout status of ${inputs.container}`
  await openJournal(ctx, inputs)
  // the engine, and what an upgrade would refuse on it, told before anyone tries (docs/podman.md)
  await checkEngine(ctx, nodeNames(inputs)).catch((e: Error) => {
    if (!(e instanceof OperationError)) throw e
    report.fact('An upgrade would be refused', e.message)
  })
  const view = await inspectNode(ctx, nodeNames(inputs), inputs)
  try {
    report.tables.push({
      heading: 'Containers',
      header: ['container', 'role', 'image', 'digest', 'node version', 'health'],
      rows: describeContainers(view)
    })
    report.fact('Lock', lockSummary(view))
    report.fact(
      'DB version',
      `goose ${view.dbVersion.goose ?? '-'}, node_versions ${view.dbVersion.nodeVersion ?? '-'}`
    )
    report.fact('Lease timing', `duration ${view.config.leaseDurationMs} ms, refresh ${view.config.leaseRefreshMs} ms`)
    quarantineTable(ctx, inputs)
    // before the leader is required: a node stranded outside its holder's ports leads nowhere
    const layout = await layoutFact(ctx, view, view.containers[0].info)
    // every instance of the node, on this host or another (docs/hosts.md)
    const instances = await findInstances(ctx, view)
    report.tables.push({
      heading: 'Instances of the node',
      header: ['app id', 'version', 'host', 'container', 'role', 'addresses'],
      rows: instances.map(instanceRow)
    })
    const all = JSON.stringify(instances)
    const remoteLeader = view.leader ? undefined : instances.find((x) => x.role === 'leader' && x.host === 'remote')
    if (remoteLeader && !view.lock.problem) {
      // the node leads on another host: this host's instances wait, or are drained
      report.fact('Leader', describeInstance(remoteLeader))
      return {
        result: 'ok',
        ok: true,
        outputs: { 'leader-host': 'remote', 'leader-app-id': remoteLeader.appId, instances: all, layout }
      }
    }
    const leader = requireLeader(view)
    report.fact('Leader', `${leader.name} (${leader.image})`)
    if (leader.health?.readyz !== 200)
      report.note(
        `The leader '${leader.name}' holds the lock but ${leader.health?.readyRoute ?? '/readyz'} answers ${leader.health?.readyz ?? leader.health?.error ?? 'nothing'}: it is still starting, or unhealthy.`
      )
    return {
      result: 'ok',
      ok: true,
      outputs: {
        leader: leader.name,
        'leader-host': 'local',
        'leader-app-id': leader.session?.appId,
        instances: all,
        image: leader.digest ? `${leader.image.replace(/@sha256:[a-f0-9]{64}$/, '')}@${leader.digest}` : leader.image,
        layout
      }
    }
  } finally {
    await view.db.close()
  }
}

const ROLE_TEXT = { leader: 'leader', waiting: 'waiting standby', other: 'other (not waiting for the lock)' }

function instanceRow(x: Instance): string[] {
  return [
    x.appId,
    x.version || '?',
    x.host === 'local' ? 'this host' : 'another host',
    x.container ?? '-',
    ROLE_TEXT[x.role],
    x.addrs.join(', ')
  ]
}

/**
 * The node's layout (docs/port-holder.md) as a fact, and what keeps a joined instance from its
 * holder's ports (a holder down, or started again after the instance) as a note.
 */
async function layoutFact(ctx: Context, view: NodeView, leader: ContainerInfo): Promise<Layout> {
  const ref = joinedTo(leader)
  const owner = ref ? await ctx.docker.inspect(ref) : undefined
  const layout = layoutOf(leader, owner)
  ctx.report.fact(
    'Layout',
    owner
      ? `${layout}: joins '${containerName(owner)}' (${describePorts(owner)})`
      : `${layout} (${describePorts(leader)})`
  )
  for (const c of view.containers) {
    const r = joinedTo(c.info)
    if (!r) continue
    const problem = holderProblem(c.info, await ctx.docker.inspect(r))
    if (problem)
      ctx.report.note(
        `${problem.text}. Run operation 'restart' (a handoff into the holder's current namespace), or 'repair' when nothing leads.`
      )
  }
  return layout
}

/** Quarantined digests (refused by upgrade) and the history of earlier ones. */
function quarantineTable(ctx: Context, inputs: Pick<Inputs, 'stateDir' | 'container' | 'standby'>): void {
  const f = readQuarantine(inputs.stateDir, nodeKey(inputs))
  const row = (e: QuarantineEntry, state: string) => [
    e.image,
    state,
    `${e.runId}${e.ciRun ? ` (${e.ciRun})` : ''}`,
    e.at,
    e.reason
  ]
  const rows = [
    ...active(f).map((e) => row(e, 'quarantined')),
    ...history(f).map((e) => row(e, `history: cleared ${e.clearedAt} by ${e.clearedBy}`))
  ]
  ctx.report.fact(
    'Quarantine',
    active(f).length
      ? active(f)
          .map((e) => e.digest)
          .join(', ')
      : 'no quarantined digest'
  )
  if (rows.length)
    ctx.report.tables.push({ heading: 'Quarantine', header: ['image', 'state', 'run', 'at', 'reason'], rows })
}

/**
 * An interrupted operation (a killed run, a failed repair) is shown first, with where each of
 * its containers is, so the way forward is visible even when the node cannot be inspected.
 */
async function openJournal(ctx: Context, inputs: Inputs): Promise<void> {
  const { report, docker } = ctx
  let found
  try {
    found = findJournal(inputs.stateDir, (await journalKeys(ctx, inputs, keyContainers(inputs))).read)
  } catch (e) {
    // status only reads: a journal it cannot read is shown, as what the next operation refuses on
    if (!(e instanceof OperationError)) throw e
    report.fact('Open journal', `unknown: ${e.message}`)
    return
  }
  if (!found || found.journal.phase !== 'in-progress') return
  const { key, journal: j } = found
  const last = j.steps.at(-1)
  report.fact(
    'Open journal',
    `${j.operation} run ${j.runId} started ${j.startedAt} by pid ${j.pid} on ${j.host}, last step '${last?.step ?? '(none)'}'${last ? ` at ${last.at}` : ''} (${journalPath(inputs.stateDir, key)})`
  )
  const names = [inputs.container, ...(inputs.standby ? [inputs.standby] : [])]
  const ids = new Set<string>()
  for (const c of await docker.listByLabel(`${LABEL_RUN}=${j.runId}`)) ids.add(c.Id)
  for (const n of names.flatMap((x) => [x, x + SUFFIX_NEXT, x + SUFFIX_PREVIOUS])) {
    const info = await docker.inspect(n)
    if (info) ids.add(info.Id)
  }
  const rows: string[][] = []
  for (const id of ids) {
    const info = await docker.inspect(id)
    if (!info) continue
    rows.push([
      containerName(info),
      info.Config.Labels?.[LABEL_ROLE] ?? 'original',
      info.Config.Image,
      `${info.State.Status}${info.State.Running ? '' : ` (exit ${info.State.ExitCode})`}`
    ])
  }
  report.tables.push({
    heading: 'Containers of the interrupted run',
    header: ['container', 'role', 'image', 'state'],
    rows
  })
  report.note(
    "An operation is still open: run operation 'repair' (again, once the cause is fixed); the README's Reliability section says how to abandon a journal safely."
  )
}
