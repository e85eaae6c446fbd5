// The standby is the leader's own container with only the image changed. What `docker inspect`
// reports is the operator's settings merged with the old image's defaults; copying those
// defaults verbatim would pin the old image's ENV, CMD, labels and healthcheck onto the new
// image, so values equal to the old image's defaults are left for the new image to supply.
import type Docker from 'dockerode'
import { containerName, type ContainerInfo } from '../docker/client.js'

export type PortBindings = Record<string, Array<{ HostIp?: string; HostPort?: string }> | null>

interface CloneOptions {
  name: string
  image: string
  /** replacement host port bindings (published ports remapped); undefined keeps the leader's */
  portBindings?: PortBindings
  /** the old image's config, so its defaults are not copied as if they were the operator's */
  oldImageConfig?: {
    Env?: string[] | null
    Cmd?: string[] | null
    Entrypoint?: string[] | string | null
    Labels?: Record<string, string> | null
    Healthcheck?: unknown
    WorkingDir?: string
    User?: string
    ExposedPorts?: Record<string, unknown> | null
    StopSignal?: string
  }
  /** labels added to mark the container as ours (role, run id) */
  extraLabels?: Record<string, string>
  /**
   * false for a container that never takes the node's name (an interim standby, a one-off `db
   * rollback`): it carries none of compose's labels, so `docker compose` never counts it as a
   * replica of the node's service (docs/compose.md)
   */
  asService?: boolean
  /** overrides the command (e.g. `node db rollback N`) */
  cmd?: string[]
  /** overrides the entrypoint */
  entrypoint?: string[]
  /**
   * keep static addresses (IPAMConfig): only for a container that replaces a stopped one, whose
   * address is free again; a standby beside a running leader cannot share it
   */
  keepAddress?: boolean
}

/** compose finds a service's containers by these labels (project, service, oneoff; docs/compose.md) */
const COMPOSE_LABEL_PREFIX = 'com.docker.compose.'

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null)

