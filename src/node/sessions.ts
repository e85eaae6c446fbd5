// Which container a node's DB sessions belong to, without trusting client addresses. Where the
// DB is not on the Docker host (a DB server, a managed DB, a pooler) every container's sessions
// come from one address, or from the pooler's, or the address reads NULL for a role without
// pg_read_all_stats. What does tell them apart: each node process
// names every session `Chainlink <version> |App|<uuid>` with one fresh UUID, and a process can
// only have connected after its container started. Everything here is pure.
import type { NodeSession } from '../postgres/database.js'

/** A container that may run a node process. */
export interface SessionContainer {
  id: string
  name: string
  running: boolean
  /** addresses on its networks; empty with host networking */
  ips: string[]
  /** State.StartedAt in ms (the Docker host's clock) */
  startedAt: number
}

/** The sessions of one node process (one app UUID). */
export interface App {
  appId: string
  version: string
  sessions: NodeSession[]
  /** its oldest session's backend_start, on the Docker host's clock */
  firstSeen: number
  /** distinct client addresses ('null' when the role cannot read them) */
  addrs: string[]
}

/**
 * How far a process's first session may seem to precede its container's start: the DB's clock is
 * corrected by the measured offset, so this only covers the measurement's error.
 */
const START_TOLERANCE_MS = 1000

/**
 * Groups sessions by app UUID. `dbClockAheadMs`: how far the DB's clock runs ahead of this
 * host's (backend_start is the DB's time, State.StartedAt the Docker host's).
 */
export function appsOf(sessions: NodeSession[], dbClockAheadMs = 0): App[] {
  const byId = new Map<string, App>()
  for (const s of sessions) {
    // A role without pg_read_all_stats reads NULL for other roles' backend_start: the start is
    // unknown, so only `known` (the apps seen before a container started) tells it apart.
    const at = s.backendStart ? s.backendStart.getTime() - dbClockAheadMs : Number.POSITIVE_INFINITY
    const app = byId.get(s.appId)
    if (!app) {
      byId.set(s.appId, {
        appId: s.appId,
        version: s.version,
        sessions: [s],
        firstSeen: at,
        addrs: [String(s.clientAddr)]
      })
      continue
    }
    app.sessions.push(s)
    app.firstSeen = Math.min(app.firstSeen, at)
    if (!app.addrs.includes(String(s.clientAddr))) app.addrs.push(String(s.clientAddr))
  }
  return [...byId.values()]
}

export interface Tie {
  appId: string
  /** the container proven to run this app, when proven */
  container?: string
  /** the container an earlier start of which ran this app (its log names it, it connected
   *  before the container's last start): the process is gone, its sessions are left over */
  earlierOf?: string
  /** containers it could belong to by time (ids) */
  possible: string[]
  /** how it was proven, or why not */
  why: string
}

interface TieOptions {
  /** true when the container's own log names the app (the node logs its appID at boot) */
  logNames?: (containerId: string, appId: string) => boolean
  toleranceMs?: number
}

/**
 * Ties each app to the container that runs it, only where that is proven:
 * - by time: an app whose first session precedes a container's start is not that container's;
 * - by the container's log naming the app UUID;
 * - by client address, as a hint: a session from an address of exactly one container;
 * - by elimination: each running node container has exactly one node process, so a running
 *   container that only one app can belong to (the others tied elsewhere or too old) runs it.
 * Apps of no container (another node on the same DB) stay untied; so do apps that could be either
 * of two containers with nothing to tell them apart.
 */
