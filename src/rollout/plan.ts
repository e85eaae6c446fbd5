// What a rollout is asked to do and how it will finish: the change, the prepared node, the names
// a run gives its containers, and the one choice of a single node's finish (rename, swap or a
// second handoff), which the plan's text and the rollout both read. Then the one record of a
// run: its journal (opened with the plan repair reads), the containers it created, the previous
// container, the pair's other, the backup and the gaps measured. The rollouts keep it up to date
// step by step; a rollback reads it whole.
import type { Context } from '../context.js'
import { describePorts, publishedPorts } from '../handoff/container-spec.js'
import type { DbVersion } from '../postgres/database.js'
import { containerName, type ContainerInfo } from '../docker/client.js'
import type { Member, NodeLink, Timeouts } from '../handoff/types.js'
import { JournalWriter, journalPath, type JournalKeys } from '../journal/journal.js'
import type { NodeContainer, NodeView } from '../node/view.js'
import type { Window } from '../safeguards/window.js'
import { HOLDER_SUFFIX, type LayoutChange } from '../handoff/port-holder.js'

export const SUFFIX_NEXT = '-rollout-next'
export const SUFFIX_PREVIOUS = '-rollout-previous'

/**
 * The containers the node's DB (the key of its journal and host lock) is read from: its own, then
 * the names a run in flight or killed gives them for a while.
 */
export function keyContainers(node: { container: string; standby?: string }): string[] {
  const names = [node.container, ...(node.standby ? [node.standby] : [])]
  return [...names, ...names.flatMap((n) => [n + SUFFIX_PREVIOUS, n + SUFFIX_NEXT])]
}

/** What is being rolled out: a new image (upgrade) or the same one (handoff, restart). */
export interface Change {
  operation: 'upgrade' | 'handoff' | 'restart'
  /** reference to create containers from */
  createRef: string
  /** the id of the image verified in preflight: what a container is created from, whatever
   * `createRef` names by then (a tag can move during an hours-long backup) */
  imageId: string
  /** digest-qualified, for outputs */
  display: string
  /** take the pre-upgrade backup (upgrade only) */
  backup: boolean
  /** the upgrade windows (none: any time), checked again right before the first stop */
  window?: Window[]
  /** a deliberate downgrade (src/rollout/downgrade.ts): at the swap, with the node stopped, the
   * running image takes the DB down to the target's newest migration */
  downgrade?: Downgrade
  /** input 'finish': how a single node with published ports gets back onto them (finishOf) */
  finish: 'swap' | 'second-handoff'
  /** input 'prefer-primary': a pair hands leadership back to its primary at the end */
  preferPrimary: boolean
  /** what a failure past the first handoff may do */
  rollback: RollbackChoices
}

/** The rollback's choices, as the run was asked (inputs 'rollback', 'db-rollback', 'backup-identity', 'ready-timeout'). */
export interface RollbackChoices {
  /** false: a failure leaves the node as the failed step left it */
  rollback: boolean
  /** how the DB is brought back for the old binary */
  dbRollback: 'migrate-down' | 'restore'
  /** the age key that reads an encrypted pre-upgrade backup */
  backupIdentity?: string
  /** a down-migration is given at least this long */
  readyTimeoutMs: number
}

export interface Downgrade {
  /** the DB's version (node_versions) and the target's */
  from: string
  to: string
  /** the target's newest migration: what `node db rollback` takes the DB to */
  goose: number
  /** the running (newer) image, whose binary knows the Down steps */
  newerImage: string
}

/** The node as preflight proved it (withNode), handed to a rollout. */
export interface Prepared {
  view: NodeView
  leader: NodeContainer
  /** the pair's other container, proven waiting for the lock */
  other?: NodeContainer
  link: NodeLink
  t: Timeouts
  /** the node's journal keys (its DB's), under whose host lock the run is */
  keys: JournalKeys
  /** the node as the run names it (input 'container': a pair's primary) and its state-dir (the journal's folder) */
  node: { container: string; stateDir: string }
  /** the container whose network the leader joins (its port holder), when it joins one */
  owner?: ContainerInfo
  /** what input 'port-holder' asks of the layout (docs/port-holder.md); undefined: nothing */
  layout?: LayoutChange
}

