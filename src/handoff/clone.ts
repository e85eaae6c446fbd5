// Containers made from the leader's own config: a clone with another image (and maybe other
// ports), labelled with the run that made it.
import type { Context } from '../context.js'
import { AbortedError } from '../errors.js'
import { cloneSpec, publishedPorts, remapPorts, type PortBindings } from './container-spec.js'
import { containerName, freePort, type ContainerInfo } from '../docker/client.js'
import { holderSpec, waitCommand } from './port-holder.js'
import type { Member } from './types.js'

export const LABEL_RUN = 'io.chainlink-rollout.run'
export const LABEL_ROLE = 'io.chainlink-rollout.role'

/** Creates and starts a container from `from`'s config with another image (and maybe ports). */
export async function startClone(
  ctx: Context,
  from: ContainerInfo,
  opts: {
    image: string
    /** the image id `image` must name: created from the id when the reference moved since */
    imageId?: string
    name: string
    ports: 'remap' | 'keep'
    runId: string
    role: string
    start?: boolean
    /** false for a container that never takes the node's name: no compose labels (docs/compose.md) */
    asService?: boolean
    /**
     * the restart policy it is created with instead of `from`'s: set at create, since Podman 4
     * cannot change it afterwards (docs/podman.md)
     */
    restartPolicy?: { Name: string }
    /** told the container as soon as it exists, before it starts (a failed start leaves it) */
    onCreated?: (m: Member) => void
  }
): Promise<Member> {
  const { docker } = ctx
  // a cancelled run starts nothing new: the post step finishes or undoes what it had begun
  if (ctx.signal.aborted) throw new AbortedError()
  const oldImage = await docker.imageInfo(from.Image)
  let portBindings: PortBindings | undefined
  if (opts.ports === 'remap') {
    const published = publishedPorts(from)
    if (Object.keys(published).length) portBindings = await remapPorts(published, freePort)
  }
  const image = await pinnedImage(ctx, opts.image, opts.imageId)
  const spec = cloneSpec(from, {
    name: opts.name,
    image,
    portBindings,
    oldImageConfig: oldImage?.config,
    extraLabels: { [LABEL_RUN]: opts.runId, [LABEL_ROLE]: opts.role },
    keepAddress: opts.ports === 'keep',
    asService: opts.asService
  })
  if (opts.restartPolicy) spec.HostConfig = { ...spec.HostConfig, RestartPolicy: opts.restartPolicy }
  // Engines before API 1.44 take one endpoint at create: the rest are connected before start.
  const endpoints = spec.NetworkingConfig?.EndpointsConfig ?? {}
  const primaryNet = from.HostConfig.NetworkMode ?? 'default'
  const later = Object.entries(endpoints).filter(([n]) => n !== primaryNet && Object.keys(endpoints).length > 1)
  if (later.length)
    spec.NetworkingConfig = {
      EndpointsConfig: Object.fromEntries(Object.entries(endpoints).filter(([n]) => !later.some(([l]) => l === n)))
    }
  const id = await docker.create(spec)
  if (opts.imageId && (await docker.inspect(id))?.Image !== opts.imageId) {
    // the reference moved between the check and the create: this container runs another image
    await docker.remove(id)
    throw new Error(`'${opts.image}' moved to another image while '${opts.name}' was created; it was removed`)
  }
  opts.onCreated?.({ id, name: opts.name, info: (await docker.inspect(id))! })
  for (const [net, ep] of later) await docker.connectNetwork(net, id, ep)
  if (opts.start !== false) await docker.start(id)
  const info = (await docker.inspect(id))!
  return { id, name: opts.name, info }
}

/**
 * The reference to create from: `image` while it still names the verified image (readable in
 * `docker ps`), else the verified image's id (a tag moved on this host since preflight: another
 * pull, a `docker tag`).
 */
async function pinnedImage(ctx: Context, image: string, imageId: string | undefined): Promise<string> {
  if (!imageId) return image
  const now = await ctx.docker.imageInfo(image)
  if (now?.id === imageId) return image
  ctx.log.warning(
    `'${image}' now names ${now?.id ?? 'no image'}, not the verified ${imageId}: creating from the verified image`
  )
  return imageId
}

/**
 * Creates (does not start) the port holder of `leader`'s node (docs/port-holder.md) from the
 * node's own image `image` (verified as `imageId`), with a command that only waits, chosen from
 * what the image has (a probe container, never started, looks at its files).
 */
export async function createPortHolder(
  ctx: Context,
  leader: ContainerInfo,
  opts: { image: string; imageId: string; name: string; runId: string; onCreated?: (m: Member) => void }
): Promise<Member> {
  const { docker } = ctx
  if (ctx.signal.aborted) throw new AbortedError()
  const image = await pinnedImage(ctx, opts.image, opts.imageId)
  const labels = { [LABEL_RUN]: opts.runId, [LABEL_ROLE]: 'port-holder-probe' }
  const probe = await docker.create({ Image: image, Entrypoint: ['/'], Cmd: [], Labels: labels })
  let wait: string[] | undefined
  try {
    wait = await waitCommand((path) => docker.pathExists(probe, path))
  } finally {
    await docker.remove(probe)
  }
  if (!wait)
    throw new Error(
      `the image ${opts.image} has none of sleep, tail or node to run the port holder's wait (docs/port-holder.md); nothing was changed`
    )
  const nodeName = containerName(leader)
  const spec = holderSpec(leader, {
    name: opts.name,
    image,
    wait,
    nodeName,
    labels: { [LABEL_RUN]: opts.runId, [LABEL_ROLE]: 'port-holder' }
  })
  const endpoints = spec.NetworkingConfig?.EndpointsConfig ?? {}
  const primaryNet = spec.HostConfig?.NetworkMode ?? 'default'
  const later = Object.entries(endpoints).filter(([n]) => n !== primaryNet && Object.keys(endpoints).length > 1)
  if (later.length)
    spec.NetworkingConfig = {
      EndpointsConfig: Object.fromEntries(Object.entries(endpoints).filter(([n]) => !later.some(([l]) => l === n)))
    }
  const id = await docker.create(spec)
  opts.onCreated?.({ id, name: opts.name, info: (await docker.inspect(id))! })
  for (const [net, ep] of later) await docker.connectNetwork(net, id, ep)
  return { id, name: opts.name, info: (await docker.inspect(id))! }
}
