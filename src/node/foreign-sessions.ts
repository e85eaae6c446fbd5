// Node sessions on the node's database that belong to no container on this Docker host: a
// standby (or a leader) on another host. Such a node can win a handoff's release, or take the
// lease while the DB is rewritten, so restores refuse and upgrades warn; nothing rewrites the DB
// (a restore, `db rollback`) until no node session is left on it.
import type { Context } from '../context.js'
import type { DbApi, NodeSession } from '../postgres/database.js'
import { formatMs } from '../duration.js'
import { OperationError } from '../errors.js'
import { sleep } from '../sleep.js'
import { containerIps, type ContainerInfo } from '../docker/client.js'
import { sameApp } from './lock.js'
import type { NodeView } from './view.js'
import type { App, SessionContainer, Tie } from './sessions.js'
import { dbClockAheadMs, deadApps, nodeContainerOf, sessionContainerOf, type DeadApp } from './session-container.js'
import { appsOf, tieApps } from './sessions.js'

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

function describeSessions(sessions: NodeSession[]): string {
  return sessions.map((s) => `app ${s.appId} from ${s.clientAddr ?? 'a local socket'}`).join(', ')
}

/**
 * Waits until no node session of any container remains on the DB and no lease is live: the
 * only state in which the DB may be rewritten (restore, `db rollback`). A node this run does
 * not know (a standby on another host) keeps its session: refused, naming it.
 */
