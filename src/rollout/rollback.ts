// Rollback (docs/algorithm.md, "Or roll back"): stop every container this run started, bring the DB back to
// what the old binary accepts when the new one migrated it, start the previous container and
// hold it to the same lock check and health gate.
import type { Context } from '../context.js'
import { OperationError } from '../errors.js'
import { cloneSpec } from '../handoff/container-spec.js'
import type { DbVersion } from '../postgres/database.js'
import { LABEL_ROLE } from '../handoff/clone.js'
import { describeForeign, findForeignNodes, requireQuietDb } from '../node/foreign-sessions.js'
import { standbyReady } from '../handoff/gate-loops.js'
import { takeOver } from '../handoff/take-over.js'
import type { Member, NodeLink, Timeouts } from '../handoff/types.js'
import { dbInvocation } from '../node/db-command.js'
import { manifestPathFor, readManifest } from '../backup/manifest.js'
import type { RollbackPlan } from './plan.js'
import { restoreRestartPolicy } from './steps.js'
import type { DbRollback, Inputs } from '../inputs/types.js'
import { formatMs } from '../duration.js'

/** one-off `node db rollback` containers are named `<node>-db-rollback-<id>` */
export const SUFFIX_DB_ROLLBACK = '-db-rollback-'

/** How a rollback brings the DB back for the old binary, decided before anything is stopped. */
type DbPlan = { method: 'migrate-down' } | { method: 'restore'; file: string } | { method: 'none'; why: string }

/**
 * Pure: the DB plan from the inputs and what preflight recorded. `backupReadable` says whether
 * the backup's manifest could be read (and, when encrypted, an identity was given).
 */
export function chooseDbPlan(o: {
  dbRollback: DbRollback
  dbBefore: DbVersion
  backupFile?: string
  backupReadable: boolean
}): DbPlan {
  if (o.dbRollback === 'migrate-down' && o.dbBefore.goose !== undefined) return { method: 'migrate-down' }
  if (o.backupFile && o.backupReadable) return { method: 'restore', file: o.backupFile }
  if (o.dbRollback === 'migrate-down')
    return { method: 'none', why: 'the database had no goose version before the upgrade and no readable backup exists' }
  return {
    method: 'none',
    why: o.backupFile ? `the pre-upgrade backup ${o.backupFile} cannot be read here` : 'no pre-upgrade backup was taken'
  }
}

async function backupReadable(file: string | undefined, identity: string | undefined): Promise<boolean> {
  if (!file) return false
  try {
    const m = await readManifest(manifestPathFor(file))
    return !m.encrypted || !!identity
  } catch {
    return false
  }
}

/**
 * Preflight of a rollback's DB plan that needs more than the inputs' syntax: the identity that
 * would decrypt the pre-upgrade backup must belong to the recipient it is encrypted to.
 */
export async function checkDbRollbackInputs(inputs: Inputs): Promise<void> {
  if (!inputs.rollback || inputs.dbRollback !== 'restore' || !inputs.backupRecipient || !inputs.backupIdentity) return
  const { identityToRecipient } = await import('age-encryption')
  let derived: string | undefined
  try {
    derived = await identityToRecipient(inputs.backupIdentity)
  } catch {
    derived = undefined
  }
  if (derived !== inputs.backupRecipient)
    throw new OperationError(
      "Input 'backup-identity' is not the secret key of 'backup-recipient': with 'db-rollback: restore' a rollback could not decrypt the pre-upgrade backup"
    )
}

/**
 * Puts the previous containers back. `restore` brings the DB back from the pre-upgrade backup
 * when the plan says so; the caller passes it in (src/rollout/backup-step.ts), as the backup library sits
 * beside the rollout, not below it. What it returns runs once the node is back (or the rollback
 * has failed): the drop of the DB's previous contents, kept aside so its cost is not downtime.
 */
export async function rollback(
  ctx: Context,
  link: NodeLink,
  plan: RollbackPlan,
  tNew: Timeouts,
  reason: string,
  restore: (ctx: Context, link: NodeLink, file: string) => Promise<(() => Promise<void>) | undefined>
): Promise<Member> {
  let afterRestore: (() => Promise<void>) | undefined
  try {
    return await rollbackSteps(
      ctx,
      link,
      plan,
      tNew,
      reason,
      async (c, l, f) => void (afterRestore = await restore(c, l, f))
    )
  } finally {
    await afterRestore?.()
  }
}

