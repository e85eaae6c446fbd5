// Rollback (docs/algorithm.md, "Or roll back"): stop every container this run started, bring the DB back to
// what the old binary accepts when the new one migrated it, start the previous container and
// hold it to the same lock check and health gate.
import type { Context } from './context.js'
import { OperationError } from './context.js'
import { cloneSpec } from './container-spec.js'
import type { DbVersion } from './database.js'
import { LABEL_ROLE, standbyReady, takeOver, type Member, type NodeLink, type Timeouts } from './handoff.js'
import { dbInvocation } from './node-cli.js'
import { restoreForRollback } from './backup-step.js'

/** one-off `node db rollback` containers are named `<node>-db-rollback-<id>` */
export const SUFFIX_DB_ROLLBACK = '-db-rollback-'

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
  backupFile?: string
}

export async function rollback(
  ctx: Context,
  link: NodeLink,
  plan: RollbackPlan,
  tNew: Timeouts,
  reason: string
): Promise<Member> {
  const { docker, report, inputs } = ctx
  // ready-timeout was chosen for the new image (its migrations); the previous container has run
  // on this DB before and is held to its own, generous bound, so a tight ready-timeout can
  // never make a good rollback look failed.
  const t: Timeouts = { ...tNew, readyMs: Math.max(tNew.readyMs, 120_000) }
  report.step('rollback', reason)
  // Nothing is stopped unless the DB answers: without it neither the DB state nor the lock can
  // be proven, and a healthy new leader would be stopped for nothing.
  try {
    await link.db.version()
  } catch (e) {
    throw new OperationError(
      `the node's database does not answer (${(e as Error).message}); nothing was stopped: the node is as the failed step left it`
    )
  }
  // Every instance must be down before the DB moves: `db rollback` takes no lock.
  for (const m of [...plan.created, ...(plan.others ?? []).map((o) => o.member), plan.previous]) {
    const info = await docker.inspect(m.id)
    if (info?.State.Running) {
      report.step(`stop ${m.name}`, 'graceful')
      await docker.stop(m.id, t.stopS)
    }
  }
  const now = await link.db.version()
  const moved = now.goose !== plan.dbBefore.goose || now.nodeVersion !== plan.dbBefore.nodeVersion
  if (moved) {
    report.step(
      'database moved',
      `goose ${plan.dbBefore.goose} -> ${now.goose}, node_versions ${plan.dbBefore.nodeVersion ?? '-'} -> ${now.nodeVersion ?? '-'}`
    )
    if (inputs.dbRollback === 'migrate-down' && plan.dbBefore.goose !== undefined) await migrateDown(ctx, link, plan)
    else {
      if (!plan.backupFile)
        throw new OperationError(
          `the new version changed the database (goose ${plan.dbBefore.goose} -> ${now.goose}) and no pre-upgrade backup exists to restore; the previous container '${plan.previous.name}' is stopped and cannot run on this database: run the new image's 'node db rollback ${plan.dbBefore.goose}' and reset node_versions, then start it`
        )
      await restoreForRollback(ctx, link, plan.backupFile)
      report.note(
        `The database was restored from the pre-upgrade backup ${plan.backupFile}: every write since that backup was taken is lost.`
      )
    }
  }
  // The previous containers get their names back; new ones that took a name go.
  const names = new Set([plan.name, ...(plan.others ?? []).map((o) => o.name)])
  for (const m of plan.created) {
    const info = await docker.inspect(m.id)
    if (info && names.has(info.Name.replace(/^\//, ''))) await docker.remove(m.id)
  }
  const prev = await docker.inspect(plan.previous.id)
  if (!prev)
    throw new OperationError(
      `the previous container '${plan.previous.name}' (${plan.previous.id.slice(0, 12)}) is gone; nothing to roll back to`
    )
  if (prev.Name.replace(/^\//, '') !== plan.name) await docker.rename(prev.Id, plan.name)
  const restored = await takeOver(ctx, link, { ...plan.previous, name: plan.name }, t)
  for (const o of plan.others ?? []) {
    const info = await docker.inspect(o.member.id)
    if (!info) continue
    if (info.Name.replace(/^\//, '') !== o.name) await docker.rename(info.Id, o.name)
    if (info.State.Running) continue
    const known = new Set((await link.db.nodeSessions()).map((s) => s.appId))
    await docker.start(info.Id)
    await standbyReady(ctx, link, { ...o.member, name: o.name }, restored.appId, known, t.standbyMs)
  }
  for (const m of plan.created) await docker.remove(m.id)
  report.step('rolled back', `'${plan.name}' leads again on ${prev.Config.Image}`)
  return restored
}

async function migrateDown(ctx: Context, link: NodeLink, plan: RollbackPlan): Promise<void> {
  const { docker, report } = ctx
  const prev = (await docker.inspect(plan.previous.id))!
  const inv = dbInvocation(prev.Config.Entrypoint, prev.Config.Cmd, ['rollback', String(plan.dbBefore.goose)])
  const cmd = inv.cmd
  const spec = cloneSpec(prev, {
    name: `${plan.name}${SUFFIX_DB_ROLLBACK}${Date.now().toString(36)}`,
    image: plan.newImage,
    cmd,
    entrypoint: inv.entrypoint,
    portBindings: {},
    extraLabels: { [LABEL_ROLE]: 'db-rollback' }
  })
  spec.HostConfig = { ...spec.HostConfig, RestartPolicy: { Name: 'no' } }
  spec.Healthcheck = { Test: ['NONE'] }
  report.step('db rollback', `${plan.newImage} ${cmd.join(' ')}`)
  const r = await docker.runOnce(spec, 10 * 60_000)
  if (r.exitCode !== 0)
    throw new OperationError(
      `'node db rollback ${plan.dbBefore.goose}' with the new image failed (exit ${r.exitCode}): ${r.output.trim().split('\n').slice(-3).join(' | ')}`
    )
  await link.db.resetNodeVersion(plan.dbBefore.nodeVersion)
  const after = await link.db.version()
  if (after.goose !== plan.dbBefore.goose)
    throw new OperationError(`after 'db rollback' the database is at goose ${after.goose}, not ${plan.dbBefore.goose}`)
  report.step(
    'database rolled back',
    `goose ${after.goose}, node_versions ${after.nodeVersion ?? '(empty)'}: no writes lost`
  )
}