export function cloneSpec(info: Docker.ContainerInspectInfo, opts: CloneOptions): Docker.ContainerCreateOptions {
  const c = info.Config as Docker.ContainerInspectInfo['Config'] & { StopSignal?: string; StopTimeout?: number }
  const img = opts.oldImageConfig ?? {}
  const imageEnv = new Set(img.Env ?? [])
  const env = (c.Env ?? []).filter((e) => !imageEnv.has(e))
  const labels: Record<string, string> = {}
  for (const [k, v] of Object.entries(c.Labels ?? {})) {
    if (opts.asService === false && k.startsWith(COMPOSE_LABEL_PREFIX)) continue
    if (img.Labels?.[k] !== v) labels[k] = v
  }
  Object.assign(labels, opts.extraLabels ?? {})
  const exposed: Record<string, object> = {}
  // a container joined to another's network (the port holder) may not expose ports, nor set a hostname
  const joined = (info.HostConfig.NetworkMode ?? '').startsWith('container:')
  if (!joined)
    for (const p of Object.keys(c.ExposedPorts ?? {}))
      if (!img.ExposedPorts || !(p in img.ExposedPorts)) exposed[p] = {}

  const hostConfig: Docker.HostConfig = { ...info.HostConfig }
  // A clone must outlive its stop (`docker run --rm` would delete it): a stopped clone may be
  // the container a rollback starts again.
  hostConfig.AutoRemove = false
  // Podman's inspect names ulimits as the kernel does (RLIMIT_NOFILE), its create wants
  // Docker's names (nofile), and rejects its own; Docker already answers with these (docs/podman.md).
  if (hostConfig.Ulimits)
    hostConfig.Ulimits = hostConfig.Ulimits.map((u) => ({ ...u, Name: u.Name?.replace(/^RLIMIT_/, '').toLowerCase() }))
  if (opts.portBindings) hostConfig.PortBindings = opts.portBindings
  // Every user network is recreated with its aliases (the container-id alias is Docker's own).
  // Engines before API 1.44 accept one endpoint at create: startClone connects the rest.
  const networkMode = hostConfig.NetworkMode ?? 'default'

  const endpoints: Record<string, Docker.EndpointSettings> = {}
  const shortId = info.Id.slice(0, 12)
  for (const [net, ep] of Object.entries(info.NetworkSettings?.Networks ?? {})) {
    if (
      ['bridge', 'host', 'none', 'default'].includes(net) ||
      networkMode === 'host' ||
      networkMode.startsWith('container:')
    )
      continue
    const aliases = (ep.Aliases ?? []).filter(
      (a: string) => a !== shortId && a !== info.Id && a !== containerName(info)
    )
    endpoints[net] = {
      Aliases: aliases.length ? aliases : undefined,
      ...(opts.keepAddress && ep.IPAMConfig ? { IPAMConfig: ep.IPAMConfig } : {})
    } as Docker.EndpointSettings
  }

  const spec: Docker.ContainerCreateOptions = {
    name: opts.name,
    Image: opts.image,
    Env: env,
    Labels: labels,
    Tty: c.Tty,
    OpenStdin: c.OpenStdin,
    StdinOnce: c.StdinOnce,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    HostConfig: hostConfig,
    NetworkingConfig: Object.keys(endpoints).length ? { EndpointsConfig: endpoints } : undefined
  }
  if (Object.keys(exposed).length) spec.ExposedPorts = exposed
  const ownEntrypoint = !same(c.Entrypoint, img.Entrypoint)
  if (opts.entrypoint) spec.Entrypoint = opts.entrypoint
  else if (ownEntrypoint) spec.Entrypoint = c.Entrypoint as string[]
  // Docker falls back to the image's CMD only when the request sets no Entrypoint: with the
  // operator's own entrypoint the command must be passed even when it equals the image's.
  if (opts.cmd) spec.Cmd = opts.cmd
  else if (ownEntrypoint || !same(c.Cmd, img.Cmd)) spec.Cmd = c.Cmd as string[]
  if (c.Healthcheck && !same(c.Healthcheck, img.Healthcheck)) spec.Healthcheck = c.Healthcheck
  if (c.WorkingDir && c.WorkingDir !== img.WorkingDir) spec.WorkingDir = c.WorkingDir
  if (c.User && c.User !== img.User) spec.User = c.User
  if (c.StopSignal && c.StopSignal !== img.StopSignal) spec.StopSignal = c.StopSignal
  if (c.StopTimeout !== undefined) spec.StopTimeout = c.StopTimeout
  // The auto-generated hostname is the old container's id; a set one is the operator's.
  if (c.Hostname && c.Hostname !== shortId && networkMode !== 'host' && !joined) spec.Hostname = c.Hostname
  if (c.Domainname && !joined) spec.Domainname = c.Domainname
  return spec
}

/** Published host ports of a container: container port -> bindings. Empty for host networking. */
export function publishedPorts(info: Docker.ContainerInspectInfo): PortBindings {
  if (info.HostConfig.NetworkMode === 'host') return {}
  const out: PortBindings = {}
  for (const [port, binds] of Object.entries((info.HostConfig.PortBindings ?? {}) as PortBindings)) {
    if (binds && binds.length) out[port] = binds
  }
  return out
}

/**
 * Remaps every published binding to a free host port on the same host address, so a UI the
 * operator bound to 127.0.0.1 never appears on 0.0.0.0. `freePort(hostIp)` finds one.
 */
export async function remapPorts(
  bindings: PortBindings,
  freePort: (hostIp: string, avoid: Set<number>) => Promise<number>
): Promise<PortBindings> {
  const out: PortBindings = {}
  const taken = new Set<number>()
  for (const [port, binds] of Object.entries(bindings)) {
    const list = []
    for (const b of binds ?? []) {
      const p = await freePort(b.HostIp ?? '', taken)
      taken.add(p)
      list.push({ HostIp: b.HostIp ?? '', HostPort: String(p) })
    }
    out[port] = list
  }
  return out
}

/** The published ports as `host-ip:port->port/proto`, for the report. */
export function describePorts(info: ContainerInfo): string {
  const pb = publishedPorts(info)
  const parts = Object.entries(pb).flatMap(([p, binds]) =>
    (binds ?? []).map((b) => `${b.HostIp || '0.0.0.0'}:${b.HostPort}->${p}`)
  )
  const joined = /^container:(.+)$/.exec(info.HostConfig.NetworkMode ?? '')?.[1]
  return parts.length
    ? parts.join(', ')
    : joined
      ? `in the network of ${joined.slice(0, 12)}`
      : info.HostConfig.NetworkMode === 'host'
        ? 'host network'
        : 'no published ports'
}