async function rollbackSteps(
  ctx: Context,
  link: NodeLink,
  plan: RollbackPlan,
  tNew: Timeouts,
  reason: string,
  restore: (ctx: Context, link: NodeLink, file: string) => Promise<void>
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
  await refuseForeignNode(ctx, link, plan)
  // The DB plan is decided before anything is stopped: a DB that already moved with no way
  // back keeps every container as it is rather than leaving the node down.
  const dbPlan = chooseDbPlan({
    dbRollback: inputs.dbRollback,
    dbBefore: plan.dbBefore,
    backupFile: plan.backupFile,
    backupReadable: await backupReadable(plan.backupFile, inputs.backupIdentity)
  })
  const movedNow = moved(await link.db.version(), plan.dbBefore)
  if (movedNow && dbPlan.method === 'none')
    throw new OperationError(
      `the new version changed the database and it cannot be brought back (${dbPlan.why}); nothing was stopped: the node is as the failed step left it`
    )
  report.step(
    'rollback plan',
    dbPlan.method === 'none'
      ? 'restart the previous container (the database has not moved)'
      : `if the database moved: ${dbPlan.method === 'restore' ? `restore ${dbPlan.file}` : "the new image's node db rollback"}`
  )
  // Every instance must be down before the DB moves: `db rollback` takes no lock.
  for (const m of [...plan.created, ...(plan.others ?? []).map((o) => o.member), plan.previous]) {
    const info = await docker.inspect(m.id)
    if (info?.State.Running) {
      report.step(`stop ${m.name}`, 'graceful')
      await docker.stop(m.id, t.stopS)
    }
  }
  const now = await link.db.version()
  if (moved(now, plan.dbBefore)) {
    report.step(
      'database moved',
      `goose ${plan.dbBefore.goose} -> ${now.goose}, node_versions ${plan.dbBefore.nodeVersion ?? '-'} -> ${now.nodeVersion ?? '-'}`
    )
    if (dbPlan.method === 'none')
      throw new OperationError(
        `the new version changed the database (goose ${plan.dbBefore.goose} -> ${now.goose}) and it cannot be brought back (${dbPlan.why}); the previous container '${plan.previous.name}' is stopped and cannot run on this database: run the new image's 'node db rollback ${plan.dbBefore.goose}' and reset node_versions, then start it`
      )
    // Nothing rewrites the DB under a live node, whoever runs it.
    await requireQuietDb(
      link.db,
      t.lockMs,
      dbPlan.method === 'restore' ? 'restore the backup' : "run 'db rollback'",
      ctx.signal
    )
    if (dbPlan.method === 'migrate-down') await migrateDown(ctx, link, plan)
    else {
      const taken = (await readManifest(manifestPathFor(dbPlan.file)).catch(() => undefined))?.createdAt
      const age = taken ? ` (taken ${taken}, ${formatMs(Date.now() - Date.parse(taken))} before this restore)` : ''
      await restore(ctx, link, dbPlan.file)
      report.note(
        `The database was restored from the pre-upgrade backup ${dbPlan.file}${age}: every write since that backup was taken is discarded.`
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
  await restoreRestartPolicy(ctx, prev.Id, plan.previous.info)
  const restored = await takeOver(ctx, link, { ...plan.previous, name: plan.name }, t)
  for (const o of plan.others ?? []) {
    const info = await docker.inspect(o.member.id)
    if (!info) continue
    if (info.Name.replace(/^\//, '') !== o.name) await docker.rename(info.Id, o.name)
    await restoreRestartPolicy(ctx, info.Id, o.member.info)
    if (info.State.Running) continue
    const known = new Set((await link.db.nodeSessions()).map((s) => s.appId))
    await docker.start(info.Id)
    await standbyReady(ctx, link, { ...o.member, name: o.name }, restored.appId, known, t.standbyMs)
  }
  for (const m of plan.created) await docker.remove(m.id)
  report.step('rolled back', `'${plan.name}' leads again on ${prev.Config.Image}`)
  return restored
}

/**
 * Another node on the DB (not one of the run's containers) would take the lease the moment the
 * rollback stops the new leader, and keeps its session through a DB rollback: refused before
 * anything is stopped, the node left as the failed step left it (docs/algorithm.md, "Or roll back").
 */
async function refuseForeignNode(ctx: Context, link: NodeLink, plan: RollbackPlan): Promise<void> {
  const ours = []
  for (const m of [...plan.created, ...(plan.others ?? []).map((o) => o.member), plan.previous]) {
    const info = await ctx.docker.inspect(m.id)
    if (info) ours.push(info)
  }
  const apps = [plan.previous, ...plan.created].map((m) => m.appId).filter((x): x is string => !!x)
  const foreign = await findForeignNodes(ctx, link.db, ours, apps)
  if (!foreign.length) return
  const running = ours.filter((i) => i.State.Running).map((i) => `'${i.Name.replace(/^\//, '')}'`)
  throw new OperationError(
    `refusing to roll back: another node runs on this database (${foreign.map(describeForeign).join('; ')}); it would take the lock as soon as the new leader stops and run on a database being rolled back. Nothing was stopped: ${running.length ? `${running.join(', ')} still run${running.length > 1 ? '' : 's'}` : 'no container of this run is running'} as the failed step left ${running.length > 1 ? 'them' : 'it'}. Stop that node, then run operation 'repair' to finish the rollback`
  )
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
    extraLabels: { [LABEL_ROLE]: 'db-rollback' },
    asService: false
  })
  spec.HostConfig = { ...spec.HostConfig, RestartPolicy: { Name: 'no' } }
  spec.Healthcheck = { Test: ['NONE'] }
  report.step('db rollback', `${plan.newImage} ${cmd.join(' ')}`)
  // bounded (long down migrations get at least ready-timeout) and ended by a cancellation: each
  // goose migration is its own transaction, so a stopped run leaves the DB at a version boundary
  const r = await docker.runOnce(spec, Math.max(10 * 60_000, ctx.inputs.readyTimeoutMs), ctx.signal)
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

function moved(now: DbVersion, before: DbVersion): boolean {
  return now.goose !== before.goose || now.nodeVersion !== before.nodeVersion
}