export async function requireQuietDb(
  db: DbApi,
  timeoutMs: number,
  what: string,
  signal?: AbortSignal,
  endDead?: () => Promise<unknown>
): Promise<void> {
  const end = Date.now() + timeoutMs
  let seen = ''
  for (;;) {
    let sessions = await db.nodeSessions()
    // sessions the server keeps for a process of the node that is gone: ended, once per new set
    const key = sessions.map((s) => s.pid).join(',')
    if (endDead && sessions.length && key !== seen) {
      seen = key
      await endDead()
      sessions = await db.nodeSessions()
    }
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

/** A node process on the node's DB that none of the run's containers runs (docs/algorithm.md §1). */
export interface ForeignNode {
  appId: string
  /** the version in its application_name */
  version: string
  /** its sessions' client addresses ('null': a local socket, or a role that cannot read them) */
  addrs: string[]
  /** the container on this host proven to run it, when one is */
  container?: string
  /** how that container was proven */
  why?: string
}

/** How far a process's first session may seem to precede its container's start (clock error). */
const START_TOLERANCE_MS = 1000

/**
 * Pure: the apps on the DB that are not `ours` (app ids, compared as the node truncates them),
 * each tied to a container of this host only where the evidence names exactly one: its log
 * names the app id, or its sessions come from exactly one running container's address and began
 * after that container started. Anything else stays unnamed (another host, a process on this
 * host, or a container behind NAT): described by address, app id and version.
 */
export function foreignNodes(
  apps: App[],
  ours: string[],
  local: SessionContainer[],
  logNames: (containerId: string, appId: string) => boolean = () => false
): ForeignNode[] {
  const running = local.filter((c) => c.running)
  return apps
    .filter((a) => !ours.some((o) => sameApp(o, a.appId)))
    .map((a) => {
      const out: ForeignNode = { appId: a.appId, version: a.version, addrs: a.addrs }
      const byLog = running.filter((c) => logNames(c.id, a.appId))
      if (byLog.length === 1) return { ...out, container: byLog[0].name, why: 'its log names the app id' }
      const byAddr = running.filter(
        (c) =>
          a.sessions.some((s) => s.clientAddr !== null && c.ips.includes(s.clientAddr)) &&
          a.firstSeen >= c.startedAt - START_TOLERANCE_MS
      )
      if (byAddr.length === 1)
        return { ...out, container: byAddr[0].name, why: "its sessions come from the container's address" }
      return out
    })
}

/** One foreign node for a message: the container when local, else address, app id and version. */
export function describeForeign(f: ForeignNode): string {
  const what = `app ${f.appId}, Chainlink ${f.version || '?'}`
  if (f.container) return `container '${f.container}' on this host (${what})`
  const addrs = f.addrs.map((a) => (a === 'null' ? 'a local socket (or an address this DB role cannot read)' : a))
  return `a node no container on this host is proven to run (${what}, connected from ${addrs.join(', ')})`
}

/**
 * Pure: the refusal of a rollout (upgrade, handoff, restart) while another node uses the DB, or
 * undefined when none does. Such a node takes the lease the moment the leader releases it (a
 * swap's stop, a handoff) and leads on its own image; it is never handed the lock. A container
 * of this host is to be named as the pair's `standby`; anything else is stopped first.
 */
export function foreignRefusal(foreign: ForeignNode[], named: string[], standbyGiven: boolean): string | undefined {
  if (!foreign.length) return undefined
  const local = foreign.filter((f) => f.container)
  const remote = foreign.filter((f) => !f.container)
  const todo: string[] = []
  if (local.length)
    todo.push(
      standbyGiven || local.length > 1
        ? `stop ${local.map((f) => `'${f.container}'`).join(', ')} (a pair has one standby)`
        : `name '${local[0].container}' as input 'standby' (the failover pair is then upgraded together), or stop it`
    )
  if (remote.length)
    todo.push(
      `stop ${remote.length > 1 ? 'those nodes' : 'that node'} (it runs where this action cannot see or stop it)`
    )
  return `Another node runs on this database besides ${named.map((n) => `'${n}'`).join(' and ')}: ${foreign.map(describeForeign).join('; ')}. It would take the lock as soon as the leader releases it, on its own image, so nothing was changed. ${todo.join('; ').replace(/^./, (c) => c.toUpperCase())}, then run again`
}

/**
 * The node processes on the DB that none of `ourContainers` runs, with the containers of this
 * host as evidence of where each runs. `ourApps`: app ids already proven to be the run's.
 */
export async function findForeignNodes(
  ctx: Context,
  db: DbApi,
  ourContainers: ContainerInfo[],
  ourApps: string[] = [],
  recorded: ContainerInfo[] = []
): Promise<ForeignNode[]> {
  const sessions = await db.nodeSessions()
  if (!sessions.length) return []
  const apps = appsOf(sessions, dbClockAheadMs(db) ?? 0)
  const logOf = async (id: string) => ctx.docker.logs(id, 2000).catch(() => '')
  // the run's containers first, as preflight ties them (src/node/inspect.ts)
  const logs = new Map<string, string>()
  for (const i of ourContainers) logs.set(i.Id, await logOf(i.Id))
  const logNames = (id: string, appId: string) => !!logs.get(id)?.includes(appId)
  const ties = tieApps(ourContainers.map(sessionContainerOf), apps, { logNames })
  const ourIds = new Set(ourContainers.map((c) => c.Id))
  // an earlier process of one of them is gone with its start: not another node
  const oursNow = (t: Tie) => [t.container, t.earlierOf].some((c) => c && ourIds.has(c))
  // nor is a process of one that has exited since, whose sessions the server still keeps
  const dead = deadApps(
    apps,
    ourContainers.map((i) => nodeContainerOf(i, pastIps(recorded, i.Id))),
    await runningIps(ctx),
    logNames
  )
  const ours = [...ourApps, ...ties.filter(oursNow).map((t) => t.appId), ...dead.map((d) => d.appId)]
  if (apps.every((a) => ours.some((o) => sameApp(o, a.appId)))) return []
  const local: ContainerInfo[] = []
  for (const c of await ctx.docker.listRunning()) {
    if (ourIds.has(c.Id)) continue
    const info = await ctx.docker.inspect(c.Id)
    if (info?.State.Running) local.push(info)
  }
  for (const i of local) logs.set(i.Id, await logOf(i.Id))
  return foreignNodes(apps, ours, local.map(sessionContainerOf), (id, appId) => !!logs.get(id)?.includes(appId))
}

/** The addresses a container had as `recorded` (by the run, while it ran): a stopped one's inspect has none. */
function pastIps(recorded: ContainerInfo[], id: string): string[] {
  return recorded.flatMap((i) => (i.Id === id ? containerIps(i) : []))
}

/** Every address of a running container on this host. */
async function runningIps(ctx: Context): Promise<Set<string>> {
  const ips = new Set<string>()
  for (const c of await ctx.docker.listRunning()) {
    const info = await ctx.docker.inspect(c.Id)
    if (info?.State.Running) for (const ip of containerIps(info)) ips.add(ip)
  }
  return ips
}

/**
 * Ends the sessions the server keeps for node processes proven gone (deadApps: a process of one of
 * `node`'s containers, as the run recorded them, that has exited or restarted since), each named in the log with its
 * evidence. A network cut as the process died leaves them until TCP keepalive ends them, hours
 * later; until then nothing may rewrite the DB (requireQuietDb). pg_terminate_backend is allowed
 * to the node's own role for its own role's sessions; one it may not end stays, and the caller's
 * refusal names it. Sessions of a running container's current process, or of any app not proven
 * to be such a process (another host), are never ended. Returns what was ended.
 */
export async function endDeadSessions(ctx: Context, db: DbApi, node: ContainerInfo[]): Promise<DeadApp[]> {
  const sessions = await db.nodeSessions()
  if (!sessions.length) return []
  const infos: ContainerInfo[] = []
  for (const c of node) {
    const now = await ctx.docker.inspect(c.Id)
    if (now) infos.push(now)
  }
  const logs = new Map<string, string>()
  for (const i of infos) logs.set(i.Id, await ctx.docker.logs(i.Id, 2000).catch(() => ''))
  const dead = deadApps(
    appsOf(sessions, dbClockAheadMs(db) ?? 0),
    infos.map((i) => nodeContainerOf(i, pastIps(node, i.Id))),
    await runningIps(ctx),
    (id, appId) => !!logs.get(id)?.includes(appId)
  )
  const ended: DeadApp[] = []
  for (const d of dead) {
    const done: number[] = []
    for (const pid of d.pids) {
      const r = await db
        .query<{ ok: boolean }>(`SELECT pg_terminate_backend($1) AS ok`, [pid])
        .catch((e: Error) => [{ ok: false, error: e.message }])
      if (r[0]?.ok) done.push(pid)
    }
    const where = `app ${d.appId} (Chainlink ${d.version || '?'}) from ${d.addrs.join(', ')}`
    if (done.length) {
      ended.push({ ...d, pids: done })
      ctx.report.step(
        'dead session ended',
        `ended ${done.length} DB session(s) (pid ${done.join(', ')}) of ${where}: its process is gone (${d.why}); the server kept them behind a network cut`
      )
    }
    if (done.length < d.pids.length)
      ctx.report.step(
        'dead session left',
        `could not end pid ${d.pids.filter((p) => !done.includes(p)).join(', ')} of ${where} (its process is gone: ${d.why}); this DB role may not terminate it: a superuser can, with pg_terminate_backend`
      )
  }
  // a terminated backend leaves pg_stat_activity a moment later
  const pids = new Set(ended.flatMap((d) => d.pids))
  for (let i = 0; i < 20 && pids.size; i++) {
    if (!(await db.nodeSessions()).some((s) => pids.has(s.pid))) break
    await sleep(100)
  }
  return ended
}
