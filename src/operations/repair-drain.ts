// Repair of an interrupted drain or resume (the post step after a cancelled run, or operation
// repair after a dead runner), from the journal and the node as it is now (docs/hosts.md):
// - this host's instance still leads: the drain never handed off; its restart policy goes back;
// - an instance on another host leads and passes the gate: a drain is finished (this host's
//   instance stopped, policy no), a resume too (this host's instance started, proven waiting);
// - nobody leads (or the remote leader fails its gate): this host's instance is started again,
//   to lead when nobody does. The node is never left with no leader.
import type { Context, OperationResult } from '../context.js'
import type { Inputs } from '../inputs/types.js'
import { OperationError } from '../errors.js'
import { containerName, type ContainerInfo } from '../docker/client.js'
import { connectNode, maskNodeSecrets } from '../node/connect.js'
import { tieSessions } from '../node/inspect.js'
import { readLockState, sameApp } from '../node/lock.js'
import { remoteLeaderGate } from '../handoff/remote-gate.js'
import { standbyReady } from '../handoff/gate-loops.js'
import { linkOf, GateError, memberOf, timeouts, type NodeLink, type Timeouts } from '../handoff/types.js'
import type { JournalWriter, readJournal } from '../journal/journal.js'
import { clearDrainRecord, readDrainRecord } from '../journal/drained.js'
import { nodeKey } from '../journal/journal.js'
import { takeOver } from '../handoff/take-over.js'
import { restoreRestartPolicy } from '../rollout/steps.js'
import { provePolling } from '../rollout/cross-host.js'
import { putBack } from '../rollout/recreate-waiting.js'

type Journal = NonNullable<ReturnType<typeof readJournal>>