/**
 * How a single node's rollout ends (docs/decisions.md):
 * - `rename`: the standby took over on the leader's own ports (host network, or nothing
 *   published); it is given the leader's name.
 * - `swap`: the standby proved the new image waits for the lock on spare ports, is removed, and
 *   one prepared stop -> start puts the new container on the original ports (the default).
 * - `second-handoff`: a second handoff from the standby on spare ports to a new container on
 *   the original ports.
 * - `to-holder`: the swap, with the new container joined to a new port holder that takes the
 *   leader's network and ports (input `port-holder: true`, docs/port-holder.md).
 * - `from-holder`: the swap back onto the node's own network and ports, the holder stopped at
 *   the swap and removed at the end (`port-holder: false`).
 * In the holder layout the standby already shares the leader's ports: `rename`, as with host
 * networking.
 */
export type Finish = 'rename' | 'swap' | 'second-handoff' | 'to-holder' | 'from-holder'

/** The finish for a leader: the layout change asked, else its published ports decide whether the standby can keep the place. */
export function finishOf(
  leader: ContainerInfo,
  asked: 'swap' | 'second-handoff',
  layout: LayoutChange = { to: 'none' }
): Finish {
  if (layout.to === 'holder') return 'to-holder'
  if (layout.to === 'own') return 'from-holder'
  const published = leader.HostConfig.NetworkMode !== 'host' && Object.keys(publishedPorts(leader)).length > 0
  return published ? asked : 'rename'
}

/** The plan in one sentence, for the report and a dry run. */
export function planText(p: Prepared, ch: Change, preferPrimary: boolean, asked: 'swap' | 'second-handoff'): string {
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
  const next = `'${leader.name}${SUFFIX_NEXT}'`
  if (ch.downgrade)
    return `verify ${ch.createRef} as a waiting standby ${next}, remove it, stop '${leader.name}', run ${ch.downgrade.newerImage}'s 'node db rollback ${ch.downgrade.goose}' and set node_versions to ${ch.downgrade.to}, then start the new container in its place (${describePorts(leader.info)})`
  const holder = `'${leader.name}${HOLDER_SUFFIX}'`
  switch (finishOf(leader.info, asked, p.layout)) {
    case 'to-holder':
      return `verify ${ch.createRef} as a waiting standby ${next} on spare ports, remove it, then stop '${leader.name}' and start a port holder ${holder} on its network and ports (${describePorts(leader.info)}) with the new container joined to it under the name '${leader.name}'; later runs hand off inside the holder's network`
    case 'from-holder':
      return `verify ${ch.createRef} as a waiting standby ${next} in the holder's network, remove it, then stop '${leader.name}' and the port holder, start the new container on the node's own network and ports (${p.owner ? describePorts(p.owner) : '?'}), and remove the holder`
    case 'swap':
      return `verify ${ch.createRef} as a waiting standby ${next} on spare ports, remove it, then stop '${leader.name}' and start the new container in its place on the original ports (${describePorts(leader.info)})`
    case 'second-handoff':
      return `start ${next} on ${ch.createRef} with ports remapped, hand off to it, then start '${leader.name}' on the original ports (${describePorts(leader.info)}) and hand off again`
    case 'rename':
      if (p.owner)
        return `start ${next} on ${ch.createRef} in the network of '${containerName(p.owner)}' (${describePorts(p.owner)}), hand off to it, then give it the name '${leader.name}'`
      return `start ${next} on ${ch.createRef} (${describePorts(leader.info)}), hand off to it, then give it the name '${leader.name}'`
  }
}

export interface RolloutRecord {
  journal: JournalWriter
  runId: string
  /** every container this run created, listed the moment it exists */
  created: Member[]
  /** the container that led before the run (renamed or kept while the run goes on) */
  previous: Member
  /** a pair's other container, as it was before the run, and its name */
  others: Array<{ member: Member; name: string }>
  backupFile?: string
  /** leader gaps measured, one per handoff (NaN: not measured) */
  gaps: number[]
  /** app ids of the node sessions known so far: a new one is a new container's */
  knownApps: Set<string>
}

