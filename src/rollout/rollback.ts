// Rollback (docs/algorithm.md, "Or roll back"): stop every container this run started, bring the DB back to
// what the old binary accepts when the new one migrated it, start the previous container and
// hold it to the same lock check and health gate.
import type { Context } from '../context.js'
import { OperationError } from '../errors.js'
import { publishedPorts } from '../handoff/container-spec.js'
import type { DbVersion } from '../postgres/database.js'
import { LABEL_ROLE, LABEL_RUN, startClone } from '../handoff/clone.js'
import { describeForeign, endDeadSessions, findForeignNodes, requireQuietDb } from '../node/foreign-sessions.js'
import { standbyReady } from '../handoff/gate-loops.js'
import { takeOver } from '../handoff/take-over.js'
import { memberOf, type Member, type NodeLink, type Timeouts } from '../handoff/types.js'
import { containerName, joinedTo, type ContainerInfo } from '../docker/client.js'
import { manifestPathFor, readManifest } from '../backup/manifest.js'
import { SUFFIX_NEXT, SUFFIX_PREVIOUS, type RollbackChoices, type RollbackPlan, type RollbackResult } from './plan.js'
import { restoreRestartPolicy } from './steps.js'
import { migrateDown } from './migrate-down.js'
import { formatMs } from '../duration.js'

/**
 * How a rollback brings the DB back for the old binary, decided before anything is stopped. A
 * down-migration can fail (a data-dependent or irreversible Down step, a timeout): `fallback`
 * is the readable backup restored then; without one, `noFallback` says why, and the new version,
 * which runs on its own migrations, serves again instead (docs/algorithm.md, "Or roll back").
 */
type DbPlan =
  | { method: 'migrate-down'; fallback?: string; noFallback?: string }
  | { method: 'restore'; file: string }
  | { method: 'none'; why: string }

/**
 * Pure: the DB plan from the inputs and what preflight recorded. `backupReadable` says whether
 * the backup's manifest could be read, belongs to this database and, when encrypted, the
 * identity given is its recipient's key.
 */
export function chooseDbPlan(o: {
  dbRollback: RollbackPlan['dbRollback']
  dbBefore: DbVersion
  backupFile?: string
  backupReadable: boolean
}): DbPlan {
  const unreadable = o.backupFile
    ? `the pre-upgrade backup ${o.backupFile} cannot be read here`
    : 'no pre-upgrade backup was taken'
  if (o.dbRollback === 'migrate-down' && o.dbBefore.goose !== undefined)
    return o.backupFile && o.backupReadable
      ? { method: 'migrate-down', fallback: o.backupFile }
      : { method: 'migrate-down', noFallback: unreadable }
  if (o.backupFile && o.backupReadable) return { method: 'restore', file: o.backupFile }
  if (o.dbRollback === 'migrate-down')
    return { method: 'none', why: 'the database had no goose version before the upgrade and no readable backup exists' }
  return { method: 'none', why: unreadable }
}

/** The backup's manifest reads, names this database, and an encrypted one has its recipient's identity. */
async function backupReadable(
  file: string | undefined,
  identity: string | undefined,
  databaseUrl: string | undefined
): Promise<boolean> {
  if (!file) return false
  try {
    const m = await readManifest(manifestPathFor(file))
    const db = databaseUrl ? decodeURIComponent(new URL(databaseUrl).pathname.slice(1)) : undefined
    if (db && m.database?.name && m.database.name !== db) return false
    if (!m.encrypted) return true
    if (!identity) return false
    if (!m.recipient) return true
    const { identityToRecipient } = await import('age-encryption')
    return (await identityToRecipient(identity).catch(() => undefined)) === m.recipient
  } catch {
    return false
  }
}

/**
 * Preflight of a rollback's DB plan that needs more than the inputs' syntax: the identity that
 * would decrypt the pre-upgrade backup must belong to the recipient it is encrypted to.
 */