export async function repairDrain(
  ctx: Context,
  inputs: Inputs,
  j: Journal,
  journal: JournalWriter
): Promise<OperationResult> {
  if (j.operation === 'upgrade-host-standby') return repairHostStandby(ctx, inputs, j, journal)
  const { docker, report, log } = ctx
  const key = nodeKey(inputs)
  const info = (await docker.inspect(j.plan.leaderId)) ?? (await docker.inspect(j.plan.leaderName))
  if (!info)
    throw new OperationError(`cannot find '${j.plan.leaderName}' (id ${j.plan.leaderId}): nothing to repair from`)
  const name = containerName(info)
  await maskNodeSecrets(docker, info, log.mask)
  const rec = readDrainRecord(inputs.stateDir, key)
  const journaled = j.steps.find((s) => s.step === 'restart-policy-no' || s.step === 'resume-start')?.data?.policy
  const policy = (rec?.policy ??
    journaled ??
    info.HostConfig.RestartPolicy) as ContainerInfo['HostConfig']['RestartPolicy']
  report.fact(
    'Interrupted',
    `${j.operation} run ${j.runId} started ${j.startedAt}; last step ${j.steps.at(-1)?.step ?? '(none)'}`
  )
  const { db, config, mode, databaseUrl } = await connectNode(ctx, info, inputs, { retryForMs: 60_000 })
  try {
    const link = linkOf({ db, config, mode, databaseUrl }, inputs.healthUrl)
    const t = timeouts(inputs, config, info)
    const lock = await readLockState(db, mode, config.advisoryLockId)
    const { ties } = await tieSessions(ctx, db, [info], lock.sessions)
    const localApp = ties.find((x) => x.container === info.Id)?.appId
    const localLeads = info.State.Running && !!localApp && sameApp(lock.holder, localApp)
    const remoteLeads = !!lock.holder && !localLeads && lock.sessions.some((s) => sameApp(s.appId, lock.holder))
    report.fact(
      'Found',
      `'${name}' ${info.State.Status}${localLeads ? ', holds the lock' : ''}; lock: ${lock.holder ? `app ${lock.holder}` : (lock.problem ?? 'free')}`
    )
    const operator = { ...info, HostConfig: { ...info.HostConfig, RestartPolicy: policy } } as ContainerInfo
    if (localLeads) {
      await restoreRestartPolicy(ctx, info.Id, operator)
      clearDrainRecord(inputs.stateDir, key)
      journal.done('failed')
      report.step('undone', `'${name}' never stopped leading; its restart policy is back`)
      return {
        result: 'ok',
        ok: true,
        message: `undid the interrupted ${j.operation}: '${name}' leads on this host`,
        outputs: { leader: name, 'leader-host': 'local', 'leader-app-id': localApp }
      }
    }
    if (remoteLeads) {
      try {
        await remoteLeaderGate(ctx, link, lock.holder!, t.stableMs, t.readyMs, inputs.remoteHealthUrl)
      } catch (e) {
        if (!(e instanceof GateError)) throw e
        return await again(
          ctx,
          inputs,
          link,
          info,
          policy,
          t,
          journal,
          `the instance on another host failed its gate: ${e.message}`
        )
      }
      if (j.operation === 'drain') {
        if (info.State.Running) await docker.stop(info.Id, t.stopS)
        await docker.setRestartPolicy(info.Id, { Name: 'no' })
        journal.done('ok')
        report.step('finished', `app ${lock.holder} on another host leads; '${name}' stays stopped (restart policy no)`)
        return {
          result: 'ok',
          ok: true,
          message: `finished the interrupted drain: app ${lock.holder} on another host leads; '${name}' stays stopped until 'resume'`,
          outputs: { 'leader-host': 'remote', 'leader-app-id': lock.holder }
        }
      }
      await restoreRestartPolicy(ctx, info.Id, operator)
      if (!info.State.Running) await docker.start(info.Id)
      const known = new Set(info.State.Running ? [] : lock.sessions.map((s) => s.appId))
      await standbyReady(ctx, link, memberOf(info), lock.holder!, known, t.standbyMs)
      clearDrainRecord(inputs.stateDir, key)
      journal.done('ok')
      return {
        result: 'ok',
        ok: true,
        message: `finished the interrupted resume: '${name}' waits; app ${lock.holder} on another host leads`,
        outputs: { 'leader-host': 'remote', 'leader-app-id': lock.holder }
      }
    }
    return await again(
      ctx,
      inputs,
      link,
      info,
      policy,
      t,
      journal,
      `no instance holds the lock (${lock.problem ?? 'free'})`
    )
  } finally {
    await db.close()
  }
}

async function again(
  ctx: Context,
  inputs: Pick<Inputs, 'stateDir' | 'container' | 'standby'>,
  link: NodeLink,
  info: ContainerInfo,
  policy: ContainerInfo['HostConfig']['RestartPolicy'],
  t: ReturnType<typeof timeouts>,
  journal: JournalWriter,
  why: string
): Promise<OperationResult> {
  const name = containerName(info)
  journal.step('drain-restart', { reason: why })
  const became = await startAgain(ctx, link, info, policy, t)
  clearDrainRecord(inputs.stateDir, nodeKey(inputs))
  journal.done('failed')
  ctx.report.step('started again', `'${name}' ${became}`)
  // consistent again, but not where the interrupted operation asked: the job fails
  return {
    result: 'failed',
    ok: false,
    message: `repaired the interrupted ${journal.journal.operation}: ${why}; '${name}' was started again and ${became}`,
    outputs: { leader: name }
  }
}

/**
 * The way back from a drain that failed: this host's instance gets its restart policy back and
 * starts. Nobody holding the lock, it takes it, through the same gates as any new leader; an
 * instance elsewhere holding it, it waits as a standby. Returns what it became.
 */
