// Simulated Chainlink nodes for the action's tests, in the layouts operators use: the docs'
// layout (bridge network, 6688 published on a host port), host networking, or bridge only.
import type Docker from 'dockerode'
import { docker, loadBed, simImage, waitFor, type TestDb } from './bed.js'
import { freePort } from '../../src/docker/client.js'

export type Layout = 'ports' | 'host' | 'bridge'

export interface SimNode {
  name: string
  id: string
  /** host port of 6688 (ports layout) or the node's own port (host layout) */
  port?: number
  /** host ports of `extraPorts` (ports layout), by container port */
  extra?: Record<string, number>
}

export interface StartOptions {
  name: string
  tag: string
  /** a full image reference instead of the bed's simulator repository */
  image?: string
  db: TestDb
  layout?: Layout
  env?: Record<string, string>
  /** fast lease settings keep the suite quick; the defaults are what the node ships */
  lease?: { duration: string; refresh: string }
  labels?: Record<string, string>
  restart?: string
  cmd?: string[]
  binds?: string[]
  hostIp?: string
  /** do not wait for it to lead */
  noWait?: boolean
  /** more HostConfig (e.g. AutoRemove for a `docker run --rm` node) */
  hostConfig?: Partial<Docker.HostConfig>
  /** another Docker Engine than the bed's (a dedicated daemon) */
  api?: Docker
  /** more container ports published on free host ports (ports layout), e.g. '6690/tcp' standing for P2P */
  extraPorts?: string[]
}

export async function startNode(o: StartOptions): Promise<SimNode> {
  const layout = o.layout ?? 'ports'
  const lease = o.lease ?? { duration: '3s', refresh: '500ms' }
  const env: Record<string, string> = {
    CL_DATABASE_URL: layout === 'host' ? o.db.url : o.db.bridgeUrl,
    LEASE_LOCK_DURATION: lease.duration,
    LEASE_LOCK_REFRESH_INTERVAL: lease.refresh,
    ...(o.env ?? {})
  }
  // A 2.x node reads TOML only (docs/node-facts.md §11.9): the same settings go in CL_CONFIG,
  // unless the caller brings its own CL_CONFIG or blanks the lease variables (config files).
  const v2 = !/^1\./.test(o.tag)
  const toml: string[] = []
  if (v2 && env.LEASE_LOCK_DURATION && env.LEASE_LOCK_REFRESH_INTERVAL)
    toml.push(`[Database.Lock]\nLeaseDuration = '${lease.duration}'\nLeaseRefreshInterval = '${lease.refresh}'`)
  let port: number | undefined
  const extra: Record<string, number> = {}
  const hostConfig: Docker.HostConfig = { RestartPolicy: { Name: o.restart ?? 'unless-stopped' }, Binds: o.binds }
  if (layout === 'host') {
    port = await freePort('127.0.0.1')
    env.CHAINLINK_PORT = String(port)
    if (v2) toml.push(`[WebServer]\nHTTPPort = ${port}`)
    hostConfig.NetworkMode = 'host'
  } else if (layout === 'ports') {
    port = await freePort(o.hostIp ?? '127.0.0.1')
    hostConfig.PortBindings = { '6688/tcp': [{ HostIp: o.hostIp ?? '127.0.0.1', HostPort: String(port) }] }
    for (const p of o.extraPorts ?? []) {
      const hp = await freePort(o.hostIp ?? '127.0.0.1', new Set([port, ...Object.values(extra)]))
      extra[p] = hp
      hostConfig.PortBindings[p] = [{ HostIp: o.hostIp ?? '127.0.0.1', HostPort: String(hp) }]
    }
  }
  if (toml.length && env.CL_CONFIG === undefined) env.CL_CONFIG = `${toml.join('\n')}\n`
  const api = o.api ?? docker
  const c = await api.createContainer({
    name: o.name,
    Image: o.image ?? simImage(o.tag, loadBed()),
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: { 'test.chainlink-rollout': 'yes', ...(o.labels ?? {}) },
    Cmd: o.cmd,
    ExposedPorts:
      layout === 'ports' ? Object.fromEntries(['6688/tcp', ...(o.extraPorts ?? [])].map((p) => [p, {}])) : undefined,
    HostConfig: { ...hostConfig, ...(o.hostConfig ?? {}) }
  })
  await c.start()
  const node = { name: o.name, id: c.id, port, ...(Object.keys(extra).length ? { extra } : {}) }
  if (!o.noWait) await waitReady(node, 30000, api)
  return node
}

