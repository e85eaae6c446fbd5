// The port-holder layout (docs/port-holder.md): a long-lived container that owns the node's
// network namespace and published ports, which the node's instances join
// (`--network container:<holder>`). The node binds nothing until it holds the lock
// (docs/node-facts.md §4), so a standby can wait inside the same namespace and take over the same
// ports the moment the leader releases the lease: the docs' layout then hands over like host
// networking, with no container start. Everything here is pure: the holder's spec, the node's
// config as seen joined to it or back on its own network, and which layout a container is in.
import type Docker from 'dockerode'
import { containerName, joinedTo, type ContainerInfo, type DockerApi } from '../docker/client.js'

/** The holder of node `<name>` is `<name>-port-holder`. */
export const HOLDER_SUFFIX = '-port-holder'
/** On the holder: the name of the node it holds the ports of (status and repair find it by it). */
const LABEL_HOLDER_OF = 'io.chainlink-rollout.port-holder-of'

export type Layout = 'holder' | 'container' | 'ports' | 'host' | 'bridge'

/** Whether `owner` (the container a node joins) is a port holder this action made. */
function isPortHolder(owner: ContainerInfo | undefined): boolean {
  return !!owner?.Config.Labels?.[LABEL_HOLDER_OF]
}

/**
 * The node's layout: `holder` (it joins a port holder), `container` (it joins another container,
 * e.g. a VPN sidecar, not ours), `host`, `ports` (published ports of its own) or `bridge`.
 */
export function layoutOf(info: ContainerInfo, owner?: ContainerInfo): Layout {
  if (joinedTo(info)) return isPortHolder(owner) ? 'holder' : 'container'
  if (info.HostConfig.NetworkMode === 'host') return 'host'
  const pb = (info.HostConfig.PortBindings ?? {}) as Record<string, unknown[] | null>
  return Object.values(pb).some((b) => b?.length) || info.HostConfig.PublishAllPorts ? 'ports' : 'bridge'
}

/** The layout of container `name` as it is now on the host (undefined: no such container). */
export async function currentLayout(docker: Pick<DockerApi, 'inspect'>, name: string): Promise<Layout | undefined> {
  const info = await docker.inspect(name)
  if (!info) return undefined
  const owner = joinedTo(info)
  return layoutOf(info, owner ? await docker.inspect(owner) : undefined)
}

/**
 * Why a node instance joined to `holder` is not reachable on the holder's ports, if it is not:
 * the holder is down, or it was started again after the instance (a holder that crashed and came
 * back, a daemon restart that started the node first): the instance then runs in the holder's
 * old, orphaned network namespace, which no published port reaches.
 */
export function holderProblem(
  node: ContainerInfo,
  holder: ContainerInfo | undefined
): { kind: 'gone' | 'down' | 'stale'; text: string } | undefined {
  const name = containerName(node)
  if (!holder) return { kind: 'gone', text: `'${name}' joins the network of a container that is gone` }
  if (!holder.State.Running)
    return { kind: 'down', text: `the port holder '${containerName(holder)}' is ${holder.State.Status}` }
  if (!node.State.Running) return undefined
  const nodeAt = Date.parse(node.State.StartedAt)
  const holderAt = Date.parse(holder.State.StartedAt)
  if (Number.isFinite(nodeAt) && Number.isFinite(holderAt) && holderAt > nodeAt)
    return {
      kind: 'stale',
      text: `the port holder '${containerName(holder)}' started again (${holder.State.StartedAt}) after '${name}' (${node.State.StartedAt}): '${name}' runs in the holder's old network namespace, which its published ports no longer reach`
    }
  return undefined
}

/** What a run does about the layout: convert to the holder, convert back, or nothing (and why not). */
export type LayoutChange = { to: 'holder' | 'own' } | { to: 'none'; note?: string; refuse?: string }

