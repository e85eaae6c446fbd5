// The post step runs after main, also after a failure or a cancellation. When the journal says
// an operation is still in flight (main was cancelled or the runner died), it repairs: finish
// or undo, so the node ends in one consistent state.
import * as core from '@actions/core'
import { actionInputs, actionLog, actionReport, failure, inGroup, type Outcome } from './action.js'
import { State } from './constants.js'
import type { OperationFn } from '../context.js'
import { runContext } from './run.js'
import { ActionError } from '../errors.js'
import { readJournalAt } from '../journal/journal.js'

/** `repair` is the repair operation (src/operations/repair.ts), handed in by index.ts. */
export async function post(repair: OperationFn): Promise<Outcome | undefined> {
  const file = core.getState(State.Journal)
  if (!file) return undefined
  const j = readJournalAt(file)
  if (!j || j.phase === 'done') return undefined
  // Another job's operation in flight (this one waited for its host lock and gave up) is that
  // job's to finish; only the run this job opened is repaired here.
  if (core.getState(State.RunId) !== j.runId) return undefined
  core.warning(`The ${j.operation} of '${j.container}' (run ${j.runId}) did not finish; repairing`, {
    title: `chainlink-rollout repair of ${j.container}`
  })
  try {
    const inputs = actionInputs()
    const report = actionReport()
    const log = actionLog(() => report.title)
    // a daemon still restarting after the fault that ended main is waited for (bounded)
    const result = await inGroup(`chainlink-rollout repair of ${j.container}`, () =>
      repair(runContext(inputs.dockerHost, { log, report }), inputs)
    )
    return { result, report, inputs }
  } catch (e) {
    throw new ActionError(`repair after an interrupted ${j.operation} failed: ${failure(e)}`)
  }
}