/** Base URL of a node container from the host. */
export async function nodeUrl(name: string, api: Docker = docker): Promise<string | undefined> {
  let info = await api.getContainer(name).inspect()
  // joined to another container's network (the port holder): reached at that one's address
  const owner = /^container:(.+)$/.exec(info.HostConfig.NetworkMode ?? '')?.[1]
  if (owner) info = { ...(await api.getContainer(owner).inspect()), Config: info.Config }
  if (info.HostConfig.NetworkMode === 'host') {
    const envOf = (k: string) => (info.Config.Env ?? []).find((e) => e.startsWith(`${k}=`))?.slice(k.length + 1)
    const p = /HTTPPort\s*=\s*(\d+)/.exec(envOf('CL_CONFIG') ?? '')?.[1] ?? envOf('CHAINLINK_PORT') ?? '6688'
    return `http://127.0.0.1:${p}`
  }
  const ip = Object.values(info.NetworkSettings.Networks)[0]?.IPAddress
  return ip ? `http://${ip}:6688` : undefined
}

export async function readyz(url: string): Promise<number | undefined> {
  try {
    const r = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) })
    return r.status
  } catch {
    return undefined
  }
}

export async function waitReady(node: { name: string }, timeoutMs = 30000, api: Docker = docker): Promise<void> {
  try {
    await waitFor(
      `${node.name} /readyz 200`,
      async () => {
        const url = await nodeUrl(node.name, api)
        return url ? (await readyz(url)) === 200 : false
      },
      timeoutMs,
      100
    )
  } catch (e) {
    const logs = await api
      .getContainer(node.name)
      .logs({ stdout: true, stderr: true, tail: 15 })
      .catch(() => '')
    throw new Error(`${(e as Error).message}\n${String(logs)}`)
  }
}

export interface WriterCheck {
  /** app ids in the order they led */
  writers: string[]
  /** true when some app wrote, another wrote, then the first again: two writers at once */
  interleaved: boolean
  /** longest gap between consecutive heartbeats, ms */
  maxGapMs: number
  versions: string[]
}

/** Reads the simulator's heartbeats: who wrote, in what order, and the longest pause. */
export async function writers(db: TestDb): Promise<WriterCheck> {
  const c = await db.client()
  try {
    const rows = (
      await c.query<{ app_id: string; version: string; ms: string }>(
        `SELECT app_id::text, version, (extract(epoch from at) * 1000)::text AS ms FROM sim_heartbeats ORDER BY at, id`
      )
    ).rows
    const order: string[] = []
    const versions: string[] = []
    let interleaved = false
    let maxGap = 0
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]
      if (order.at(-1) !== r.app_id) {
        if (order.includes(r.app_id)) interleaved = true
        order.push(r.app_id)
        versions.push(r.version)
      }
      if (i > 0) maxGap = Math.max(maxGap, Number(r.ms) - Number(rows[i - 1].ms))
    }
    return { writers: order, interleaved, maxGapMs: Math.round(maxGap), versions }
  } finally {
    await c.end()
  }
}

/** The image (Config.Image) and running state of a container, or undefined if gone. */
export async function containerState(
  name: string,
  api: Docker = docker
): Promise<{ image: string; running: boolean; id: string } | undefined> {
  try {
    const i = await api.getContainer(name).inspect()
    return { image: i.Config.Image, running: i.State.Running, id: i.Id }
  } catch {
    return undefined
  }
}
