// operation: repair (also what the post step runs after a cancelled or crashed run). Reads the
// journal and the node as it is now, then finishes or undoes the interrupted operation so the
// node ends with one leader, serving, named as before.
import type { Context, OperationResult } from '../context.js'
import { OperationError } from '../context.js'
import { Database } from '../database.js'
import { containerName, envMap, type ContainerInfo } from '../docker.js'
import { healthGate, LABEL_RUN, memberOf, timeouts, type Member, type NodeLink } from '../handoff.js'
import { containerOfSession, readLockState, sameApp } from '../lock.js'
import { defaultLockMode, readNodeConfig } from '../node-config.js'
import { asCandidate, maskContainerSecrets } from '../node.js'
import { rollback } from '../rollback.js'
import { HostLock, JournalWriter, journalPath, readJournal } from '../state.js'
import { SUFFIX_NEXT, SUFFIX_PREVIOUS } from './upgrade.js'
import type { DbVersion, NodeSession } from '../database.js'
import { maskDatabaseUrl } from '../secrets.js'

export async function repair(ctx: Context): Promise<OperationResult> {
  const { inputs, docker, report, log } = ctx
  const name = inputs.container
  report.title = `chainlink-rollout repair of ${name}`
  await docker.ping()
  const hostLock = await HostLock.acquire(inputs.stateDir, name, inputs.lockTimeoutMs, ctx.signal, (o) => log.info(`Waiting for the host lock (held by ${o})`))
  try {
    const j = readJournal(inputs.stateDir, name)
    const leftovers = (await Promise.all([name + SUFFIX_NEXT, name + SUFFIX_PREVIOUS].map((n) => docker.inspect(n)))).filter((x): x is ContainerInfo => !!x)
    if ((!j || j.phase === 'done') && leftovers.length === 0) {
      report.step('nothing to repair', j ? `last operation ${j.operation} ended ${j.result}` : 'no journal')
      return { result: 'ok', ok: true, message: 'nothing was in flight', outputs: { leader: name } }
    }
    const plan = (j?.plan ?? {}) as { leaderId?: string; target?: string; dbBefore?: DbVersion; backupFile?: string }
    const runId = j?.runId
    report.fact('Interrupted', j ? `${j.operation} run ${j.runId} started ${j.startedAt}; last step ${j.steps.at(-1)?.step ?? '(none)'}` : 'no journal; leftover containers found')

    // The original leader: by id from the journal, else the one named -rollout-previous, else `name`.
    const previousInfo = (plan.leaderId && (await docker.inspect(plan.leaderId))) || (await docker.inspect(name + SUFFIX_PREVIOUS)) || (await docker.inspect(name))
    if (!previousInfo) throw new OperationError(`cannot find the original container of '${name}' (id ${plan.leaderId ?? '?'}): nothing to repair from`)
    maskContainerSecrets(previousInfo, log.mask)
    const ours = runId ? await docker.listByLabel(`${LABEL_RUN}=${runId}`) : []
    const createdInfos: ContainerInfo[] = []
    for (const c of ours) {
      const info = await docker.inspect(c.Id)
      if (info && info.Id !== previousInfo.Id) createdInfos.push(info)
    }
    for (const l of leftovers) if (l.Id !== previousInfo.Id && !createdInfos.some((c) => c.Id === l.Id)) createdInfos.push(l)

    const config = await readNodeConfig(envMap(previousInfo), [...(previousInfo.Config.Entrypoint ?? []), ...(previousInfo.Config.Cmd ?? [])], async (p) => (await docker.readFile(previousInfo.Id, p))?.toString('utf8'))
    const url = inputs.databaseUrl ?? config.databaseUrl
    if (!url) throw new OperationError(`cannot find the database URL of '${name}'; set the input 'database-url'`)
    maskDatabaseUrl(url, log.mask)
    const db = await Database.connect(url)
    const journal = j && j.phase === 'in-progress' ? reopen(inputs.stateDir, name, j) : undefined
    try {
      const sessions = await db.nodeSessions()
      const mode = inputs.lockMode !== 'auto' ? inputs.lockMode : (config.lockMode ?? defaultLockMode(sessions[0]?.version, config.toml))
      const link: NodeLink = { db, config, mode, databaseUrl: url }
      const t = timeouts(ctx, config, previousInfo)
      const lock = await readLockState(db, mode, config.advisoryLockId)
      const all = [previousInfo, ...createdInfos]
      const holderInfo = lock.holder ? await holderContainer(ctx, all, lock.sessions.filter((s) => sameApp(s.appId, lock.holder))) : undefined
      report.fact('Found', all.map((c) => `${containerName(c)} (${c.Config.Image}, ${c.State.Status}${c === holderInfo ? ', holds the lock' : ''})`).join('; '))

      // Finished but for the clean-up: the container named as before leads, on the new image.
      if (holderInfo && holderInfo.Id !== previousInfo.Id && containerName(holderInfo) === name && holderInfo.State.Running) {
        const m: Member = memberOf(holderInfo, lock.holder)
        await healthGate(ctx, link, m, t)
        for (const c of all) if (c.Id !== holderInfo.Id) await docker.remove(c.Id)
        journal?.done('upgraded')
        report.step('finished', `'${name}' leads on ${holderInfo.Config.Image}; removed the previous and temporary containers`)
        return { result: 'upgraded', ok: true, message: `finished the interrupted ${j?.operation ?? 'operation'}: '${name}' leads on ${holderInfo.Config.Image}`, outputs: { leader: name, image: holderInfo.Config.Image, 'previous-image': previousInfo.Config.Image } }
      }
      // The original leader still leads: only the standby was started. Remove what we made.
      if (holderInfo && holderInfo.Id === previousInfo.Id && previousInfo.State.Running) {
        for (const c of createdInfos) await docker.remove(c.Id)
        if (containerName(previousInfo) !== name) await docker.rename(previousInfo.Id, name)
        const m: Member = memberOf(previousInfo, lock.holder)
        await healthGate(ctx, link, { ...m, name }, t)
        journal?.done('failed')
        report.step('undone', `'${name}' never stopped leading; removed ${createdInfos.length} container(s) this run had started`)
        return { result: 'ok', ok: true, message: `undid the interrupted ${j?.operation ?? 'operation'} before its handoff: '${name}' leads on ${previousInfo.Config.Image}`, outputs: { leader: name, image: previousInfo.Config.Image } }
      }
      // Anything else (the interim leads, or nobody): roll back to the original container.
      const newImage = plan.target ?? createdInfos[0]?.Config.Image
      if (!newImage) throw new OperationError('the journal names no target image and no container of the run is left; start the original container by hand')
      journal?.step('rollback', { reason: 'repair' })
      await rollback(ctx, link, { name, previous: memberOf(previousInfo), created: createdInfos.map((c) => memberOf(c)), newImage, dbBefore: plan.dbBefore ?? (await db.version()), backupFile: plan.backupFile }, t, 'repair of an interrupted operation')
      journal?.done('rolled-back')
      return { result: 'rolled-back', ok: true, message: `rolled back the interrupted ${j?.operation ?? 'operation'}: '${name}' leads on ${previousInfo.Config.Image}`, outputs: { leader: name, image: previousInfo.Config.Image } }
    } finally {
      await db.close()
    }
  } finally {
    hostLock.release()
  }
}

function reopen(stateDir: string, name: string, j: NonNullable<ReturnType<typeof readJournal>>): JournalWriter {
  const w = new JournalWriter(journalPath(stateDir, name), { runId: j.runId, operation: j.operation, container: j.container, plan: j.plan })
  w.journal.steps.push(...j.steps)
  w.step('repair')
  return w
}

async function holderContainer(ctx: Context, infos: ContainerInfo[], sessions: { appId: string; clientAddr: string | null }[]): Promise<ContainerInfo | undefined> {
  for (const s of sessions) {
    const c = await containerOfSession(s as NodeSession, infos.map(asCandidate), (x) => ctx.docker.logs(x.id, 2000))
    if (c) return infos.find((i) => i.Id === c.id)
  }
  return undefined
}
