// Every instance of the node, wherever it runs (issue 22, docs/hosts.md). A node spread over
// several hosts is several node processes on one database; the database alone names them all:
// each process's sessions carry `Chainlink <version> |App|<uuid>` (docs/node-facts.md §3), the
// lease row names the holder, and each session's client address says where it connects from.
// This host's containers say which of them run here; the rest run on other hosts.
import type { Context } from '../context.js'
import { containerIps } from '../docker/client.js'
import { findForeignNodes } from './foreign-sessions.js'
import { pollsLock, sameApp } from './lock.js'
import type { App } from './sessions.js'
import type { NodeView } from './view.js'

type InstanceRole = 'leader' | 'waiting' | 'other'

export interface Instance {
  appId: string
  version: string
  /** local: runs on this Docker host; remote: on another host (by its client address) */
  host: 'local' | 'remote'
  /** the container on this host proven to run it */
  container?: string
  /** its sessions' client addresses ('null' for a local socket or an address the role cannot read) */
  addrs: string[]
  role: InstanceRole
}

interface ClassifyInput {
  apps: App[]
  /** the lock holder's app id, when one holds it */
  holder?: string
  /** app id -> the container of this host proven to run it */
  localContainers: Map<string, string>
  /** every address of this host's running containers */
  localAddrs: Set<string>
  /** a running container of this host uses host networking (its sessions come from the host's own addresses) */
  hostNetwork: boolean
}

/**
 * Pure: each node process on the DB as an instance. Its host: local when a container of this host
 * is proven to run it, or when its sessions come from an address of this host's containers (or
 * from loopback while a host-network container runs here); remote otherwise. Its role: the lock
 * holder leads; another process with a session that polls the lock waits for it; anything else
 * (a `node db` command, a process still starting or failing) is other.
 */
export function classifyInstances(i: ClassifyInput): Instance[] {
  return i.apps.map((a) => {
    const container = [...i.localContainers].find(([id]) => sameApp(id, a.appId))?.[1]
    const byAddr = a.sessions.some(
      (s) =>
        (s.clientAddr !== null && i.localAddrs.has(s.clientAddr)) ||
        (i.hostNetwork && (s.clientAddr === null || /^(127\.|::1$)/.test(s.clientAddr)))
    )
    const role: InstanceRole = sameApp(a.appId, i.holder) ? 'leader' : a.sessions.some(pollsLock) ? 'waiting' : 'other'
    return {
      appId: a.appId,
      version: a.version,
      host: container || byAddr ? 'local' : 'remote',
      ...(container ? { container } : {}),
      addrs: a.addrs,
      role
    }
  })
}

/** One instance for a message or a table: role, version, where. */
export function describeInstance(x: Instance): string {
  const where =
    x.host === 'local'
      ? `on this host${x.container ? ` ('${x.container}')` : ''}`
      : `on another host (from ${x.addrs.map((a) => (a === 'null' ? 'a local socket' : a)).join(', ')})`
  const role = { leader: 'leader', waiting: 'waiting standby', other: 'not waiting for the lock' }[x.role]
  return `app ${x.appId} (Chainlink ${x.version || '?'}), ${role}, ${where}`
}

/**
 * The instances of the node as the view and this host's containers show them: the view's own
 * containers (tied in preflight), then every other process on the DB, local where a container of
 * this host runs it (by its log or its address), remote otherwise.
 */
export async function findInstances(ctx: Context, view: NodeView): Promise<Instance[]> {
  const localContainers = new Map<string, string>()
  for (const c of view.containers) if (c.session) localContainers.set(c.session.appId, c.name)
  const foreign = await findForeignNodes(
    ctx,
    view.db,
    view.containers.map((c) => c.info),
    [...localContainers.keys()]
  )
  for (const f of foreign) if (f.container) localContainers.set(f.appId, f.container)
  const localAddrs = new Set<string>()
  let hostNetwork = false
  for (const c of await ctx.docker.listRunning()) {
    const info = await ctx.docker.inspect(c.Id)
    if (!info) continue
    if (info.HostConfig.NetworkMode === 'host') hostNetwork = true
    for (const ip of containerIps(info)) localAddrs.add(ip)
  }
  return classifyInstances({ apps: view.apps, holder: view.lock.holder, localContainers, localAddrs, hostNetwork })
}

/** The instances as a report table and the `instances` output. */
export function reportInstances(ctx: Context, instances: Instance[], heading = 'Instances of the node'): string {
  ctx.report.tables.push({
    heading,
    header: ['instance'],
    rows: instances.map((x) => [describeInstance(x)])
  })
  return JSON.stringify(instances)
}
