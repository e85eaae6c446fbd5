// What every operation is handed: validated inputs, the Docker client, a logger and the report.
// Operations never call @actions/core; action.ts maps their results to outputs and exit codes.
import type { Outputs } from './constants.js'
import type { DockerClient } from './docker.js'
import type { Inputs } from './inputs.js'
import type { Report } from './report.js'
import { AbortedError } from './errors.js'

export interface Log {
  info(message: string): void
  warning(message: string): void
  debug(message: string): void
  /** registers a secret with the runner so it is masked in everything printed after */
  mask(secret: string): void
}

export interface Context {
  inputs: Inputs
  docker: DockerClient
  log: Log
  report: Report
  /** aborted on SIGINT/SIGTERM (job cancellation): in-flight waits end quickly */
  signal: AbortSignal
  /** told the id of the journal this run opens, so its post step repairs only its own run */
  onJournal?: (runId: string) => void
}

type ResultName = 'upgraded' | 'unchanged' | 'rolled-back' | 'failed' | 'planned' | 'ok' | 'deferred'

export interface OperationResult {
  result: ResultName
  /** false whenever the node did not end where it was asked to be: the job fails */
  ok: boolean
  message?: string
  /** every output of action.yml but `result`, which is the field above */
  outputs: Partial<Record<Exclude<Outputs, Outputs.Result>, string>>
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError())
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(t)
      reject(new AbortedError())
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
