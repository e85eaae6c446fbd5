// operation: repair (also what the post step runs after a cancelled or crashed run). Reads the
// journal and the node as it is now, then finishes or undoes the interrupted operation so the
// node ends with one leader, serving, named as before.
import type { Context, OperationFn } from '../context.js'
import { OperationError } from '../errors.js'
import type { DbApi } from '../postgres/database.js'
import { containerName, type ContainerInfo } from '../docker/client.js'
import { publishedPorts } from '../handoff/container-spec.js'
import { linkOf, GateError, memberOf, newRun, timeouts, type Member } from '../handoff/types.js'
import { healthGate } from '../handoff/gate-loops.js'
import { LABEL_ROLE, LABEL_RUN } from '../handoff/clone.js'
import { readLockState, sameApp, type LockState } from '../node/lock.js'
import { tieSessions } from '../node/inspect.js'
import { networkView } from '../node/health-url.js'
import { connectNode, maskNodeSecrets, nodeNames } from '../node/connect.js'
import { restoreForRollback } from '../rollout/backup-step.js'
import { repairRestore } from './repair-restore.js'
import { repairDrain } from './repair-drain.js'
import { dropReleasedHolder, networkOwnerId, repairStranded } from './repair-holder.js'
import { rollback } from '../rollout/rollback.js'
import { SUFFIX_DB_ROLLBACK } from '../rollout/migrate-down.js'
import { isScratchName, SUFFIX_REHEARSAL } from '../safeguards/rehearsal.js'
import { restoreRestartPolicy } from '../rollout/steps.js'
import { withHostLock } from '../journal/host-lock.js'
import { findJournal, JournalWriter, journalPath, type readJournal, type JournalPlan } from '../journal/journal.js'
import { keyContainers, SUFFIX_NEXT, SUFFIX_PREVIOUS } from '../rollout/plan.js'

