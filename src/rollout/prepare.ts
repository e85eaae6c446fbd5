// Before a rollout changes anything: the host lock, no interrupted run, no leftover containers,
// the node inspected and its leader proven, the pair's standby proven waiting, and the facts the
// report opens with. Everything here only reads.
import type { Context, OperationResult } from '../context.js'
import { OperationError } from '../errors.js'
import { formatMs } from '../duration.js'
import { linkOf, newRun, runOf, timeouts, type TimeoutSettings } from '../handoff/types.js'
import { describeChecks, describeReady, isAuthStatus } from '../node/health.js'
import { inspectNode, requireHealthUrl, requireLeader } from '../node/inspect.js'
import type { NodeContainer } from '../node/view.js'
import { nodeNames, type DbSettings } from '../node/connect.js'
import { cannotRestoreMessage, restorePlan } from '../backup/restore.js'
import type { DbApi } from '../postgres/database.js'
import { findForeignNodes, foreignRefusal } from '../node/foreign-sessions.js'
import { withHostLock, type HostLockSettings } from '../journal/host-lock.js'
import { refuseOpenJournal } from '../journal/journal.js'
import { findUpdaters, nodeFacts, otherUpdaters, updatersRefusal } from '../safeguards/other-updaters.js'
import {
  keyContainers,
  SUFFIX_NEXT,
  SUFFIX_PREVIOUS,
  type Change,
  type Prepared,
  type RollbackChoices
} from './plan.js'
import { checkEngine } from '../safeguards/engine-check.js'
import { containerName, joinedTo, type ContainerInfo } from '../docker/client.js'
import { describePorts } from '../handoff/container-spec.js'
import { holderProblem, HOLDER_SUFFIX, layoutChange, layoutOf, type LayoutChange } from '../handoff/port-holder.js'

/** What a rollout is asked besides its image: its finish, the pair's hand-back and the rollback's choices. */
export function changeSettings(
  inputs: Pick<Change, 'finish' | 'preferPrimary'> & RollbackChoices
): Pick<Change, 'finish' | 'preferPrimary' | 'rollback'> {
  return {
    finish: inputs.finish,
    preferPrimary: inputs.preferPrimary,
    rollback: {
      rollback: inputs.rollback,
      dbRollback: inputs.dbRollback,
      backupIdentity: inputs.backupIdentity,
      readyTimeoutMs: inputs.readyTimeoutMs
    }
  }
}

/**
 * What the preflight is given (the operation's inputs): the host lock's settings, the DB's, the
 * timeouts, and what its own checks read.
 */
type PreflightSettings = HostLockSettings &
  DbSettings &
  TimeoutSettings & {
    /** input 'health-url' */
    healthUrl?: string
    /** input 'port-holder': the layout asked (undefined: keep it) */
    portHolder?: boolean
    /** input 'image-file': the compose file the node is started from is not another updater */
    imageFile?: string
    allowOtherUpdaters: boolean
    rollback: boolean
    dbRollback: RollbackChoices['dbRollback']
  }

/**
 * Host lock, interrupted-run check, node inspection and leader proof; then `fn`. Everything
 * before `fn` only reads.
 */