/** Decides from input `port-holder` and the leader's layout (a table-tested decision). */
export function layoutChange(
  asked: boolean | undefined,
  layout: Layout,
  ownerName?: string,
  composeProject?: string
): LayoutChange {
  if (asked === undefined) return { to: 'none' }
  if (asked) {
    if ((layout === 'ports' || layout === 'bridge') && composeProject)
      return {
        to: 'none',
        refuse: `Input 'port-holder': the node is a service of compose project '${composeProject}', whose next \`docker compose up\` would recreate it with its own ports beside the holder; lay the holder out in the compose file instead (docs/port-holder.md)`
      }
    if (layout === 'ports' || layout === 'bridge') return { to: 'holder' }
    if (layout === 'host')
      return {
        to: 'none',
        note: "'port-holder: true' has nothing to hold on host networking: the node's ports are the host's, and a standby already takes them over in place"
      }
    if (layout === 'container')
      return {
        to: 'none',
        note: `the node already joins the network of '${ownerName}', which owns its ports: its standby joins it too`
      }
    return { to: 'none' }
  }
  if (layout === 'holder') return { to: 'own' }
  if (layout === 'container')
    return {
      to: 'none',
      refuse: `Input 'port-holder': the node joins the network of '${ownerName}', which is not a port holder made by chainlink-rollout; there is nothing to convert back`
    }
  return { to: 'none' }
}

/** HostConfig fields that belong to a network namespace: Docker refuses them on a container that joins another's. */
const NET_FIELDS = ['PortBindings', 'PublishAllPorts', 'Dns', 'DnsOptions', 'DnsSearch', 'ExtraHosts', 'Links'] as const

function netSysctls(s: Record<string, string> | undefined, keep: boolean): Record<string, string> | undefined {
  if (!s) return undefined
  const out = Object.fromEntries(Object.entries(s).filter(([k]) => k.startsWith('net.') === keep))
  return Object.keys(out).length ? out : undefined
}

/** A user network's endpoints of `info`, aliases without Docker's own (ids, its name) plus `extra`. */
function endpointsOf(info: ContainerInfo, extraAlias: string | undefined, keepAddress: boolean) {
  const out: Record<string, Docker.EndpointSettings> = {}
  const own = [info.Id, info.Id.slice(0, 12), containerName(info)]
  for (const [net, ep] of Object.entries(info.NetworkSettings?.Networks ?? {})) {
    if (['bridge', 'host', 'none', 'default'].includes(net)) continue
    const aliases = [
      ...new Set([
        ...((ep.Aliases ?? []) as string[]).filter((a) => !own.includes(a)),
        ...(extraAlias ? [extraAlias] : [])
      ])
    ]
    out[net] = {
      Aliases: aliases.length ? aliases : undefined,
      ...(keepAddress && ep.IPAMConfig ? { IPAMConfig: ep.IPAMConfig } : {})
    } as Docker.EndpointSettings
  }
  return out
}

/** The operator's hostname (an automatic one is the container's short id). */
function ownHostname(info: ContainerInfo): string | undefined {
  const h = info.Config.Hostname
  return h && h !== info.Id.slice(0, 12) ? h : undefined
}

/**
 * The holder's create spec: the leader's network (mode, user networks with their aliases and
 * static addresses, the node's name as an alias so other containers still reach it by it),
 * published ports, DNS, extra hosts and net.* sysctls; the node's own image running only `wait`
 * (nothing pulled: an air-gapped host has it); no HEALTHCHECK (the image's would probe whichever
 * instance leads); SIGKILL to stop (the wait has nothing to save); restart policy
 * `unless-stopped`, so it comes back after a crash or a daemon restart unless an operator
 * stopped it.
 */
export function holderSpec(
  leader: ContainerInfo,
  o: { name: string; image: string; wait: string[]; nodeName: string; labels: Record<string, string> }
): Docker.ContainerCreateOptions {
  const hc = leader.HostConfig
  const hostConfig: Docker.HostConfig = {
    NetworkMode: hc.NetworkMode || 'default',
    RestartPolicy: { Name: 'unless-stopped' }
  }
  for (const f of NET_FIELDS)
    if (hc[f] !== undefined && hc[f] !== null) (hostConfig as Record<string, unknown>)[f] = hc[f]
  const sysctls = netSysctls(hc.Sysctls as Record<string, string> | undefined, true)
  if (sysctls) hostConfig.Sysctls = sysctls
  const endpoints = endpointsOf(leader, o.nodeName, true)
  const spec: Docker.ContainerCreateOptions = {
    name: o.name,
    Image: o.image,
    Entrypoint: o.wait,
    Cmd: [],
    Labels: { ...o.labels, [LABEL_HOLDER_OF]: o.nodeName },
    Healthcheck: { Test: ['NONE'] },
    StopSignal: 'SIGKILL',
    ExposedPorts: leader.Config.ExposedPorts ?? undefined,
    HostConfig: hostConfig,
    NetworkingConfig: Object.keys(endpoints).length ? { EndpointsConfig: endpoints } : undefined
  }
  const host = ownHostname(leader)
  if (host) spec.Hostname = host
  if (leader.Config.Domainname) spec.Domainname = leader.Config.Domainname
  return spec
}

