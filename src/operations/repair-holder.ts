// What repair does about the port-holder layout (docs/port-holder.md): a finished conversion
// keeps the holder its new leader joins; a finished conversion back drops the holder it released;
// a node stranded outside its holder's ports (the holder crashed) is started again inside it.
import type { Context, OperationResult } from '../context.js'
import type { Inputs } from '../inputs/types.js'
import { containerName, joinedTo, type ContainerInfo } from '../docker/client.js'
import type { readJournal } from '../journal/journal.js'
import { holderProblem } from '../handoff/port-holder.js'
import { takeOver } from '../handoff/take-over.js'
import { linkOf, memberOf, timeouts } from '../handoff/types.js'
import { connectNode } from '../node/connect.js'

/** The port holder a container joins (docs/port-holder.md): a finished conversion keeps it. */
export async function networkOwnerId(ctx: Context, info: ContainerInfo): Promise<string | undefined> {
  const ref = joinedTo(info)
  return ref ? (await ctx.docker.inspect(ref))?.Id : undefined
}

/** A conversion back that got as far as stopping its holder: the finished node no longer joins it. */
export async function dropReleasedHolder(
  ctx: Context,
  j: ReturnType<typeof readJournal>,
  keep: string | undefined
): Promise<void> {
  for (const st of j?.steps ?? []) {
    if (st.step !== 'holder-stop' || !st.data?.id || st.data.id === keep) continue
    const h = await ctx.docker.inspect(String(st.data.id))
    if (h && !h.State.Running) {
      ctx.report.step('remove', `${containerName(h)} (the port holder the interrupted run had released)`)
      await ctx.docker.remove(h.Id)
    }
  }
}

/**
 * A node left outside its holder's ports (docs/port-holder.md, "When the holder dies"): a daemon
 * restart that tried to start it before its holder (left exited, with Docker's error), or the
 * holder crashed and came back by its restart policy (or is down while the node runs), and the
 * node still runs in the old namespace, whose interface Docker removed with the holder: no port
 * reaches it, and it cannot reach its DB to renew the lease. Nothing of it serves, so restarting
 * it is repair's to do (unlike a node someone stopped): the holder is started when down, the node
 * is stopped and started inside it, held to the lock check and the health gate.
 */
export async function repairStranded(
  ctx: Context,
  inputs: Inputs,
  names: string[]
): Promise<OperationResult | undefined> {
  const { docker, report } = ctx
  for (const n of names) {
    const info = await docker.inspect(n)
    const ref = info && joinedTo(info)
    if (!info || !ref) continue
    const holder = await docker.inspect(ref)
    // A daemon restart starts containers in no set order: a node started before its holder is
    // left exited with Docker's own error. Its stop was the daemon's, not an operator's.
    const failedJoin =
      !info.State.Running && /cannot join network of a non running container/.test(info.State.Error ?? '')
    const problem: ReturnType<typeof holderProblem> = failedJoin
      ? { kind: 'down', text: `'${n}' could not start before its port holder (${info.State.Error})` }
      : info.State.Running
        ? holderProblem(info, holder)
        : undefined
    if (!holder || !problem || problem.kind === 'gone') continue
    report.step('stranded', problem.text)
    if (!holder.State.Running) {
      report.step(`start ${containerName(holder)}`, 'the port holder')
      await docker.start(holder.Id)
    }
    const { db, config, mode, databaseUrl } = await connectNode(ctx, info, inputs, { retryForMs: 60_000 })
    try {
      const link = linkOf({ db, config, mode, databaseUrl }, inputs.healthUrl)
      const t = timeouts(inputs, config, info)
      if (info.State.Running) {
        report.step(`stop ${n}`, "to start it again inside the holder's current namespace")
        await docker.stop(info.Id, t.stopS)
      }
      const leader = await takeOver(ctx, link, memberOf(info), t)
      return {
        result: 'ok',
        ok: true,
        message: `'${n}' was stranded outside its port holder (${problem.text}); started inside it, it leads again`,
        outputs: { leader: leader.name, image: info.Config.Image, layout: 'holder' }
      }
    } finally {
      await db.close()
    }
  }
  return undefined
}
