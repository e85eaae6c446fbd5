// Finds the node: its container(s), its settings, its database and which container leads.
// Everything here only reads; it is the preflight of every operation.
import type { Context } from './context.js'
import { OperationError } from './context.js'
import { Database, type DbVersion, type NodeSession } from './database.js'
import { anyDigest, containerIps, containerName, envMap, type ContainerInfo, type DockerClient } from './docker.js'
import { containerOfSession, readLockState, sameApp, type Candidate, type LockState } from './lock.js'
import { defaultLockMode, nodeSecrets, readNodeConfig, type LockMode, type NodeConfig } from './node-config.js'
import { maskDatabaseUrl } from './secrets.js'
import { probe, type HealthProbe } from './health.js'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'

export interface NodeContainer {
  info: ContainerInfo
  name: string
  image: string
  digest?: string
  candidate: Candidate
  /** the DB session of this container's node process, when it has one */
  session?: NodeSession
  health?: HealthProbe
}

export interface NodeView {
  config: NodeConfig
  mode: LockMode
  databaseUrl: string
  db: Database
  lock: LockState
  dbVersion: DbVersion
  containers: NodeContainer[]
  leader?: NodeContainer
  /** app version from the leader's session */
  version?: string
}

export function asCandidate(info: ContainerInfo): Candidate {
  return { name: containerName(info), id: info.Id, running: info.State.Running, ips: containerIps(info) }
}

/** Base URL of a container's node HTTP server, as reachable from this host. */
export function healthBase(info: ContainerInfo, httpPort: number, override?: string): string | undefined {
  if (override) return override
  if (info.HostConfig.NetworkMode === 'host') return `http://127.0.0.1:${httpPort}`
  const ip = containerIps(info)[0]
  return ip ? `http://${ip}:${httpPort}` : undefined
}

export async function requireContainer(docker: DockerClient, name: string, input: string): Promise<ContainerInfo> {
  const info = await docker.inspect(name)
  if (!info) throw new OperationError(`Input '${input}': no container named '${name}' on this Docker host`)
  return info
}

/**
 * Masks everything secret a node container holds, its files included (secrets TOML, config
 * TOML URLs, API and password files), before anything read from the node is printed.
 */
export async function maskNodeSecrets(
  docker: DockerClient,
  info: ContainerInfo,
  mask: (s: string) => void
): Promise<void> {
  // A relative path is read against the container's working directory, as the node does.
  const dir = info.Config.WorkingDir || '/'
  const read = async (path: string) =>
    (await docker.readFile(info.Id, path.startsWith('/') ? path : `${dir.replace(/\/$/, '')}/${path}`))?.toString(
      'utf8'
    )
  const args = [...(info.Config.Entrypoint ?? []), ...(info.Config.Cmd ?? [])]
  for (const s of await nodeSecrets(envMap(info), args, read)) mask(s)
}

export interface InspectOptions {
  names: string[]
  /** containers that may be stopped (a stopped standby is reported, not refused) */
  requireRunning?: boolean
}

