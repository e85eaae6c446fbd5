// A container as the session matching (src/node/sessions.ts) sees it, and how far the DB's clock runs
// ahead of this host's, measured when the node's DB is connected (src/node/connect.ts): the matching
// compares a session's start with a container's by the same clock.
import type { DbApi } from '../postgres/database.js'
import { containerIps, containerName, type ContainerInfo } from '../docker/client.js'
import type { SessionContainer } from './sessions.js'

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