export async function withNode(
  ctx: Context,
  inputs: PreflightSettings,
  fn: (p: Prepared) => Promise<OperationResult>
): Promise<OperationResult> {
  const { docker, report } = ctx
  return withHostLock(ctx, inputs, keyContainers(inputs), async (keys) => {
    refuseOpenJournal(inputs.stateDir, keys.read)
    const names = nodeNames(inputs)
    for (const n of names) {
      for (const suffix of [SUFFIX_NEXT, SUFFIX_PREVIOUS]) {
        if (await docker.inspect(n + suffix))
          throw new OperationError(
            `A container '${n + suffix}' from an earlier run exists; run operation 'repair' first`
          )
      }
    }
    // Podman: pods, systemd units and a missing restart-policy update refused before the DB is read
    await checkEngine(ctx, names)
    const view = await inspectNode(ctx, names, inputs)
    try {
      const leader = requireLeader(view)
      if (view.mode === 'none')
        throw new OperationError(
          `'${leader.name}' runs with lock mode 'none': without a DB lock no zero-downtime handoff is possible; enable [Database.Lock] (v2) or DATABASE_LOCKING_MODE=lease`
        )
      if (!inputs.standby && leader.name !== inputs.container)
        throw new OperationError(`Container '${inputs.container}' is not the leader`)
      const { owner, layout, stale } = await layoutPlan(
        ctx,
        inputs.portHolder,
        leader,
        inputs.standby ? view.containers.find((c) => c !== leader) : undefined
      )
      // A health URL that does not reach the node would leave every gate blind. A leader left in
      // a restarted holder's old namespace answers nowhere: the handoff is what brings it back.
      if (!stale) requireHealthUrl(view, leader, inputs.healthUrl)
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
      // One update path: Watchtower, podman auto-update, autoheal, compose (docs/other-updaters.md).
      const found = otherUpdaters(
        await findUpdaters(
          docker,
          view.containers.map((c) => c.info.Id)
        ),
        view.containers.map((c) => nodeFacts(c.info)),
        { imageChanges: inputs.operation === 'upgrade', imageFile: inputs.imageFile }
      )
      report.fact(
        'Other updaters',
        found.length ? found.map((f) => `${f.who} (${f.severity})`).join('; ') : 'none found'
      )
      const refusedBy = updatersRefusal(found, inputs.allowOtherUpdaters)
      if (refusedBy) throw new OperationError(refusedBy)
      for (const f of found) ctx.log.warning(f.message)
      // A rollback that restores must be able to replace every schema: checked before anything changes.
      if (inputs.operation === 'upgrade' && inputs.rollback && inputs.dbRollback === 'restore') {
        const blocked = await schemasNotDroppable(view.db)
        if (blocked.length)
          throw new OperationError(
            `Input 'db-rollback': 'restore' cannot work: ${notDroppableMessage((await view.db.query<{ u: string }>('SELECT current_user AS u'))[0].u, blocked)}`
          )
      }
      // Another node on this DB (the docs' failover secondary not named as 'standby', a node on
      // another host) takes the lease the moment the leader releases it and leads on its own
      // image: decided here, before anything stops (docs/algorithm.md §1).
      const refusal = foreignRefusal(
        await findForeignNodes(
          ctx,
          view.db,
          view.containers.map((c) => c.info),
          view.containers.map((c) => c.session?.appId).filter((x): x is string => !!x)
        ),
        view.containers.map((c) => c.name),
        !!inputs.standby
      )
      if (refusal) throw new OperationError(refusal)
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
          ? isAuthStatus(leader.health?.health)
            ? `/health of '${leader.name}' answers ${leader.health?.health} (behind authentication): failing checks are not compared; ${describeReady(leader.health!)} and the lock decide the gates`
            : `/health of '${leader.name}' not read (${leader.health?.health ?? leader.health?.error ?? 'no answer'}): failing checks are not compared`
          : failingBefore.length
            ? `failing on '${leader.name}' before the change (allowed to fail after it): ${describeChecks(failingBefore)}`
            : `no check failing on '${leader.name}'`
      )
      const link = linkOf(view, inputs.healthUrl, newRun(failingBefore))
      try {
        return await fn({
          view,
          leader,
          other,
          link,
          t: timeouts(inputs, view.config, leader.info),
          keys,
          node: { container: inputs.container, stateDir: inputs.stateDir },
          owner,
          layout
        })
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

/**
 * The leader's network owner (its port holder) and what input 'port-holder' asks of the layout.
 * A failover pair is not converted: both containers must already be in the layout asked.
 */
async function layoutPlan(
  ctx: Context,
  portHolder: boolean | undefined,
  leader: NodeContainer,
  other: NodeContainer | undefined
): Promise<{ owner?: ContainerInfo; layout: LayoutChange; stale: boolean }> {
  const { docker, report } = ctx
  const ownerOf = async (c: NodeContainer) => {
    const ref = joinedTo(c.info)
    return ref ? docker.inspect(ref) : undefined
  }
  const owner = await ownerOf(leader)
  const layout = layoutOf(leader.info, owner)
  report.fact(
    'Layout',
    layout === 'holder' || layout === 'container'
      ? `${layout}: '${leader.name}' joins the network of '${owner ? containerName(owner) : joinedTo(leader.info)}' (${owner ? describePorts(owner) : 'gone'})`
      : `${layout} (${describePorts(leader.info)})`
  )
  const change = layoutChange(
    portHolder,
    layout,
    owner && containerName(owner),
    leader.info.Config.Labels?.['com.docker.compose.project']
  )
  if (change.to === 'none' && 'refuse' in change && change.refuse) throw new OperationError(change.refuse)
  if (change.to === 'none' && 'note' in change && change.note) report.note(`Input 'port-holder': ${change.note}.`)
  const problem = layout === 'holder' ? holderProblem(leader.info, owner) : undefined
  if (problem && problem.kind !== 'stale')
    throw new OperationError(
      `${problem.text}: '${leader.name}' cannot be handed over; run operation 'repair' (docs/port-holder.md)`
    )
  if (problem)
    report.note(
      `${problem.text}; the handoff starts the new instance in the holder's current namespace, which brings the ports back.`
    )
  if (other && change.to !== 'none')
    throw new OperationError(
      `Input 'port-holder': a failover pair is not converted by the action; leave 'port-holder' unset for a pair, or lay the pair out by hand as docs/port-holder.md shows (both containers joined to one holder)`
    )
  if (change.to === 'holder' && (await docker.inspect(leader.name + HOLDER_SUFFIX)))
    throw new OperationError(
      `A container '${leader.name + HOLDER_SUFFIX}' exists but '${leader.name}' does not join it; remove it (or run operation 'repair' after an interrupted run) first`
    )
  return { owner, layout: change, stale: problem?.kind === 'stale' }
}

/**
 * What a restore as the DB role cannot replace (empty when it can): a restore as the DB owner
 * without superuser keeps a `public` of the bootstrap superuser (Postgres 14 and older) and
 * replaces only the role's objects in it; see restorePlan.
 */
export async function schemasNotDroppable(db: DbApi): Promise<string[]> {
  return (await restorePlan((sql) => db.query(sql))).blockers
}

export function notDroppableMessage(role: string, blockers: string[]): string {
  return cannotRestoreMessage({ role, blockers })
}