/** Opens the run's journal with its plan, and its record. */
export function openRecord(
  ctx: Context,
  p: Prepared,
  ch: Change,
  previous: Member,
  others: RolloutRecord['others'] = []
): RolloutRecord {
  const journal = new JournalWriter(journalPath(p.node.stateDir, p.keys.write), {
    runId: Date.now().toString(36),
    operation: ch.operation,
    container: p.node.container,
    plan: {
      leaderId: p.leader.info.Id,
      leaderName: p.leader.name,
      otherId: p.other?.info.Id,
      otherName: p.other?.name,
      leaderImage: p.leader.image,
      target: ch.createRef,
      dbBefore: p.view.dbVersion,
      dbRollback: ch.rollback.dbRollback,
      ...(ch.downgrade ? { downgrade: true } : {}),
      mode: p.view.mode,
      failingBefore: p.link.run?.failingBefore
    }
  })
  ctx.onJournal?.(journal.journal.runId, journal.path)
  return {
    journal,
    runId: journal.journal.runId,
    created: [],
    previous,
    others,
    gaps: [],
    knownApps: new Set(p.view.lock.sessions.map((s) => s.appId))
  }
}

/**
 * A container the run created, journaled and listed the moment it exists: one whose start fails
 * is still removed by a rollback or repair, and never holds a name they need.
 */
export function made(r: RolloutRecord, m: Member): void {
  r.created.push(m)
  r.journal.step('created', { id: m.id, name: m.name })
}

/** The started container's fuller view replaces the one recorded at create. */
export function replaceCreated(r: RolloutRecord, m: Member): void {
  const i = r.created.findIndex((c) => c.id === m.id)
  if (i >= 0) r.created[i] = m
  else r.created.push(m)
}

/** What a rollback ended with: the previous container leads again, or (`forward`) the new version serves. */
export interface RollbackResult {
  leader: Member
  /** why the old version could not be brought back and the new one serves again */
  forward?: string
  /** what was done to the database when it was more than a down-migration (a restore, and why) */
  db?: string
}

/** What a rollback puts back: the record of the run as the rollback reads it (src/rollout/rollback.ts). */
export interface RollbackPlan {
  /** name the node container must end with */
  name: string
  previous: Member
  /** other original containers (a pair's standby), restored to their names and restarted as waiting standbys */
  others?: Array<{ member: Member; name: string }>
  /** containers this run created, any state */
  created: Member[]
  /** the image whose binary can undo its own migrations */
  newImage: string
  dbBefore: DbVersion
  /** how the DB is brought back: the run's own choice (input 'db-rollback', journaled) */
  dbRollback: 'migrate-down' | 'restore'
  backupFile?: string
  /** the key that reads an encrypted backup, and a down-migration's least time (RollbackChoices) */
  settings: { backupIdentity?: string; readyTimeoutMs: number }
  /** the run was a deliberate downgrade: the previous (newer) image migrates the DB up again itself */
  downgrade?: boolean
}

/**
 * What a rollout is handed by its operation: the steps that reach further than the rollout
 * itself (the backup library, the rollback with its restore), so the rollout stays one floor
 * above the handoff and these stay beside it.
 */
export interface RolloutDeps {
  /** the verified pre-upgrade backup (and the migration rehearsal), when the change asks for it */
  backup(ctx: Context, p: Prepared, ch: Change, r: RolloutRecord): Promise<void>
  /** a downgrade's DB step at the swap, the leader stopped (src/rollout/downgrade.ts): upgrade only */
  downgradeDb?(ctx: Context, p: Prepared, d: Downgrade): Promise<void>
  /** puts the previous containers back after a failure past the first handoff */
  rollback(ctx: Context, link: NodeLink, plan: RollbackPlan, t: Timeouts, reason: string): Promise<RollbackResult>
}