export function tieApps(containers: SessionContainer[], apps: App[], opts: TieOptions = {}): Tie[] {
  const tol = opts.toleranceMs ?? START_TOLERANCE_MS
  const running = containers.filter((c) => c.running)
  const possible = new Map(
    apps.map((a) => [a.appId, running.filter((c) => a.firstSeen >= c.startedAt - tol).map((c) => c.id)])
  )
  const tied = new Map<string, { container: string; why: string }>()
  const earlier = new Map<string, SessionContainer>()
  const name = (id: string) => containers.find((c) => c.id === id)?.name ?? id
  const pin = (a: App, id: string, why: string) => {
    if ([...tied.values()].some((t) => t.container === id)) return false
    tied.set(a.appId, { container: id, why })
    return true
  }
  for (const a of apps) {
    const byLog = running.filter((c) => opts.logNames?.(c.id, a.appId))
    if (byLog.length === 1) {
      // a container's log spans its restarts (seed 2026, run 5 of the fault campaign): an app it
      // names that connected before its last start ran in an earlier start, and died with it
      if (possible.get(a.appId)!.includes(byLog[0].id))
        pin(a, byLog[0].id, `its app id is in the log of '${byLog[0].name}'`)
      else earlier.set(a.appId, byLog[0])
      continue
    }
    const byAddr = running.filter((c) => a.sessions.some((s) => s.clientAddr !== null && c.ips.includes(s.clientAddr)))
    if (byAddr.length === 1 && possible.get(a.appId)!.includes(byAddr[0].id))
      pin(a, byAddr[0].id, `its sessions come from ${byAddr[0].name}'s address`)
  }
  for (let changed = true; changed;) {
    changed = false
    for (const c of running) {
      if ([...tied.values()].some((t) => t.container === c.id)) continue
      const open = apps.filter((a) => !tied.has(a.appId) && possible.get(a.appId)!.includes(c.id))
      if (open.length === 1 && pin(open[0], c.id, `the only node process that connected after '${c.name}' started`))
        changed = true
    }
  }
  return apps.map((a) => {
    const t = tied.get(a.appId)
    const p = possible.get(a.appId)!
    if (t) return { appId: a.appId, container: t.container, possible: p, why: t.why }
    const e = earlier.get(a.appId)
    if (e)
      return {
        appId: a.appId,
        earlierOf: e.id,
        possible: p,
        why: `a process of an earlier start of '${e.name}' (its log names the app id; it connected before the container's last start): gone, its sessions left over`
      }
    const why = p.length
      ? `connected after ${p.map((id) => `'${name(id)}'`).join(' and ')} started, and nothing tells which (or whether) it runs it`
      : `connected before any of ${running.map((c) => `'${c.name}'`).join(', ') || 'the containers'} started: another node`
    return { appId: a.appId, possible: p, why }
  })
}

/** One line per app for an error message: what was seen, never a secret. */
export function describeApps(apps: App[], ties: Tie[], containers: SessionContainer[]): string {
  const starts = containers
    .filter((c) => c.running)
    .map((c) => `'${c.name}' started ${new Date(c.startedAt).toISOString()}`)
  const lines = apps.map((a) => {
    const t = ties.find((x) => x.appId === a.appId)
    return `app ${a.appId} (${a.version || '?'}, ${a.sessions.length} session(s) from ${a.addrs.join(', ')}, first at ${Number.isFinite(a.firstSeen) ? new Date(a.firstSeen).toISOString() : 'unknown (NULL backend_start)'}): ${t?.why ?? '?'}`
  })
  return [...starts, ...lines].join('; ')
}

/**
 * The sessions of a container just started: from apps that were not connected before it started
 * (`known`, read just before the start) and that connected after its start. Addresses are only a
 * hint that settles a tie between two new apps; two new apps with nothing to tell them apart give
 * none (the caller keeps waiting or reports it).
 */
export function newSessionsOf(
  container: SessionContainer,
  sessions: NodeSession[],
  known: Set<string>,
  dbClockAheadMs = 0,
  toleranceMs = START_TOLERANCE_MS
): NodeSession[] {
  const fresh = appsOf(
    sessions.filter((s) => !known.has(s.appId)),
    dbClockAheadMs
  ).filter((a) => a.firstSeen >= container.startedAt - toleranceMs)
  if (fresh.length <= 1) return fresh[0]?.sessions ?? []
  const byAddr = fresh.filter((a) =>
    a.sessions.some((s) => s.clientAddr !== null && container.ips.includes(s.clientAddr))
  )
  return byAddr.length === 1 ? byAddr[0].sessions : []
}
