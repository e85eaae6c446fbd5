// What the handoff, its gates and the rollouts share: the node's link (its DB, config, lock
// mode and the run's own state), a member container, the timeouts and the gate error.
import { OperationError } from '../errors.js'
import type { DbApi } from '../postgres/database.js'
import type { ContainerInfo } from '../docker/client.js'
import { containerName } from '../docker/client.js'
import type { Check } from '../node/health.js'
import type { NodeConfig, LockMode } from '../node/config-types.js'
import { Observers } from '../node/observer.js'

/** State of one run (one operation): its HTTP observers and budget, the aim estimate, the health baseline. */
interface Run {
  observers: Observers
  /**
   * How long after SIGTERM the last leader released the lease, as measured: the estimate for
   * aiming the next stop (the first one assumes a prompt release).
   */
  aimDeltaMs: number
  /** checks failing on the leader before anything changed (undefined: not known) */
  failingBefore?: Check[]
}

/** What a handoff needs to know about the node and its database. */
export interface NodeLink {
  db: DbApi
  /** for a restore during rollback */
  databaseUrl?: string
  config: NodeConfig
  mode: LockMode
  /** input 'health-url': the base URL of the node's /health and /readyz (none: its container's address) */
  healthUrl: string | undefined
  run?: Run
}

export function newRun(failingBefore?: Check[]): Run {
  return { observers: new Observers(), aimDeltaMs: 100, failingBefore }
}

/**
 * The link to a node as a connection (inspectNode's view, or connectNode's) names it, with the
 * health URL the run was given and a new run unless one is passed.
 */
export function linkOf(
  node: { db: DbApi; config: NodeConfig; mode: LockMode; databaseUrl?: string },
  healthUrl: string | undefined,
  run: Run = newRun()
): NodeLink {
  return { db: node.db, config: node.config, mode: node.mode, databaseUrl: node.databaseUrl, healthUrl, run }
}

/** The run a link belongs to (one is made for a link built without it). */
export function runOf(link: NodeLink): Run {
  link.run ??= newRun()
  return link.run
}

export interface Member {
  id: string
  name: string
  info: ContainerInfo
  appId?: string
  /** node version from its DB session */
  version?: string
}

export function memberOf(info: ContainerInfo, appId?: string): Member {
  return { id: info.Id, name: containerName(info), info, appId }
}

/**
 * The lock a node of `version` takes: v2 knows only the lease (a v1 `dual` or `advisorylock`
 * setting maps to lease there), so a v1 -> v2 upgrade changes what the new leader holds.
 */
export function modeOf(link: NodeLink, m: { version?: string }): LockMode {
  const major = m.version ? parseInt(m.version, 10) : NaN
  if (major >= 2 && (link.mode === 'dual' || link.mode === 'advisorylock')) return 'lease'
  return link.mode
}

export class GateError extends OperationError {
  constructor(
    readonly gate: string,
    message: string,
    readonly containerId?: string,
    /** the app the gate saw holding the lock instead of the leader (standby-ready) */
    readonly lockMovedTo?: string,
    /** the failure is the host's (a daemon restart), not the image's: why (the quarantine reads it) */
    readonly hostFault?: string
  ) {
    super(message)
  }
}

export interface Timeouts {
  stopS: number
  standbyMs: number
  readyMs: number
  stableMs: number
  lockMs: number
}

/** The timeouts a run is given (inputs 'stop-timeout', 'standby-timeout', 'ready-timeout', 'stable-for'). */
export interface TimeoutSettings {
  /** undefined: derived from the container's own stop timeout and the node's grace period */
  stopTimeoutMs?: number
  /** undefined: derived from the lease settings */
  standbyTimeoutMs?: number
  readyTimeoutMs: number
  stableForMs: number
}

/** Timeouts from the inputs, else derived from the node's own lease and grace settings. */
export function timeouts(i: TimeoutSettings, cfg: NodeConfig, leader?: ContainerInfo): Timeouts {
  const containerStop = (leader?.Config as { StopTimeout?: number } | undefined)?.StopTimeout
  const stopMs = i.stopTimeoutMs ?? Math.max((containerStop ?? 10) * 1000, cfg.shutdownGraceMs + 5000)
  return {
    stopS: Math.ceil(stopMs / 1000),
    standbyMs: i.standbyTimeoutMs ?? 30_000 + 3 * cfg.leaseRefreshMs,
    readyMs: i.readyTimeoutMs,
    stableMs: i.stableForMs,
    // a killed leader's lease runs out one duration after its last refresh; the standby sees
    // it at its next poll (+10% jitter)
    lockMs: cfg.leaseDurationMs + 2 * Math.max(cfg.leaseRefreshMs, cfg.advisoryCheckMs) + 2000
  }
}
