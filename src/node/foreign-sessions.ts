// Node sessions on the node's database that belong to no container on this Docker host: a
// standby (or a leader) on another host. Such a node can win a handoff's release, or take the
// lease while the DB is rewritten, so restores refuse and upgrades warn; nothing rewrites the DB
// (a restore, `db rollback`) until no node session is left on it.
import type { Context } from '../context.js'
import type { DbApi, NodeSession } from '../postgres/database.js'
import { formatMs } from '../duration.js'
import { OperationError } from '../errors.js'
import { sleep } from '../sleep.js'
import { containerIps } from '../docker/client.js'
import { sameApp } from './lock.js'
import type { NodeView } from './view.js'

export async function foreignSessions(ctx: Context, view: NodeView): Promise<NodeSession[]> {
  const known = view.containers.map((c) => c.session?.appId).filter((x): x is string => !!x)
  const left = view.lock.sessions.filter((s) => !known.some((k) => sameApp(k, s.appId)))
  if (!left.length) return []
  // any container of this host, by its addresses (a node the inputs do not name is still local)
  const local = new Set<string>()
  let hostNetwork = false
  for (const c of await ctx.docker.listRunning()) {
    const info = await ctx.docker.inspect(c.Id)
    if (!info) continue
    if (info.HostConfig.NetworkMode === 'host') hostNetwork = true
    for (const ip of containerIps(info)) local.add(ip)
  }
  return left.filter((s) => {
    if (s.clientAddr && local.has(s.clientAddr)) return false
    // a host-network container's sessions come from the host's own addresses
    if (hostNetwork && (s.clientAddr === null || /^(127\.|::1$)/.test(s.clientAddr))) return false
    return true
  })
}

export function describeSessions(sessions: NodeSession[]): string {
  return sessions.map((s) => `app ${s.appId} from ${s.clientAddr ?? 'a local socket'}`).join(', ')
}

/**
 * Waits until no node session of any container remains on the DB and no lease is live: the
 * only state in which the DB may be rewritten (restore, `db rollback`). A node this run does
 * not know (a standby on another host) keeps its session: refused, naming it.
 */
export async function requireQuietDb(db: DbApi, timeoutMs: number, what: string, signal?: AbortSignal): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const sessions = await db.nodeSessions()
    const lease = (await db.tableExists('lease_lock')) ? await db.lease() : undefined
    const live = lease && !lease.expired
    if (!sessions.length && !live) return
    if (Date.now() >= end)
      throw new OperationError(
        `refusing to ${what}: ${sessions.length ? `node sessions remain on the database (${describeSessions(sessions)})` : ''}${sessions.length && live ? '; ' : ''}${live ? `the lease of app ${lease!.clientId} runs until ${lease!.expiresAt.toISOString()}` : ''} after waiting ${formatMs(timeoutMs)}; a node this action does not manage (another host?) still uses the database: stop it first`
      )
    await sleep(250, signal)
  }
}
