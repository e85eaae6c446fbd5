// A container as the session matching (src/node/sessions.ts) sees it, and how far the DB's clock runs
// ahead of this host's, measured when the node's DB is connected (src/node/connect.ts): the matching
// compares a session's start with a container's by the same clock.
import type { DbApi } from '../postgres/database.js'
import { containerIps, containerName, type ContainerInfo } from '../docker/client.js'
import type { App, SessionContainer } from './sessions.js'

const clockAhead = new WeakMap<DbApi, number>()

/** How far the DB's clock runs ahead of this host's, as measured at connect; undefined when not measured. */
export function dbClockAheadMs(db: DbApi): number | undefined {
  return clockAhead.get(db)
}

/** Records the offset measured at connect. */
export function noteDbClockAhead(db: DbApi, ms: number): void {
  clockAhead.set(db, ms)
}

/** A container as the session matching sees it. */
export function sessionContainerOf(info: ContainerInfo): SessionContainer {
  const started = Date.parse(info.State.StartedAt)
  return {
    id: info.Id,
    name: containerName(info),
    running: info.State.Running,
    ips: containerIps(info),
    startedAt: Number.isFinite(started) ? started : 0
  }
}

/**
 * A container of the node as the leftover matching sees it, running or not. `pastIps`: addresses
 * it had while it ran (a stopped container's inspect has none), as the run recorded them.
 */
export function nodeContainerOf(info: ContainerInfo, pastIps: string[] = []): NodeContainer {
  const c = sessionContainerOf(info)
  const finished = Date.parse(info.State.FinishedAt ?? '')
  return {
    ...c,
    ips: [...new Set([...c.ips, ...pastIps])],
    finishedAt: !info.State.Running && Number.isFinite(finished) && finished > 0 ? finished : 0
  }
}

/** A container of the node as the leftover matching sees it, running or not. */
export interface NodeContainer extends SessionContainer {
  /** State.FinishedAt in ms once it has exited (0: never, or unknown) */
  finishedAt: number
}

/** An app whose process is proven gone, and the sessions the server still keeps for it. */
export interface DeadApp {
  appId: string
  version: string
  /** the node's container it ran in */
  container: string
  pids: number[]
  addrs: string[]
  /** the evidence, for the log */
  why: string
}

/** How far a process's first session may seem to precede its container's start (clock error). */
const TOLERANCE_MS = 1000

const at = (ms: number) => new Date(ms).toISOString()

/**
 * Pure: the apps on the DB whose process is proven gone. Each ran in a container of the node
 * (`node`), by one of two pieces of evidence: that container's log names the app id (the node
 * logs it at boot), or every session comes from an address the container had while it ran, that
 * no running container has now (`runningIps`), and began while it ran. And that container has
 * exited since (a stopped container's processes are all gone), or, by its log, was started again
 * after the app connected (an earlier start's process). A network cut as the process died leaves
 * such sessions on the server until TCP keepalive ends them (docs/reliability.md, seed 2026 run
 * 5). Anything else may be alive and is not here: a running container's current process, an app no
 * container of the node is proven to have run (another host, another container), a session whose
 * address the DB role cannot read.
 */
export function deadApps(
  apps: App[],
  node: NodeContainer[],
  runningIps: ReadonlySet<string>,
  logNames: (containerId: string, appId: string) => boolean = () => false,
  toleranceMs = TOLERANCE_MS
): DeadApp[] {
  const out: DeadApp[] = []
  for (const a of apps) {
    const base = {
      appId: a.appId,
      version: a.version,
      pids: a.sessions.map((s) => s.pid),
      addrs: a.addrs
    }
    const byLog = node.filter((c) => logNames(c.id, a.appId))
    if (byLog.length) {
      // every container whose log names it is stopped, or restarted after it connected
      const gone = byLog.every((c) => !c.running || a.firstSeen < c.startedAt - toleranceMs)
      if (!gone) continue
      const c = byLog[0]
      out.push({
        ...base,
        container: c.name,
        why: c.running
          ? `its app id is in the log of '${c.name}', whose process it was until the container started again at ${at(c.startedAt)}`
          : `its app id is in the log of '${c.name}', which has exited${c.finishedAt ? ` (at ${at(c.finishedAt)})` : ''}`
      })
      continue
    }
    const addrs = a.sessions.map((s) => s.clientAddr)
    if (!addrs.length || addrs.some((x) => x === null || runningIps.has(x))) continue
    const ran = node.filter(
      (c) =>
        !c.running &&
        addrs.every((x) => c.ips.includes(x!)) &&
        a.firstSeen >= c.startedAt - toleranceMs &&
        (!c.finishedAt || a.firstSeen <= c.finishedAt + toleranceMs)
    )
    // two exited containers that had the address: either way the process is gone
    if (!ran.length) continue
    out.push({
      ...base,
      container: ran[0].name,
      why: `its sessions come from ${a.addrs.join(', ')}, the address of '${ran[0].name}' while it ran (connected after its start${ran[0].finishedAt ? `, before its exit at ${at(ran[0].finishedAt)}` : ''}), which has exited; no running container has that address now`
    })
  }
  return out
}
