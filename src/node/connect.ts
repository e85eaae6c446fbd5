// The one way to the node's database, from a container's config: its settings, the DB URL
// resolved as the container resolves it, masked, connected, and the lock mode. Preflight, repair,
// backup and restore all come through here.
import type { Context } from '../context.js'
import { OperationError } from '../errors.js'
import { Database, type DbApi } from '../postgres/database.js'
import { containerName, envMap, type ContainerInfo, type DockerApi } from '../docker/client.js'
import { defaultLockMode, nodeSecrets, nodeVersionOf, readNodeConfig } from './config.js'
import type { LockMode, NodeConfig } from './config-types.js'
import { maskDatabaseUrl } from '../trust/secrets.js'
import { noteDbClockAhead } from './session-container.js'
import { isIP } from 'node:net'
import { hostRoutes, unreachableMessage } from './host-reach.js'

/** The node's containers named by the inputs: `container`, then the pair's `standby`. */
export function nodeNames(node: { container: string; standby?: string }): string[] {
  return [node.container, ...(node.standby ? [node.standby] : [])]
}

/**
 * What the run was told of the node's database (inputs 'database-url' and 'lock-mode'): each,
 * when given, wins over what the container says.
 */
export interface DbSettings {
  databaseUrl?: string
  lockMode: 'auto' | Exclude<LockMode, 'none'>
}

interface NodeDb {
  config: NodeConfig
  /** as this host reaches the DB: the container's host names resolved as the container resolves them */
  databaseUrl: string
  /** where the URL came from, for messages */
  source: string
  db: DbApi
  mode: LockMode
}

/**
 * Masks everything secret a node container holds, its files included (secrets TOML, config
 * TOML URLs, API and password files), before anything read from the node is printed. Every
 * caller masks each container of the node this way before it connects (connectNode).
 */
