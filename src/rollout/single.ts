// A single node: a temporary standby on the new image proves it waits for the lock (the leader
// untouched until then), then one of the three finishes (finish.ts) puts it in the leader's
// place; any failure after the first handoff rolls back. Each step is journaled before it is taken.
import type { Context, OperationResult } from '../context.js'
import { startClone } from '../clone.js'
import { describePorts, publishedPorts } from '../container-spec.js'
import type { ContainerInfo } from '../docker.js'
import { formatMs } from '../duration.js'
import { memberOf, runOf } from '../handoff-types.js'
import { ReadinessWatcher } from '../watch.js'
import { FINISHES } from './finish.js'
import { recover, succeeded } from './outcome.js'
import { finishOf, SUFFIX_NEXT, type Change, type Prepared } from './plan.js'
import { made, openRecord, replaceCreated } from './record.js'
import { keepCopy, noRestart, preUpgradeBackup, previousIsKept, standbyOrUndo } from './steps.js'

/** The node's HTTP port as published on the host (0.0.0.0 probed on 127.0.0.1). */
function publishedUrl(info: ContainerInfo, httpPort: number): string | undefined {
  const b = publishedPorts(info)[`${httpPort}/tcp`]?.[0]
  if (!b?.HostPort) return undefined
  const ip =
    !b.HostIp || b.HostIp === '0.0.0.0'
      ? '127.0.0.1'
      : b.HostIp === '::'
        ? '[::1]'
        : b.HostIp.includes(':')
          ? `[${b.HostIp}]`
          : b.HostIp
  return `http://${ip}:${b.HostPort}`
}

export async function rollSingle(ctx: Context, p: Prepared, ch: Change): Promise<OperationResult> {
  const { docker, report, inputs } = ctx
  const { leader, link, view } = p
  const name = leader.name
  const finish = finishOf(leader.info, inputs.finish)
  const r = openRecord(ctx, p, ch, memberOf(leader.info, view.lock.holder))
  await preUpgradeBackup(ctx, p, ch, r)
  // A `docker run --rm` leader is deleted by its own stop: a stopped copy of it, made while it
  // still leads, is the previous container a rollback starts.
  const kept = leader.info.HostConfig.AutoRemove ? await keepCopy(ctx, leader.info, r.journal) : undefined
  // Standby: fail here and the leader was never touched.
  r.journal.step('standby-create', { name: name + SUFFIX_NEXT })
  const standby = await startClone(ctx, leader.info, {
    image: ch.createRef,
    name: name + SUFFIX_NEXT,
    ports: 'remap',
    runId: r.runId,
    role: 'next',
    // it takes the node's name only when there is no second container after it (docs/compose.md)
    asService: finish === 'rename',
    onCreated: (m) => made(r, m)
  })
  replaceCreated(r, standby)
  r.journal.step('standby-started', { id: standby.id })
  report.step('standby started', `'${standby.name}' (${describePorts(standby.info)})`)
  const waiting = await standbyOrUndo(ctx, p, r, standby, async () => {
    await docker.remove(standby.id)
    if (kept) await docker.remove(kept.id)
    report.step('standby removed', `'${name}' was never touched (gap 0)`)
  })
  // In the docs' layout clients use the published port, which a second handoff leaves dark
  // from the first handoff to the second: measure it as they see it.
  const portUrl = finish !== 'rename' ? publishedUrl(leader.info, link.config.httpPort) : undefined
  const portWatch = portUrl ? new ReadinessWatcher(runOf(link).observers.of(portUrl)).start() : undefined
  const reportPort = async () => {
    await portWatch?.stop()
    const g = portWatch?.longestGap()
    if (g !== undefined)
      report.fact(
        'Published port',
        `${portUrl}: longest time without a ready answer ${formatMs(g)} (probed fast around each handoff, slowly between)`
      )
  }
  try {
    await noRestart(ctx, r.journal, leader.info)
    await FINISHES[finish]({ ctx, p, ch, r, standby, waiting, kept })
  } catch (e) {
    await reportPort()
    if (kept && r.previous !== kept && !(await docker.inspect(leader.info.Id))?.State.Running)
      r.previous = await previousIsKept(ctx, leader.info, kept)
    // a kept copy that is not the previous container (the leader never stopped) goes with the rest
    const created = kept && r.previous !== kept ? [...r.created, kept] : r.created
    return recover(ctx, p, ch, { ...r, created }, e)
  }
  await reportPort()
  r.journal.step('remove-previous', { id: leader.info.Id, ...(kept ? { kept: kept.id } : {}) })
  await docker.remove(leader.info.Id)
  if (kept) {
    await docker.remove(kept.id)
    report.note(
      `'${name}' ran with --rm; its replacement does not (Docker cannot set it on an existing container, and a stopped node must stay for a rollback).`
    )
  }
  report.step('done', `'${name}' leads on ${ch.display}`)
  return succeeded(
    p,
    ch,
    r,
    name,
    `'${name}' ${ch.operation === 'upgrade' ? `upgraded from ${leader.image} to` : 'now runs a fresh process of'} ${ch.display}`
  )
}