export async function checkDbRollbackInputs(inputs: RollbackChoices & { backupRecipient?: string }): Promise<void> {
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
 * beside the rollout, not below it. What it returns runs once the node is back, with true: the
 * drop of the DB's previous contents, kept aside so its cost is not downtime; or, when the
 * rollback failed, with false: they are kept (the writes since the backup) and the error says how
 * to swap them back.
 */
export async function rollback(
  ctx: Context,
  link: NodeLink,
  plan: RollbackPlan,
  tNew: Timeouts,
  reason: string,
  restore: (ctx: Context, link: NodeLink, file: string) => Promise<AfterRestore | undefined>
): Promise<RollbackResult> {
  let afterRestore: AfterRestore | undefined
  let restored: RollbackResult
  try {
    restored = await rollbackSteps(
      ctx,
      link,
      plan,
      tNew,
      reason,
      async (c, l, f) => void (afterRestore = await restore(c, l, f))
    )
  } catch (e) {
    const kept = await afterRestore?.(false)
    if (kept && !ctx.signal.aborted) throw new OperationError(`${(e as Error).message}; ${kept}`)
    throw e
  }
  await afterRestore?.(true)
  return restored
}

async function rollbackSteps(
  ctx: Context,
  link: NodeLink,
  plan: RollbackPlan,
  tNew: Timeouts,
  reason: string,
  restore: (ctx: Context, link: NodeLink, file: string) => Promise<void>
): Promise<RollbackResult> {
  const { docker, report } = ctx
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
    dbRollback: plan.dbRollback,
    dbBefore: plan.dbBefore,
    backupFile: plan.backupFile,
    backupReadable: await backupReadable(plan.backupFile, plan.settings.backupIdentity, link.databaseUrl)
  })
  const movedNow = moved(await link.db.version(), plan.dbBefore)
  if (movedNow && dbPlan.method === 'none' && !plan.downgrade)
    throw new OperationError(
      `the new version changed the database and it cannot be brought back (${dbPlan.why}); nothing was stopped: the node is as the failed step left it`
    )
  report.step(
    'rollback plan',
    plan.downgrade
      ? `restart the previous container: a downgrade, so it is the newer version, which migrates the database up again at its start`
      : dbPlan.method === 'none'
        ? 'restart the previous container (the database has not moved)'
        : `if the database moved: ${
            dbPlan.method === 'restore'
              ? `restore ${dbPlan.file}`
              : `the new image's node db rollback; if that fails, ${dbPlan.fallback ? `restore ${dbPlan.fallback}` : `the new version serves again (${dbPlan.noFallback})`}`
          }`
  )
  // Every instance must be down before the DB moves: `db rollback` takes no lock.
  // a port holder last: stopped first, it takes the network from under the node still in it,
  // whose DB sessions then linger unanswered (docs/port-holder.md)
  const holderLast = (m: Member) => (m.info.Config.Labels?.[LABEL_ROLE] === 'port-holder' ? 1 : 0)
  const all = [...plan.created, ...(plan.others ?? []).map((o) => o.member), plan.previous]
  for (const m of [...all].sort((a, b) => holderLast(a) - holderLast(b))) {
    const info = await docker.inspect(m.id)
    if (info?.State.Running) {
      report.step(`stop ${m.name}`, 'graceful')
      await docker.stop(m.id, t.stopS)
    }
  }
  const now = await link.db.version()
  // the backup restored, and why instead of a down-migration: the result's message says so
  let file: string | undefined
  let downFailed: string | undefined
  // a downgrade took the DB down itself: the previous, newer binary passes the version gate and
  // migrates up again from wherever the DB is (docs/node-facts.md §7)
  if (plan.downgrade && moved(now, plan.dbBefore))
    report.step(
      'database moved',
      `goose ${plan.dbBefore.goose} -> ${now.goose}, node_versions ${plan.dbBefore.nodeVersion ?? '-'} -> ${now.nodeVersion ?? '-'}: the previous image migrates it up again`
    )
  else if (moved(now, plan.dbBefore)) {
    report.step(
      'database moved',
      `goose ${plan.dbBefore.goose} -> ${now.goose}, node_versions ${plan.dbBefore.nodeVersion ?? '-'} -> ${now.nodeVersion ?? '-'}`
    )
    // moved while the containers stopped, with no way back: the version that migrated it serves again
    if (dbPlan.method === 'none')
      return forward(
        ctx,
        link,
        plan,
        t,
        `the new version changed the database (goose ${plan.dbBefore.goose} -> ${now.goose}) and it cannot be brought back (${dbPlan.why})`
      )
    // Nothing rewrites the DB under a live node, whoever runs it; sessions of the gone processes
    // of the node's (stopped) containers are ended first (seed 2026, run 5)
    const recorded = all.map((m) => m.info)
    const endDead = () => endDeadSessions(ctx, link.db, recorded)
    const what = dbPlan.method === 'restore' ? 'restore the backup' : "run 'db rollback'"
    await requireQuietDb(link.db, t.lockMs, what, ctx.signal, endDead)
    file = dbPlan.method === 'restore' ? dbPlan.file : undefined
    if (dbPlan.method === 'migrate-down') {
      try {
        await migrateDown(ctx, link, plan)
      } catch (e) {
        if (ctx.signal.aborted) throw e
        // each Down is its own transaction (docs/node-facts.md §11.8): the DB is at a version
        // boundary between the two, which only the new binary runs (it migrates up again)
        downFailed = (e as Error).message
        const at = await link.db.version().catch(() => undefined)
        report.step('db rollback failed', `${downFailed}${at ? `; the database is at goose ${at.goose}` : ''}`)
        if (!dbPlan.fallback)
          return forward(
            ctx,
            link,
            plan,
            t,
            `the new image's down-migration failed (${downFailed}) and ${dbPlan.noFallback}, so the old version cannot run on this database`
          )
        file = dbPlan.fallback
      }
    }
    if (file) {
      const taken = (await readManifest(manifestPathFor(file)).catch(() => undefined))?.createdAt
      const age = taken ? ` (taken ${taken}, ${formatMs(Date.now() - Date.parse(taken))} before this restore)` : ''
      await restore(ctx, link, file)
      report.note(
        `${downFailed ? `The down-migration failed (${downFailed}); instead the` : 'The'} database was restored from the pre-upgrade backup ${file}${age}: every write since that backup was taken is discarded.`
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
  await startNetworkOwner(ctx, prev)
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
  return {
    leader: restored,
    db: file
      ? `${downFailed ? `the down-migration failed (${downFailed}), so ` : ''}the database was restored from the pre-upgrade backup ${file} (writes since it are discarded)`
      : undefined
  }
}

/**
 * The old version cannot run on the database (§9) and nothing can bring the DB back: rather than
 * leave every container stopped, the new version, which runs on its own migrations (its start-up
 * migrates up again from wherever a failed down-migration stopped), serves again under the
 * node's name on its original ports: the run's container that holds them, else a new one from
 * the previous container's config. It is held to the lock check and a health gate that asks
 * only that it serves (a failing /health check is named, not a reason to stop the only version
 * this DB can run). The old containers go: left behind, they would be a run for repair to roll
 * back again.
 */
async function forward(
  ctx: Context,
  link: NodeLink,
  plan: RollbackPlan,
  t: Timeouts,
  why: string
): Promise<RollbackResult> {
  const { docker, report } = ctx
  report.step('roll forward', `${why}: '${plan.name}' is brought back on ${plan.newImage}`)
  const prev = await docker.inspect(plan.previous.id)
  if (prev && containerName(prev) === plan.name) await docker.rename(prev.Id, plan.name + SUFFIX_PREVIOUS)
  const ports = (i: ContainerInfo) => `${i.HostConfig.NetworkMode}|${JSON.stringify(publishedPorts(i))}`
  const created = (await Promise.all(plan.created.map((c) => docker.inspect(c.id)))).filter(
    (i): i is ContainerInfo => !!i
  )
  let target: Member
  const own =
    created.find((i) => containerName(i) === plan.name) ??
    created.find((i) => ports(i) === ports(plan.previous.info) && containerName(i).endsWith(SUFFIX_NEXT))
  if (own) target = memberOf(own)
  else
    target = await startClone(ctx, plan.previous.info, {
      image: plan.newImage,
      name: plan.name,
      ports: 'keep',
      runId: created.find((i) => i.Config.Labels?.[LABEL_RUN])?.Config.Labels[LABEL_RUN] ?? 'rollback',
      role: 'final',
      start: false
    })
  const otherNames = new Set((plan.others ?? []).map((o) => o.name))
  for (const c of created) if (c.Id !== target.id && !otherNames.has(containerName(c))) await docker.remove(c.Id)
  if (target.name !== plan.name) await docker.rename(target.id, plan.name)
  target = { ...target, name: plan.name }
  await restoreRestartPolicy(ctx, target.id, plan.previous.info)
  await startNetworkOwner(ctx, (await docker.inspect(target.id))!)
  const leader = await takeOver(ctx, link, target, t, { anyCheck: 'the only version this database can run' })
  const old = [plan.previous]
  // a pair: the run's new standby waits again; an old one, which cannot run here, stays stopped
  for (const o of plan.others ?? []) {
    const info = created.find((i) => containerName(i) === o.name)
    if (!info) {
      const was = await docker.inspect(o.member.id)
      if (was && containerName(was) !== o.name) await docker.rename(was.Id, o.name)
      report.note(`'${o.name}' (${o.member.info.Config.Image}) stays stopped: its image cannot run on this database.`)
      continue
    }
    old.push(o.member)
    await restoreRestartPolicy(ctx, info.Id, o.member.info)
    if (!(await docker.inspect(info.Id))?.State.Running) {
      const known = new Set((await link.db.nodeSessions()).map((s) => s.appId))
      await docker.start(info.Id)
      await standbyReady(ctx, link, { ...memberOf(info), name: o.name }, leader.appId, known, t.standbyMs)
    }
  }
  for (const m of old) if (await docker.inspect(m.id)) await docker.remove(m.id)
  report.step('rolled forward', `'${plan.name}' leads on ${plan.newImage}: ${why}`)
  report.note(
    `'${plan.name}' serves on ${plan.newImage}, the new version, on its own migrations: ${why}. Its previous container (${plan.previous.info.Config.Image}) was removed; going back to it needs a backup taken before the upgrade restored first.`
  )
  return { leader, forward: why }
}

/**
 * Another node on the DB (not one of the run's containers) would take the lease the moment the
 * rollback stops the new leader, and keeps its session through a DB rollback: refused before
 * anything is stopped, the node left as the failed step left it (docs/algorithm.md, "Or roll back").
 */
async function refuseForeignNode(ctx: Context, link: NodeLink, plan: RollbackPlan): Promise<void> {
  const members = [...plan.created, ...(plan.others ?? []).map((o) => o.member), plan.previous]
  const ours = (await Promise.all(members.map((m) => ctx.docker.inspect(m.id)))).filter((i) => !!i)
  const apps = [plan.previous, ...plan.created].map((m) => m.appId).filter((x): x is string => !!x)
  const recorded = members.map((m) => m.info)
  const foreign = await findForeignNodes(ctx, link.db, ours, apps, recorded)
  if (!foreign.length) return
  const running = ours.filter((i) => i.State.Running).map((i) => `'${i.Name.replace(/^\//, '')}'`)
  throw new OperationError(
    `refusing to roll back: another node runs on this database (${foreign.map(describeForeign).join('; ')}); it would take the lock as soon as the new leader stops and run on a database being rolled back. Nothing was stopped: ${running.length ? `${running.join(', ')} still run${running.length > 1 ? '' : 's'}` : 'no container of this run is running'} as the failed step left ${running.length > 1 ? 'them' : 'it'}. Stop that node, then run operation 'repair' to finish the rollback`
  )
}

/**
 * A container joined to a port holder (docs/port-holder.md) starts only inside a running holder:
 * a conversion back stopped it at the swap, so the way back starts it first.
 */
async function startNetworkOwner(ctx: Context, info: ContainerInfo): Promise<void> {
  const ref = joinedTo(info)
  const owner = ref ? await ctx.docker.inspect(ref) : undefined
  if (!owner || owner.State.Running) return
  ctx.report.step(`start ${containerName(owner)}`, `the port holder '${containerName(info)}' joins`)
  await ctx.docker.start(owner.Id)
}

function moved(now: DbVersion, before: DbVersion): boolean {
  return now.goose !== before.goose || now.nodeVersion !== before.nodeVersion
}

/** restoreForRollback's (src/rollout/backup-step.ts), stated here: importing it would make the chain too deep */
type AfterRestore = (nodeBack: boolean) => Promise<string | undefined>
