// Plain values read from what the Engine returns: a container's name,
// addresses and env; and a free port on the host.
import type Docker from 'dockerode'
import { createServer } from 'node:net'

type ContainerInfo = Docker.ContainerInspectInfo

export function containerName(info: ContainerInfo): string {
  return info.Name.replace(/^\//, '')
}

/** The container's addresses on its networks (empty with host networking). */
export function containerIps(info: ContainerInfo): string[] {
  return Object.values(info.NetworkSettings?.Networks ?? {})
    .map((n) => n.IPAddress)
    .filter((ip): ip is string => !!ip)
}

/** The container whose network this one joins (`--network container:<x>`): its id or name. */
export function joinedTo(info: ContainerInfo): string | undefined {
  const m = /^container:(.+)$/.exec(info.HostConfig?.NetworkMode ?? '')
  return m?.[1]
}

export function envMap(info: ContainerInfo): Map<string, string> {
  const m = new Map<string, string>()
  for (const e of info.Config.Env ?? []) {
    const i = e.indexOf('=')
    if (i > 0) m.set(e.slice(0, i), e.slice(i + 1))
  }
  return m
}

/** A free TCP port on hostIp ('' = all interfaces), not in `avoid`. */
export function freePort(hostIp: string, avoid: Set<number> = new Set()): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen({ host: hostIp && hostIp !== '0.0.0.0' ? hostIp : undefined, port: 0 }, () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => (avoid.has(port) ? freePort(hostIp, avoid).then(resolve, reject) : resolve(port)))
    })
  })
}
