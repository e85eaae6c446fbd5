// The node as preflight finds it (src/node/inspect.ts): its containers, its database and lock, and which
// container leads. A rollout is handed this view; nothing here acts.
import type { DbApi, DbVersion, NodeSession } from '../postgres/database.js'
import type { ContainerInfo } from '../docker/client.js'
import type { HealthProbe } from './health.js'
import type { LockState } from './lock.js'
import type { LockMode, NodeConfig } from './config-types.js'
import type { App, Tie } from './sessions.js'

export interface Candidate {
  name: string
  id: string
  running: boolean
  /** addresses on its networks; empty with host networking */
  ips: string[]
}

export interface NodeContainer {
  info: ContainerInfo
  name: string
  image: string
  digest?: string
  candidate: Candidate
  /** the DB session of this container's node process, when it has one */
  session?: NodeSession
  /** the base URL the gates use for it (input `health-url` filled in, or derived) */
  healthUrl?: string
  health?: HealthProbe
}

export interface NodeView {
  config: NodeConfig
  mode: LockMode
  databaseUrl: string
  db: DbApi
  lock: LockState
  dbVersion: DbVersion
  containers: NodeContainer[]
  leader?: NodeContainer
  /** app version from the leader's session */
  version?: string
  /** the node processes on the DB and which container each was proven to be */
  apps: App[]
  ties: Tie[]
}
