// The edge between the runner and the action, in the shape of docker/actions-toolkit's
// `run(main, post)`: one bundle serves both steps, told apart by the state main saves. This module
// owns that flag, the runner's log, publishing a result (outputs and job summary), turning a
// failure into the step's error, and the exit that keeps open sockets from holding the step.
import * as core from '@actions/core'
import { Outputs, State } from './constants.js'
import type { Log, OperationResult } from './context.js'
import { ActionError } from './errors.js'
import { readInputs, type Inputs } from './inputs.js'
import { Report } from './report.js'

/** What a step ended with: the result to publish and the report it wrote; nothing when it had nothing to do. */
export interface Outcome {
  result: OperationResult
  report: Report
}

type Step = () => Promise<Outcome | undefined>

export async function run(main: Step, post: Step): Promise<void> {
  const isPost = core.getState(State.IsPost) === 'true'
  if (!isPost) core.saveState(State.IsPost, 'true')
  try {
    const outcome = await (isPost ? post : main)()
    if (outcome) {
      publish(outcome.result, outcome.report)
      const { result } = outcome
      if (!result.ok) core.setFailed(result.message ?? `the operation ended with result ${result.result}`)
      else if (result.message) core.info(result.message)
    }
  } catch (e) {
    core.setFailed(failure(e))
  }
  // Open sockets (pg, docker keep-alive) must not hold the step open.
  setTimeout(() => process.exit(), 100).unref()
}

/** The operator's sentence for an error; the stack of anything unexpected goes to the debug log. */
export function failure(e: unknown): string {
  if (e instanceof ActionError) return e.message
  core.debug((e as Error).stack ?? String(e))
  return (e as Error).message ?? String(e)
}

export function actionLog(): Log {
  return {
    info: (m) => core.info(m),
    warning: (m) => core.warning(m),
    debug: (m) => core.debug(m),
    mask: (s) => core.setSecret(s)
  }
}

/** The inputs, validated and their secrets masked; shared by main and post. */
export function actionInputs(): Inputs {
  try {
    return readInputs(
      (n) => core.getInput(n),
      (s) => core.setSecret(s)
    )
  } catch (e) {
    if (e instanceof ActionError) throw e
    throw new ActionError(`Invalid input: ${(e as Error).message}`)
  }
}

/** A report that prints each step to the runner's log as it happens. */
export function actionReport(): Report {
  return new Report((line) => core.info(line))
}

function publish(result: OperationResult, report: Report): void {
  core.setOutput(Outputs.Result, result.result)
  for (const [k, v] of Object.entries(result.outputs)) if (v !== undefined) core.setOutput(k, v)
  if (result.message) report.fact('Result', `${result.result}: ${result.message}`)
  else report.fact('Result', result.result)
  const md = report.markdown(result.result)
  if (process.env.GITHUB_STEP_SUMMARY) {
    core.summary.addRaw(md, true)
    core.summary.write().catch((e: Error) => core.warning(`could not write the job summary: ${e.message}`))
  } else {
    core.info(md)
  }
}