export async function inspectNode(ctx: Context, names: string[]): Promise<NodeView> {
  const { docker, inputs, log } = ctx
  const infos: ContainerInfo[] = []
  for (const [i, n] of names.entries()) {
    const info = await requireContainer(docker, n, i === 0 ? 'container' : 'standby')
    await maskNodeSecrets(docker, info, log.mask)
    infos.push(info)
  }
  const primary = infos[0]
  const readFile = async (path: string) => (await docker.readFile(primary.Id, path))?.toString('utf8')
  let config: NodeConfig
  try {
    config = await readNodeConfig(
      envMap(primary),
      [...(primary.Config.Entrypoint ?? []), ...(primary.Config.Cmd ?? [])],
      readFile
    )
  } catch (e) {
    throw new OperationError(`Container '${names[0]}': ${(e as Error).message}`)
  }
  const databaseUrl = await rewriteDbHost(docker, inputs.databaseUrl ?? config.databaseUrl, primary)
  if (!databaseUrl)
    throw new OperationError(
      `Cannot find the node's database URL: container '${names[0]}' has no CL_DATABASE_URL or DATABASE_URL and no [Database] URL in a -secrets file; set the input 'database-url'`
    )
  maskDatabaseUrl(databaseUrl, log.mask)
  if (config.databaseUrl && !inputs.databaseUrl) log.info(`database URL from ${config.databaseUrlSource}`)

  let db: Database
  try {
    db = await Database.connect(databaseUrl)
  } catch (e) {
    throw new OperationError(
      `${(e as Error).message} (from ${inputs.databaseUrl ? "input 'database-url'" : config.databaseUrlSource})`
    )
  }
  try {
    const sessions = await db.nodeSessions()
    const version = sessions[0]?.version
    let mode: LockMode
    if (inputs.lockMode !== 'auto') mode = inputs.lockMode
    else mode = config.lockMode ?? defaultLockMode(version, config.toml)
    const lock = await readLockState(db, mode, config.advisoryLockId)
    const dbVersion = await db.version()
    const containers: NodeContainer[] = []
    for (const info of infos) {
      const img = await docker.imageInfo(info.Image)
      containers.push({
        info,
        name: containerName(info),
        image: info.Config.Image,
        digest: img ? anyDigest(img) : undefined,
        candidate: asCandidate(info)
      })
    }
    const logsOf = (c: Candidate) => docker.logs(c.id, 2000)
    for (const s of lock.sessions) {
      const owner = await containerOfSession(
        s,
        containers.map((c) => c.candidate),
        logsOf
      )
      const nc = owner && containers.find((c) => c.candidate.id === owner.id)
      // The lock connection is one of several sessions per node; keep the lock holder's.
      if (nc && (!nc.session || sameApp(s.appId, lock.holder))) nc.session = s
    }
    for (const c of containers) {
      const base = c.info.State.Running
        ? healthBase(c.info, config.httpPort, c === containers[0] ? inputs.healthUrl : undefined)
        : undefined
      if (base) c.health = await probe(base)
    }
    const leader = lock.holder ? containers.find((c) => sameApp(c.session?.appId, lock.holder)) : undefined
    return {
      config,
      mode,
      databaseUrl,
      db,
      lock,
      dbVersion,
      containers,
      leader,
      version: leader?.session?.version ?? version
    }
  } catch (e) {
    await db.close()
    throw e
  }
}

/**
 * The DB URL is written as the container sees it. A host name that is another container on the
 * node's network (a compose `postgres` service) does not resolve on the host: use its address.
 */
async function rewriteDbHost(
  docker: DockerClient,
  url: string | undefined,
  node: ContainerInfo
): Promise<string | undefined> {
  if (!url) return url
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return url
  }
  const host = u.hostname
  if (!host || isIP(host.replace(/^\[|\]$/g, '')) || host === 'localhost') return url
  try {
    await lookup(host)
    return url
  } catch {
    /* not resolvable here: look for a container of that name or alias on the node's networks */
  }
  for (const [netName, ep] of Object.entries(node.NetworkSettings?.Networks ?? {})) {
    void ep
    const net = await docker.api
      .getNetwork(netName)
      .inspect()
      .catch(() => undefined)
    for (const id of Object.keys(net?.Containers ?? {})) {
      const other = await docker.inspect(id)
      const onNet = other?.NetworkSettings?.Networks?.[netName]
      if (!other || !onNet?.IPAddress) continue
      if (containerName(other) === host || (onNet.Aliases ?? []).includes(host)) {
        u.hostname = onNet.IPAddress
        return u.toString()
      }
    }
  }
  return url
}

/** Fails preflight unless exactly one of the given containers is the proven leader. */
export function requireLeader(view: NodeView, expected?: string): NodeContainer {
  if (view.lock.problem) throw new OperationError(`No single leader: ${view.lock.problem}`)
  const ready = view.containers.filter((c) => c.health?.readyz === 200)
  if (ready.length > 1)
    throw new OperationError(`Two leaders: ${ready.map((c) => c.name).join(' and ')} both answer /readyz 200`)
  if (!view.leader) {
    const holderSessions = view.lock.sessions.filter((s) => sameApp(s.appId, view.lock.holder))
    throw new OperationError(
      `The lock is held by app ${view.lock.holder} (${holderSessions.map((s) => s.clientAddr ?? 'local').join(', ') || 'no session'}), which is none of the containers ${view.containers.map((c) => `'${c.name}'`).join(', ')}: another node on this database leads`
    )
  }
  if (expected && view.leader.name !== expected)
    throw new OperationError(`Container '${expected}' is not the leader: '${view.leader.name}' holds the lock`)
  return view.leader
}