export async function maskNodeSecrets(
  docker: DockerApi,
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

/** The node's settings as its container gives them (env, -config/-secrets files in it). */
async function nodeConfigOf(ctx: Context, info: ContainerInfo): Promise<NodeConfig> {
  const readFile = async (path: string) => (await ctx.docker.readFile(info.Id, path))?.toString('utf8')
  try {
    return await readNodeConfig(
      envMap(info),
      [...(info.Config.Entrypoint ?? []), ...(info.Config.Cmd ?? [])],
      readFile,
      nodeVersionOf(info.Config)
    )
  } catch (e) {
    throw new OperationError(`Container '${containerName(info)}': ${(e as Error).message}`)
  }
}

/**
 * The node's DB URL as its container gives it (input `database-url` wins, unless `asNode`: the
 * URL the node itself uses, the input only when the container has none), masked, and as the
 * container resolves its host name; nothing connects. `asNode` is the key of the node's journal
 * and host lock (src/journal/host-lock.ts): the same whether a workflow gives the input or not.
 */
export async function nodeDbUrl(
  ctx: Context,
  info: ContainerInfo,
  settings: Pick<DbSettings, 'databaseUrl'>,
  asNode = false
): Promise<{ config: NodeConfig; written: string; source: string; resolved: ResolvedUrl }> {
  const { log, docker } = ctx
  const config = await nodeConfigOf(ctx, info)
  const fromInput = !!settings.databaseUrl && !(asNode && config.databaseUrl)
  const written = fromInput ? settings.databaseUrl : config.databaseUrl
  const source = fromInput ? "input 'database-url'" : (config.databaseUrlSource ?? 'the node config')
  if (!written)
    throw new OperationError(
      `Cannot find the node's database URL: container '${containerName(info)}' has no CL_DATABASE_URL or DATABASE_URL and no [Database] URL in a -secrets file; set the input 'database-url'`
    )
  maskDatabaseUrl(written, log.mask)
  return { config, written, source, resolved: await resolveDbHost(docker, written, info) }
}

interface ResolvedUrl {
  url: string
  /** how the host name was resolved, for the log */
  how?: string
  /** the container a Docker DNS name stands for: the same server whatever address it has today */
  hostKey?: string
}

/**
 * From a node container to its database: config, URL (input `database-url` wins), host name
 * resolved as in the container, masked, connected (`retryForMs` keeps trying while the DB
 * restarts), and the lock mode (input `lock-mode`, else the config, else by the node's version).
 */
export async function connectNode(
  ctx: Context,
  info: ContainerInfo,
  settings: DbSettings,
  opts: { retryForMs?: number } = {}
): Promise<NodeDb> {
  const { log } = ctx
  const { config, source, resolved } = await nodeDbUrl(ctx, info, settings)
  let databaseUrl = resolved.url
  maskDatabaseUrl(databaseUrl, log.mask)
  if (!settings.databaseUrl) log.info(`database URL from ${source}`)
  if (resolved.how) log.info(`database host ${resolved.how}`)
  const open = (url: string) =>
    ctx.openDb ? ctx.openDb(url, opts.retryForMs ?? 0) : Database.connect(url, 10_000, opts.retryForMs ?? 0)
  let db: DbApi | undefined
  try {
    db = await open(databaseUrl)
  } catch (e) {
    // An address of this host (the docs' host.docker.internal): the host may reach the same
    // server only by loopback or its socket (src/node/host-reach.ts).
    const routes = hostRoutes(databaseUrl)
    const where = `${new URL(databaseUrl).host}`
    if (!routes.length)
      throw new OperationError(`${(e as Error).message} (from ${source}${resolved.how ? `; ${resolved.how}` : ''})`)
    const tries = [{ how: where, error: (e as Error).message }]
    for (const r of routes) {
      maskDatabaseUrl(r.url, log.mask)
      try {
        db = await open(r.url)
        log.info(`database reached at ${r.how}: this host cannot connect to ${where} (${tries[0].error})`)
        databaseUrl = r.url
        break
      } catch (e2) {
        tries.push({ how: r.how, error: (e2 as Error).message })
      }
    }
    if (!db) throw new OperationError(unreachableMessage(where, tries))
  }
  try {
    const t0 = Date.now()
    const r = await db.query<{ now: Date }>(`SELECT clock_timestamp() AS now`)
    noteDbClockAhead(db, r[0].now.getTime() - (t0 + Date.now()) / 2)
    let mode: LockMode
    if (settings.lockMode !== 'auto') mode = settings.lockMode
    else mode = config.lockMode ?? defaultLockMode((await db.nodeSessions())[0]?.version, config.toml)
    return { config, databaseUrl, source, db, mode }
  } catch (e) {
    await db.close()
    throw e
  }
}

/** `name:ip` or `name=ip` entries of `--add-host` (HostConfig.ExtraHosts). */
export function extraHost(extraHosts: string[] | null | undefined, host: string): string | undefined {
  for (const e of extraHosts ?? []) {
    const i = e.search(/[:=]/)
    if (i > 0 && e.slice(0, i).toLowerCase() === host.toLowerCase()) return e.slice(i + 1).replace(/^\[|\]$/g, '')
  }
  return undefined
}

/**
 * The DB URL is written as the container sees it. Its host name is resolved in the container's
 * order: its /etc/hosts entries from `--add-host` (`host-gateway` is the default bridge's gateway,
 * the daemon's default host-gateway address), then Docker's DNS on its user networks (a compose
 * service, a container name or alias), then this host's resolver.
 */
async function resolveDbHost(docker: DockerApi, url: string, node: ContainerInfo): Promise<ResolvedUrl> {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return { url }
  }
  const host = u.hostname
  if (!host || isIP(host.replace(/^\[|\]$/g, '')) || host === 'localhost') return { url }
  const use = (ip: string, how: string, hostKey?: string) => {
    u.hostname = isIP(ip) === 6 ? `[${ip}]` : ip
    return { url: u.toString(), how: `'${host}' is ${ip} in the container (${how})`, hostKey }
  }
  const mapped = extraHost(node.HostConfig?.ExtraHosts, host)
  if (mapped && mapped !== 'host-gateway' && isIP(mapped)) return use(mapped, '--add-host')
  if (mapped === 'host-gateway') {
    // Docker writes the address it chose into the container's /etc/hosts; else the default
    // bridge's gateway, which is the daemon's default host-gateway address.
    const hosts = (await docker.readFile(node.Id, '/etc/hosts'))?.toString('utf8')
    const fromHosts = hosts && hostsEntry(hosts, host)
    if (fromHosts) return use(fromHosts, '--add-host ...:host-gateway, from its /etc/hosts')
    const gw = await bridgeGateway(docker)
    if (gw) return use(gw, '--add-host ...:host-gateway, the default bridge gateway')
  }
  for (const netName of Object.keys(node.NetworkSettings?.Networks ?? {})) {
    // the default bridge has no DNS for container names
    if (['bridge', 'host', 'none'].includes(netName)) continue
    const net = await docker.inspectNetwork(netName)
    for (const id of Object.keys(net?.Containers ?? {})) {
      const other = await docker.inspect(id)
      const onNet = other?.NetworkSettings?.Networks?.[netName]
      if (!other || !onNet?.IPAddress) continue
      if (
        containerName(other) === host ||
        (onNet.Aliases ?? []).includes(host) ||
        ((onNet as { DNSNames?: string[] }).DNSNames ?? []).includes(host)
      )
        return use(onNet.IPAddress, `a container on network ${netName}`, `container ${other.Id}`)
    }
  }
  return { url }
}

/** The address /etc/hosts text gives a name (first match). */
export function hostsEntry(hosts: string, name: string): string | undefined {
  for (const line of hosts.split('\n')) {
    const [ip, ...names] = line.replace(/#.*/, '').trim().split(/\s+/)
    if (ip && isIP(ip) && names.some((n) => n.toLowerCase() === name.toLowerCase())) return ip
  }
  return undefined
}

/** The default bridge's gateway: as configured, else the first address of its subnet (Docker's choice). */
async function bridgeGateway(docker: DockerApi): Promise<string | undefined> {
  const bridge = await docker.inspectNetwork('bridge')
  const cfg = ((bridge?.IPAM?.Config ?? []) as { Gateway?: string; Subnet?: string }[]).find(
    (c) => isIP(c.Gateway ?? '') === 4 || isIP((c.Subnet ?? '').split('/')[0]) === 4
  )
  if (cfg?.Gateway) return cfg.Gateway
  const base = cfg?.Subnet?.split('/')[0].split('.').map(Number)
  return base ? [base[0], base[1], base[2], base[3] + 1].join('.') : undefined
}
