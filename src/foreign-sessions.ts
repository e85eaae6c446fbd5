// Node sessions on the node's database that belong to no container on this Docker host: a
// standby (or a leader) on another host. Such a node can win a handoff's release, or take the
// lease while the DB is rewritten, so restores refuse and upgrades warn.
import type { Context } from './context.js'
import type { NodeSession } from './database.js'
import { containerIps } from './docker.js'
import { sameApp } from './lock.js'
import type { NodeView } from './node.js'

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
