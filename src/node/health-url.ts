// Where this runner reaches a node container's HTTP server. Input `health-url` is a form applied
// to every container of the node (the leader, the pair's standby, the temporary and final
// containers a rollout creates), with placeholders filled per container:
//   {address}  the container's IP address on its first network (127.0.0.1 with host networking)
//   {port}     the host port published for the node's HTTP port, else the HTTP port itself
//   {name}     the container's name (Docker's DNS on a user network, for a runner in a container)
// e.g. `http://127.0.0.1:{port}` for the docs layout, `http://{name}:6688` for a runner on the
// node's network. A URL without a placeholder names one address for every container, which only
// holds with host networking. Without the input the URL is derived: `http://127.0.0.1:<HTTPPort>`
// with host networking, else `http://<container IP>:<HTTPPort>`.
import type { ContainerInfo, DockerApi } from '../docker/client.js'
import { containerIps, containerName, joinedTo } from '../docker/client.js'

const PLACEHOLDER = /\{(address|port|name)\}/g

export function hasPlaceholder(form: string): boolean {
  return /\{(address|port|name)\}/.test(form)
}

/** Placeholders other than the three known ones, e.g. `{ip}`. */
export function unknownPlaceholders(form: string): string[] {
  return [...form.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]).filter((p) => !['address', 'port', 'name'].includes(p))
}

/** The host port the node's HTTP port is published on, when it is. */
export function publishedHttpPort(info: ContainerInfo, httpPort: number): number | undefined {
  if (info.HostConfig?.NetworkMode === 'host') return undefined
  const key = `${httpPort}/tcp`
  const live = (info.NetworkSettings?.Ports as Record<string, { HostPort?: string }[] | null> | undefined)?.[key]
  const wanted = (info.HostConfig?.PortBindings as Record<string, { HostPort?: string }[] | null> | undefined)?.[key]
  for (const b of [...(live ?? []), ...(wanted ?? [])]) {
    const p = Number(b.HostPort)
    if (Number.isInteger(p) && p > 0) return p
  }
  return undefined
}

/**
 * The container whose network `info` is reached through: itself, or the container it joins
 * (`--network container:<x>`, the port-holder layout, docs/port-holder.md), whose address,
 * published ports and name ({name}: the holder carries the node's name as an alias) the URL
 * uses. Every instance joined to one holder answers at one URL, whichever leads: as with host
 * networking, the gates prove the leader by the lock, never by the URL.
 */
export async function networkView(docker: Pick<DockerApi, 'inspect'>, info: ContainerInfo): Promise<ContainerInfo> {
  const owner = joinedTo(info)
  return (owner && (await docker.inspect(owner))) || info
}

/**
 * Base URL of a container's node HTTP server from this runner: the `form` (input `health-url`)
 * filled in for this container, else derived. Undefined when the container has no address.
 */
export function healthBase(info: ContainerInfo, httpPort: number, form?: string): string | undefined {
  const host = info.HostConfig?.NetworkMode === 'host'
  const address = host ? '127.0.0.1' : containerIps(info)[0]
  if (!form) return address ? `http://${address}:${httpPort}` : undefined
  let missing = false
  const url = form.replace(PLACEHOLDER, (_, p: string) => {
    const v =
      p === 'address'
        ? address
        : p === 'port'
          ? String(publishedHttpPort(info, httpPort) ?? httpPort)
          : containerName(info)
    if (!v) missing = true
    return v ?? ''
  })
  return missing ? undefined : url.replace(/\/+$/, '')
}