/**
 * The leader's config as it would be joined to `holderId`: what the network owns (ports, DNS,
 * extra hosts, networks, hostname, exposed ports) left to the holder. A clone of it (cloneSpec)
 * keeps the node's name, volumes, env, labels and restart policy.
 */
export function joinedView(leader: ContainerInfo, holderId: string): ContainerInfo {
  const hc: Record<string, unknown> = { ...leader.HostConfig, NetworkMode: `container:${holderId}` }
  for (const f of NET_FIELDS) delete hc[f]
  hc.Sysctls = netSysctls(leader.HostConfig.Sysctls as Record<string, string> | undefined, false)
  return {
    ...leader,
    Config: { ...leader.Config, Hostname: '', Domainname: '', ExposedPorts: undefined as never },
    HostConfig: hc as ContainerInfo['HostConfig'],
    NetworkSettings: { ...leader.NetworkSettings, Networks: {} }
  }
}

/**
 * A joined leader's config back on a network of its own, taken from its holder: the holder's
 * network mode, user networks (the node's name alias dropped: the node carries its name again),
 * static addresses, published ports, DNS, extra hosts, net.* sysctls and hostname.
 */
export function ownView(leader: ContainerInfo, holder: ContainerInfo): ContainerInfo {
  const hc: Record<string, unknown> = { ...leader.HostConfig, NetworkMode: holder.HostConfig.NetworkMode }
  for (const f of NET_FIELDS) hc[f] = holder.HostConfig[f]
  const sysctls = {
    ...(netSysctls(leader.HostConfig.Sysctls as Record<string, string> | undefined, false) ?? {}),
    ...(netSysctls(holder.HostConfig.Sysctls as Record<string, string> | undefined, true) ?? {})
  }
  hc.Sysctls = Object.keys(sysctls).length ? sysctls : undefined
  const networks: ContainerInfo['NetworkSettings']['Networks'] = {}
  const drop = [holder.Id.slice(0, 12), containerName(holder), containerName(leader)]
  for (const [net, ep] of Object.entries(holder.NetworkSettings?.Networks ?? {}))
    networks[net] = { ...ep, Aliases: ((ep.Aliases ?? []) as string[]).filter((a) => !drop.includes(a)) }
  return {
    ...leader,
    Config: {
      ...leader.Config,
      Hostname: ownHostname(holder) ?? '',
      Domainname: holder.Config.Domainname ?? '',
      ExposedPorts: holder.Config.ExposedPorts
    },
    HostConfig: hc as ContainerInfo['HostConfig'],
    NetworkSettings: { ...holder.NetworkSettings, Networks: networks }
  }
}

/**
 * The holder's command, from what the node's image has: `sleep infinity` (coreutils: the real
 * image is Ubuntu), else `tail -f /dev/null`, else the image's own node.js runtime (the test
 * simulator has nothing else). `exists` says whether a path is in the image.
 */
export async function waitCommand(exists: (path: string) => Promise<boolean>): Promise<string[] | undefined> {
  const candidates: Array<[string, string[]]> = [
    ['/usr/bin/sleep', ['infinity']],
    ['/bin/sleep', ['infinity']],
    ['/usr/bin/tail', ['-f', '/dev/null']],
    ['/bin/tail', ['-f', '/dev/null']],
    ['/usr/local/bin/node', ['-e', 'setInterval(() => {}, 1 << 30)']],
    ['/usr/bin/node', ['-e', 'setInterval(() => {}, 1 << 30)']]
  ]
  for (const [path, args] of candidates) if (await exists(path)) return [path, ...args]
  return undefined
}