export const repair: OperationFn = async (ctx, inputs) => {
  const { docker, report, log } = ctx
  const name = inputs.container
  report.title = `chainlink-rollout repair of ${name}`
  return withHostLock(ctx, inputs, keyContainers(inputs), async (keys) => {
    // the node's journal under its DB's key, else one of an earlier version under its names
    const found = findJournal(inputs.stateDir, keys.read)
    const key = found?.key ?? keys.write
    const j = found?.journal
    const names = nodeNames(inputs)
    const leftovers = (
      await Promise.all(names.flatMap((n) => [n + SUFFIX_NEXT, n + SUFFIX_PREVIOUS]).map((n) => docker.inspect(n)))
    ).filter((x): x is ContainerInfo => !!x)
    if ((!j || j.phase === 'done') && leftovers.length === 0) {
      report.step('nothing to repair', j ? `last operation ${j.operation} ended ${j.result}` : 'no journal')
      // Nothing of ours to finish or undo, but "ok" would hide a node that is down (a Docker
      // daemon restarted after a crash starts none of its containers): name it. Starting it is
      // the operator's call: the stop may be theirs.
      const stranded = await repairStranded(ctx, inputs, names)
      if (stranded) return stranded
      const down = await nodeDown(ctx, names)
      if (down.length) {
        const message = `nothing was in flight, but ${down.join('; ')}`
        report.note(message)
        return { result: 'failed', ok: false, message, outputs: { leader: name } }
      }
      return { result: 'ok', ok: true, message: 'nothing was in flight', outputs: { leader: name } }
    }
    if (j?.operation === 'restore' && j.phase === 'in-progress')
      return repairRestore(ctx, inputs, j, reopen(inputs.stateDir, key, j))
    if (['drain', 'resume', 'upgrade-host-standby'].includes(j?.operation ?? '') && j?.phase === 'in-progress')
      return repairDrain(ctx, inputs, j, reopen(inputs.stateDir, key, j))
    const plan: Partial<JournalPlan> = j?.plan ?? {}
    const runId = j?.runId
    report.fact(
      'Interrupted',
      j
        ? `${j.operation} run ${j.runId} started ${j.startedAt}; last step ${j.steps.at(-1)?.step ?? '(none)'}`
        : 'no journal; leftover containers found'
    )

    // The original leader: by id from the journal, else the one named -rollout-previous, else `name`.
    const leaderName = plan.leaderName ?? name
    const previousInfo =
      (plan.leaderId && (await docker.inspect(plan.leaderId))) ||
      (await docker.inspect(leaderName + SUFFIX_PREVIOUS)) ||
      (await docker.inspect(leaderName))
    if (!previousInfo)
      throw new OperationError(
        `cannot find the original container of '${leaderName}' (id ${plan.leaderId ?? '?'}): nothing to repair from`
      )
    // a failover pair's other original container
    const otherInfo = plan.otherId ? await docker.inspect(plan.otherId) : undefined
    const originals = [previousInfo, ...(otherInfo ? [otherInfo] : [])]
    for (const o of originals) await maskNodeSecrets(docker, o, log.mask)
    // A one-off `db rollback` container a killed run left behind goes first: it must not run
    // beside a node, and it is nobody's to keep.
    for (const c of await docker.listByLabel(`${LABEL_ROLE}=db-rollback`)) {
      if (c.Names.some((n) => n.replace(/^\//, '').startsWith(leaderName + SUFFIX_DB_ROLLBACK))) {
        report.step('remove', `${c.Names[0].replace(/^\//, '')} (a db rollback container left by the interrupted run)`)
        await docker.remove(c.Id)
      }
    }
    // so does a rehearsal's `db migrate` container (a run killed during its migration rehearsal)
    for (const c of await docker.listByLabel(`${LABEL_ROLE}=rehearsal`)) {
      if (c.Names.some((n) => n.replace(/^\//, '').startsWith(leaderName + SUFFIX_REHEARSAL))) {
        report.step('remove', `${c.Names[0].replace(/^\//, '')} (a rehearsal container left by the interrupted run)`)
        await docker.remove(c.Id)
      }
    }
    const ours = runId ? await docker.listByLabel(`${LABEL_RUN}=${runId}`) : []
    const createdInfos: ContainerInfo[] = []
    for (const c of [...ours.map((x) => x.Id), ...leftovers.map((x) => x.Id)]) {
      const info = await docker.inspect(c)
      if (info && !originals.some((o) => o.Id === info.Id) && !createdInfos.some((x) => x.Id === info.Id))
        createdInfos.push(info)
    }

    // right after an interruption the DB may be restarting: keep trying for a minute
    const { db, config, mode, databaseUrl } = await connectNode(ctx, previousInfo, inputs, { retryForMs: 60_000 })
    const journal = j && j.phase === 'in-progress' ? reopen(inputs.stateDir, key, j) : undefined
    if (journal) await dropScratch(ctx, db, j!)
    try {
      // the checks failing on the leader before the run, as its preflight recorded them
      const failingBefore = j?.plan.failingBefore
      const link = linkOf({ db, config, mode, databaseUrl }, inputs.healthUrl, newRun(failingBefore))
      const t = timeouts(inputs, config, previousInfo)
      const lock = await readLockState(db, mode, config.advisoryLockId)
      const all = [...originals, ...createdInfos]
      const holderInfo = lock.holder ? await holderContainer(ctx, db, all, lock) : undefined
      report.fact(
        'Found',
        all
          .map(
            (c) =>
              `${containerName(c)} (${c.Config.Image}, ${c.State.Status}${c === holderInfo ? ', holds the lock' : ''})`
          )
          .join('; ')
      )
      // the operator's restart policies, as the run journaled them before setting `no`
      const policies = new Map<string, unknown>()
      for (const st of j?.steps ?? [])
        if (st.step === 'restart-policy-no' && st.data) policies.set(String(st.data.id), st.data.policy)
      const asOperator = (info: ContainerInfo): ContainerInfo =>
        policies.has(info.Id)
          ? ({
              ...info,
              HostConfig: { ...info.HostConfig, RestartPolicy: policies.get(info.Id) }
            } as ContainerInfo)
          : info
      const wanted = [leaderName, ...(plan.otherName ? [plan.otherName] : [])]
      const byName = await Promise.all(wanted.map((n) => docker.inspect(n)))

      // Finished but for the clean-up: every name is held by a running container of this run
      // (or, for a plain pair handoff, by the originals), and one of them leads.
      // A run that had decided to roll back is rolled back, whatever leads now.
      const rollingBack = !!j?.steps.some((x) => x.step === 'rollback')
      const complete =
        !!holderInfo &&
        byName.every((c) => c?.State.Running) &&
        byName.some((c) => c?.Id === holderInfo.Id) &&
        (createdInfos.length === 0
          ? j?.operation === 'handoff'
          : byName.every((c) => createdInfos.some((x) => x.Id === c!.Id)))
      const createdHolder = !!holderInfo && createdInfos.some((c) => c.Id === holderInfo.Id)
      // a created leader can stand in for the node only where the node was: on its ports
      const samePorts =
        !!holderInfo &&
        JSON.stringify(publishedPorts(await networkView(docker, holderInfo))) ===
          JSON.stringify(publishedPorts(await networkView(docker, previousInfo)))
      // the gate is evidence only for a container that could be finished
      let gatePassed = false
      if (!rollingBack && holderInfo && (complete || (createdHolder && !otherInfo && samePorts))) {
        try {
          await healthGate(ctx, link, memberOf(holderInfo, lock.holder), t)
          gatePassed = true
        } catch (e) {
          if (!(e instanceof GateError)) throw e
          report.step('cannot finish', `${e.message}`)
        }
      }
      const decision = decideRepair({
        rollingBack,
        complete,
        createdHolder,
        samePorts,
        pair: !!otherInfo,
        gatePassed,
        previousLeads: !!holderInfo && holderInfo.Id === previousInfo.Id && previousInfo.State.Running
      })
      report.fact('Decision', decision)
      if (decision === 'finish-as-node' && holderInfo) {
        // The interrupted run's new container leads and passes the gate: it is the node now.
        // Rolling it back would stop a serving leader (and with a restore, discard its writes).
        const keep = await networkOwnerId(ctx, holderInfo)
        for (const c of all) if (c.Id !== holderInfo.Id && c.Id !== keep) await docker.remove(c.Id)
        await dropReleasedHolder(ctx, j, keep)
        if (containerName(holderInfo) !== leaderName) await docker.rename(holderInfo.Id, leaderName)
        const result = j?.operation === 'upgrade' ? 'upgraded' : 'ok'
        journal?.done(result)
        report.step('finished', `'${leaderName}' (the run's new container) leads on ${holderInfo.Config.Image}`)
        return {
          result,
          ok: true,
          message: `finished the interrupted ${j?.operation ?? 'operation'}: '${leaderName}' leads on ${holderInfo.Config.Image}`,
          outputs: { leader: leaderName, image: holderInfo.Config.Image, 'previous-image': previousInfo.Config.Image }
        }
      }
      const finishable = decision === 'finish'
      if (finishable && holderInfo) {
        const keep = await networkOwnerId(ctx, holderInfo)
        for (const c of all) if (!byName.some((b) => b!.Id === c.Id) && c.Id !== keep) await docker.remove(c.Id)
        await dropReleasedHolder(ctx, j, keep)
        const result = createdInfos.length ? (j?.operation === 'upgrade' ? 'upgraded' : 'ok') : 'ok'
        journal?.done(result)
        report.step(
          'finished',
          `'${containerName(holderInfo)}' leads on ${holderInfo.Config.Image}; removed the previous and temporary containers`
        )
        return {
          result,
          ok: true,
          message: `finished the interrupted ${j?.operation ?? 'operation'}: '${containerName(holderInfo)}' leads on ${holderInfo.Config.Image}`,
          outputs: {
            leader: containerName(holderInfo),
            image: holderInfo.Config.Image,
            'previous-image': previousInfo.Config.Image
          }
        }
      }
      // The original leader still leads: the run never handed off. Remove what it made and put
      // the pair's other container back as the waiting standby.
      if (holderInfo && holderInfo.Id === previousInfo.Id && previousInfo.State.Running) {
        for (const c of createdInfos) await docker.remove(c.Id)
        if (containerName(previousInfo) !== leaderName) await docker.rename(previousInfo.Id, leaderName)
        await restoreRestartPolicy(ctx, previousInfo.Id, asOperator(previousInfo))
        if (otherInfo) await restoreRestartPolicy(ctx, otherInfo.Id, asOperator(otherInfo))
        const m: Member = memberOf(previousInfo, lock.holder)
        await healthGate(ctx, link, { ...m, name: leaderName }, t)
        if (otherInfo && plan.otherName) {
          if (containerName(otherInfo) !== plan.otherName) await docker.rename(otherInfo.Id, plan.otherName)
          if (!otherInfo.State.Running) await docker.start(otherInfo.Id)
        }
        journal?.done('failed')
        report.step(
          'undone',
          `'${leaderName}' never stopped leading; removed ${createdInfos.length} container(s) this run had started`
        )
        return {
          result: 'ok',
          ok: true,
          nodeAsFound: true,
          message: `undid the interrupted ${j?.operation ?? 'operation'} before its handoff: '${leaderName}' leads on ${previousInfo.Config.Image}`,
          outputs: { leader: leaderName, image: previousInfo.Config.Image }
        }
      }
      // Anything else (the interim leads, or nobody): roll back to the original containers.
      const newImage = plan.target ?? createdInfos[0]?.Config.Image ?? previousInfo.Config.Image
      journal?.step('rollback', { reason: 'repair' })
      const others =
        otherInfo && plan.otherName ? [{ member: memberOf(asOperator(otherInfo)), name: plan.otherName }] : []
      const backup = repairBackup({
        named: inputs.backupFile,
        journaled: plan.backupFile,
        rollingBack,
        nothingServes: !holderInfo
      })
      if (backup.note) report.note(backup.note)
      const rb = await rollback(
        ctx,
        link,
        {
          name: leaderName,
          previous: memberOf(asOperator(previousInfo)),
          others,
          created: createdInfos.map((c) => memberOf(c)),
          newImage,
          dbBefore: plan.dbBefore ?? (await db.version()),
          // the way back the interrupted run chose, as it journaled it
          dbRollback: plan.dbRollback ?? inputs.dbRollback,
          backupFile: backup.file,
          settings: inputs,
          downgrade: plan.downgrade
        },
        t,
        'repair of an interrupted operation',
        (c, l, file) => restoreForRollback(c, l, file, inputs)
      )
      if (rb.forward !== undefined) {
        journal?.done('failed')
        return {
          result: 'failed',
          ok: false,
          message: `the interrupted ${j?.operation ?? 'operation'} could not be rolled back: ${rb.forward}. '${leaderName}' serves on ${newImage}, the new version, on its own migrations`,
          outputs: { leader: leaderName, image: newImage, 'previous-image': previousInfo.Config.Image }
        }
      }
      journal?.done('rolled-back')
      // Consistent again, but not where the interrupted operation asked: the job fails, as any rollback does.
      return {
        result: 'rolled-back',
        ok: false,
        message: `rolled back the interrupted ${j?.operation ?? 'operation'}: the node is consistent, '${leaderName}' leads on ${previousInfo.Config.Image}${rb.db ? ` (${rb.db})` : ''}; run the ${j?.operation ?? 'operation'} again`,
        outputs: { leader: leaderName, image: previousInfo.Config.Image }
      }
    } finally {
      await db.close()
    }
  })
}

function reopen(stateDir: string, name: string, j: NonNullable<ReturnType<typeof readJournal>>): JournalWriter {
  const w = new JournalWriter(journalPath(stateDir, name), {
    runId: j.runId,
    operation: j.operation,
    container: j.container,
    plan: j.plan
  })
  w.journal.steps.push(...j.steps)
  w.step('repair')
  return w
}

/** The container the lock holder runs in, when proven (by app id and start times, not by address). */
async function holderContainer(
  ctx: Context,
  db: DbApi,
  infos: ContainerInfo[],
  lock: LockState
): Promise<ContainerInfo | undefined> {
  const { ties } = await tieSessions(ctx, db, infos, lock.sessions)
  const id = ties.find((t) => sameApp(t.appId, lock.holder))?.container
  return infos.find((i) => i.Id === id)
}

export type RepairDecision = 'finish' | 'finish-as-node' | 'undo' | 'rollback'

/**
 * Pure: what a repair does, from the journal and what it observed. A run that had decided to
 * roll back is rolled back. A new container that holds the lock and passed the gate is kept:
 * finished when every name is already in place, or named as the node (a single node on its
 * own ports). The original leader still leading is an undo; anything else is rolled back.
 */
export function decideRepair(o: {
  rollingBack: boolean
  /** every name held by a running container of the run (or the originals after a handoff), one of them the holder */
  complete: boolean
  /** the lock holder is a container the run created */
  createdHolder: boolean
  /** the holder publishes the ports the original leader published */
  samePorts: boolean
  pair: boolean
  gatePassed: boolean
  /** the original leader runs and holds the lock */
  previousLeads: boolean
}): RepairDecision {
  if (o.rollingBack) return 'rollback'
  if (o.complete && o.gatePassed) return 'finish'
  if (o.createdHolder && o.gatePassed && !o.pair && o.samePorts) return 'finish-as-node'
  if (o.previousLeads) return 'undo'
  return 'rollback'
}

/**
 * Pure: the backup a repair's rollback may restore. The one its input names; else the run's own
 * pre-upgrade backup, as its journal recorded it, once the run had decided to roll back (its
 * rollback may have stopped everything already) or nothing leads: then no node has served on
 * the new version since, whose writes a restore would discard. Otherwise the journaled backup is
 * only named, for the operator to pass as 'backup-file'.
 */
export function repairBackup(o: { named?: string; journaled?: string; rollingBack: boolean; nothingServes: boolean }): {
  file?: string
  note?: string
} {
  if (o.named) return { file: o.named }
  if (!o.journaled) return {}
  if (o.rollingBack || o.nothingServes)
    return {
      file: o.journaled,
      note: `The interrupted run's pre-upgrade backup ${o.journaled} (from its journal) is what this rollback restores if the database must go back.`
    }
  return {
    note: `The interrupted run took the pre-upgrade backup ${o.journaled}; a node may have served on the new version since, so it is restored only when 'backup-file' names it.`
  }
}

/** The node's containers that are not running, each with how to start it. */
async function nodeDown(ctx: Context, names: string[]): Promise<string[]> {
  const out: string[] = []
  for (const n of names) {
    const c = await ctx.docker.inspect(n)
    if (!c) out.push(`'${n}' does not exist`)
    else if (!c.State.Running)
      out.push(
        `'${n}' is not running (${c.State.Status}, exit ${c.State.ExitCode} at ${c.State.FinishedAt}): start it with 'docker start ${n}'`
      )
  }
  return out
}

/** The scratch copy a killed rehearsal left on the node's server (a full copy, keystore included). */
async function dropScratch(ctx: Context, db: DbApi, j: NonNullable<ReturnType<typeof readJournal>>): Promise<void> {
  for (const st of j.steps) {
    const name = st.step === 'rehearsal' ? String(st.data?.scratch ?? '') : ''
    if (!isScratchName(name)) continue
    try {
      await db.query(`DROP DATABASE IF EXISTS ${name}`)
      ctx.report.step('remove', `scratch database ${name} (left by the interrupted run's rehearsal)`)
    } catch (e) {
      ctx.report.note(`The interrupted run's scratch database ${name} could not be dropped: ${(e as Error).message}`)
    }
  }
}
