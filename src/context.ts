// What every operation is handed: the run's services (the Docker client, a logger, the report,
// the cancellation, the DB factory, the journal hook), and beside them the validated inputs.
// Below the rollout's preflight no function reads the inputs: what it needs arrives as a typed
// parameter, so a signature says what a function depends on.
// Operations never call @actions/core; action.ts maps their results to outputs and exit codes.
import type { DbApi } from './postgres/database.js'
import type { DockerApi } from './docker/client.js'
import type { Inputs, Operation } from './inputs/types.js'
import type { Log } from './log.js'
import type { Report } from './report.js'

export interface Context {
  docker: DockerApi
  log: Log
  report: Report
  /** aborted on SIGINT/SIGTERM (job cancellation): in-flight waits end quickly */
  signal: AbortSignal
  /**
   * Opens the node's database (Database.connect when absent): the factory in front of Postgres,
   * as `docker` is the client in front of Docker; unit tests give a fake.
   */
  openDb?: (url: string, retryForMs: number) => Promise<DbApi>
  /** told the id and file of the journal this run opens, so its post step repairs only its own run */
  onJournal?: (runId: string, path: string) => void
}

type ResultName = 'upgraded' | 'unchanged' | 'rolled-back' | 'failed' | 'planned' | 'ok' | 'deferred'

export interface OperationResult {
  result: ResultName
  /** false whenever the node did not end where it was asked to be: the job fails */
  ok: boolean
  message?: string
  /** a repair that left the node as the interrupted run had it (undone before any handoff): the
   *  post step then leaves that run's published result as it is (it told the truth) */
  nodeAsFound?: boolean
  /** the failure's typed finding that the host failed, not the image (GateError.hostFault): the
   *  target is not quarantined for it (src/safeguards/quarantine.ts) */
  hostFault?: string
  /** every output of action.yml but `result`, which is the field above */
  outputs: Partial<Record<Exclude<Outputs, Outputs.Result>, string>>
}

/** An operation: the run's services and the inputs it was given. */
export type OperationFn = (ctx: Context, inputs: Inputs) => Promise<OperationResult>

/** Each operation of input `operation`, one module each (src/operations/): the entries' table. */
export type Operations = Record<Operation, OperationFn>

/** The outputs of action.yml. */
export enum Outputs {
  Result = 'result',
  PreviousImage = 'previous-image',
  Image = 'image',
  Leader = 'leader',
  LeaderGapMs = 'leader-gap-ms',
  BackupFile = 'backup-file',
  LeaderHost = 'leader-host',
  LeaderAppId = 'leader-app-id',
  Instances = 'instances',
  Layout = 'layout'
}
