// One record of a rollout run: its journal (opened with the plan repair reads), the containers
// it created, the previous container, the pair's other, the backup and the gaps measured. The
// rollouts keep it up to date step by step; a rollback reads it whole.
import type { Context } from '../context.js'
import type { Member } from '../handoff-types.js'
import { JournalWriter, journalPath, nodeKey } from '../state.js'
import type { Change, Prepared } from './plan.js'

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
  const journal = new JournalWriter(journalPath(ctx.inputs.stateDir, nodeKey(ctx.inputs)), {
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
  ctx.onJournal?.(journal.journal.runId)
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