export async function startAgain(
  ctx: Context,
  link: NodeLink,
  info: ContainerInfo,
  operatorPolicy: ContainerInfo['HostConfig']['RestartPolicy'],
  t: Timeouts
): Promise<string> {
  const operator = { ...info, HostConfig: { ...info.HostConfig, RestartPolicy: operatorPolicy } } as ContainerInfo
  await restoreRestartPolicy(ctx, info.Id, operator)
  const now = await ctx.docker.inspect(info.Id)
  if (!now) throw new OperationError(`'${memberOf(info).name}' is gone: it cannot be started again`)
  const m = memberOf(now)
  if (now.State.Running) return 'was running already'
  const l = await readLockState(link.db, link.mode, link.config.advisoryLockId)
  const live = l.holder && l.sessions.some((s) => sameApp(s.appId, l.holder))
  if (live) {
    const known = new Set(l.sessions.map((s) => s.appId))
    await ctx.docker.start(now.Id)
    await standbyReady(ctx, link, m, l.holder!, known, t.standbyMs)
    return `waits as the standby (app ${l.holder} leads)`
  }
  await takeOver(ctx, link, m, t)
  return 'leads again'
}

/**
 * Repair of an interrupted recreation of this host's waiting instance (a rolling upgrade across
 * hosts, src/rollout/recreate-waiting.ts): the successor created and polling the lock finishes
 * it (the previous container removed); anything else puts the previous container back.
 */
async function repairHostStandby(
  ctx: Context,
  inputs: Inputs,
  j: Journal,
  journal: JournalWriter
): Promise<OperationResult> {
  const { docker, report, log } = ctx
  const prev = j.steps.find((s) => s.step === 'host-previous')?.data as
    { id: string; name: string; aside: string; policy?: ContainerInfo['HostConfig']['RestartPolicy'] } | undefined
  if (!prev || j.steps.some((s) => s.step === 'remove-previous')) {
    journal.done(prev ? 'ok' : 'failed')
    report.step('nothing to undo', prev ? 'the previous container was already removed' : 'nothing had changed')
    return {
      result: 'ok',
      ok: true,
      message: `the interrupted ${j.operation} had ${prev ? 'finished' : 'changed nothing'}`,
      outputs: {}
    }
  }
  const old = await docker.inspect(prev.id)
  const madeId = j.steps.find((s) => s.step === 'host-standby')?.data?.id as string | undefined
  const made = madeId ? await docker.inspect(madeId) : undefined
  const any = made ?? old
  if (!any) throw new OperationError(`neither '${prev.name}' nor its successor is on this host: nothing to repair from`)
  await maskNodeSecrets(docker, any, log.mask)
  const { db, config, mode, databaseUrl } = await connectNode(ctx, any, inputs, { retryForMs: 60_000 })
  try {
    const link = linkOf({ db, config, mode, databaseUrl }, inputs.healthUrl)
    const t = timeouts(inputs, config, any)
    const lock = await readLockState(db, mode, config.advisoryLockId)
    if (made?.State.Running) {
      const { ties } = await tieSessions(ctx, db, [made], lock.sessions)
      const app = ties.find((x) => x.container === made.Id)?.appId
      if (app) {
        const polls = await provePolling(ctx, link, app, prev.name).then(
          () => true,
          () => false
        )
        if (polls || sameApp(lock.holder, app)) {
          if (old) await docker.remove(old.Id)
          journal.done('ok')
          report.step(
            'finished',
            `'${prev.name}' on the new image ${polls ? 'waits' : 'leads'}; the previous container was removed`
          )
          return {
            result: 'ok',
            ok: true,
            message: `finished the interrupted recreation: '${prev.name}' on the new image ${polls ? 'waits' : 'leads'} (app ${app})`,
            outputs: {}
          }
        }
      }
    }
    if (!old)
      throw new OperationError(
        `the previous '${prev.name}' (id ${prev.id}) is gone and its successor is not proven: recreate it`
      )
    const policy = { ...old, HostConfig: { ...old.HostConfig, RestartPolicy: prev.policy } } as ContainerInfo
    await putBack(ctx, link, {
      id: old.Id,
      name: prev.name,
      policy,
      made: made?.Id,
      t
    })
    journal.done('failed')
    return {
      result: 'ok',
      ok: true,
      nodeAsFound: true,
      message: `undid the interrupted recreation: '${prev.name}' is back on its previous image`,
      outputs: {}
    }
  } finally {
    await db.close()
  }
}
