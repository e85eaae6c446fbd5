// Repair of an interrupted `restore` with stop-node (its journal: the containers it stopped, then
// the DB step). A restore commits whole or not at all (docs/algorithm.md, "Restore"), so the
// database is either the backup or as it was; what is left to do is what the restore would have
// done next: start the node again, the previous leader first, and prove it leads.
import type { Context, OperationResult } from '../context.js'
import type { Inputs } from '../inputs/types.js'
import { OperationError } from '../errors.js'
import { sleep } from '../sleep.js'
import type { DbApi } from '../postgres/database.js'
import { linkOf, memberOf, newRun, timeouts } from '../handoff/types.js'
import { healthGate } from '../handoff/gate-loops.js'
import { takeOver } from '../handoff/take-over.js'
import { readLockState } from '../node/lock.js'
import { connectNode, maskNodeSecrets } from '../node/connect.js'
import type { JournalWriter, readJournal } from '../journal/journal.js'

type Journal = NonNullable<ReturnType<typeof readJournal>>

/** The restore's own tools on the database (a killed action's psql ends at the end of its input). */
async function restoreSessions(db: DbApi): Promise<number> {
  const rows = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_stat_activity
      WHERE datname = current_database() AND application_name IN ('psql', 'pg_restore') AND pid <> pg_backend_pid()`
  )
  return Number(rows[0].n)
}

export async function repairRestore(
  ctx: Context,
  inputs: Inputs,
  j: Journal,
  journal: JournalWriter
): Promise<OperationResult> {
  const { docker, report, log } = ctx
  const { plan } = j
  const leader = await docker.inspect(plan.leaderId)
  if (!leader)
    throw new OperationError(
      `the interrupted restore stopped '${plan.leaderName}' (id ${plan.leaderId.slice(0, 12)}), which is gone: start the node by hand`
    )
  const other = plan.otherId ? await docker.inspect(plan.otherId) : undefined
  for (const c of [leader, ...(other ? [other] : [])]) await maskNodeSecrets(docker, c, log.mask)
  const reached = j.steps.some((s) => s.step === 'restore-start')
  const began = j.steps.some((s) => s.step === 'restore-db')
  const dbState = reached
    ? `the restore of ${plan.backupFile} committed`
    : began
      ? `the restore of ${plan.backupFile} did not commit: the database is as it was (a restore commits whole or not at all)`
      : 'the database was not touched'
  report.fact('Database', dbState)
  const { db, config, mode, databaseUrl } = await connectNode(ctx, leader, inputs, { retryForMs: 60_000 })
  try {
    // the interrupted restore's psql or pg_restore ends when its input does: never start the node beside it
    for (let i = 0; (await restoreSessions(db)) > 0; i++) {
      if (i >= 60) throw new OperationError(`the interrupted restore's psql or pg_restore still runs on the database`)
      await sleep(1000, ctx.signal)
    }
    const link = linkOf({ db, config, mode, databaseUrl }, inputs.healthUrl, newRun(plan.failingBefore))
    const t = timeouts(inputs, config, leader)
    const lock = await readLockState(db, mode, config.advisoryLockId)
    const m = memberOf(leader, lock.holder)
    if (leader.State.Running) await healthGate(ctx, link, { ...m, name: plan.leaderName }, t)
    else await takeOver(ctx, link, { ...m, name: plan.leaderName }, t)
    if (other && !other.State.Running) await docker.start(other.Id)
    journal.done('ok')
    report.step('restarted', `'${plan.leaderName}' leads again; ${dbState}`)
    return {
      result: 'ok',
      ok: true,
      message: `finished the interrupted restore: ${dbState}; '${plan.leaderName}' leads again`,
      outputs: { leader: plan.leaderName, ...(plan.backupFile ? { 'backup-file': plan.backupFile } : {}) }
    }
  } finally {
    await db.close()
  }
}
