// The main step: read inputs, run the operation (from the table index.ts hands it), hand its
// result to action.ts to publish.
import * as core from '@actions/core'
import { actionInputs, actionLog, actionReport, failure, inGroup, type Outcome } from './action.js'
import { State } from './constants.js'
import type { OperationResult, Operations } from '../context.js'
import { runContext } from './run.js'

export async function main(operations: Operations): Promise<Outcome> {
  const inputs = actionInputs()
  // Cancellation: the runner sends SIGINT, then SIGTERM 7.5 s later. Abort in-flight waits so
  // main ends quickly; the post step reads the journal and finishes or undoes the operation.
  const report = actionReport()
  const abort = new AbortController()
  const onSignal = (sig: string) => {
    core.warning(`${sig} received: aborting; the post step will bring the node to a consistent state`, {
      title: report.title
    })
    abort.abort()
  }
  process.once('SIGINT', () => onSignal('SIGINT'))
  process.once('SIGTERM', () => onSignal('SIGTERM'))

  const ctx = runContext(inputs.dockerHost, {
    log: actionLog(() => report.title),
    report,
    signal: abort.signal,
    onJournal: (id, path) => {
      core.saveState(State.RunId, id)
      core.saveState(State.Journal, path)
    }
  })
  let result: OperationResult
  try {
    // the run's steps in one group of the job log; the result and the summary after it stay open
    result = await inGroup(`chainlink-rollout ${inputs.operation} of ${inputs.container}`, () =>
      operations[inputs.operation](ctx, inputs)
    )
  } catch (e) {
    // The report is published after a failure too: its timeline says how far the run got.
    result = { result: 'failed', ok: false, message: failure(e), outputs: {} }
  }
  return { result, report, inputs }
}
