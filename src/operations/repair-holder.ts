// What repair does about the port-holder layout (docs/port-holder.md): a finished conversion
// keeps the holder its new leader joins; a finished conversion back drops the holder it released.
import type { Context } from '../context.js'
import { containerName, joinedTo, type ContainerInfo } from '../docker/client.js'
import type { readJournal } from '../journal/journal.js'

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
