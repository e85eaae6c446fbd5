// The edge between the runner and the action, in the shape of docker/actions-toolkit's
// `run(main, post)`: one bundle serves both steps, told apart by the state main saves. This module
// owns that flag, the runner's log, publishing a result (outputs and job summary), turning a
// failure into the step's error, and the exit that keeps open sockets from holding the step.
import * as core from '@actions/core'
import { State } from './constants.js'
import { Outputs, type OperationResult } from '../context.js'
import type { Log } from '../log.js'
import { ActionError } from '../errors.js'
import { readInputs } from '../inputs/read.js'
import type { Inputs } from '../inputs/types.js'
import { Report } from '../report.js'
import { knownSecrets } from '../trust/secrets.js'
import { notifyRunEnd, runEndOf } from '../notify/run-end.js'

/** What a step ended with: the result to publish and the report it wrote; nothing when it had nothing to do. */
export interface Outcome {
  result: OperationResult
  report: Report
  /** the inputs the step ran with, when they were valid: the textfile and the webhook need them */
  inputs?: Inputs
}

type Step = () => Promise<Outcome | undefined>

export async function run(main: Step, post: Step): Promise<void> {
  const isPost = core.getState(State.IsPost) === 'true'
  if (!isPost) core.saveState(State.IsPost, 'true')
  try {
    const outcome = await (isPost ? post : main)()
    if (outcome) {
      // A post step that only tidied up after a failed main (the node as main left it) must not
      // turn main's `failed` into `ok`: the step still failed. A post step that moved the node
      // (finished or rolled back the operation) publishes where the node is now.
      publish(outcome.result, outcome.report, !(isPost && outcome.result.nodeAsFound))
      const { result, inputs } = outcome
      if (inputs)
        await notifyRunEnd(runEndOf(inputs, isPost ? 'post' : 'main', result, outcome.report), actionLog(), redact)
      if (!result.ok)
        fail(
          result.message ?? `the operation ended with result ${result.result}`,
          `${outcome.report.title}: ${result.result}`
        )
      else if (result.message) core.info(redact(result.message))
    }
  } catch (e) {
    const input = e instanceof ActionError ? e.input : undefined
    fail(failure(e), `chainlink-rollout${isPost ? ' post step' : ''}: ${input ? `input '${input}'` : 'failed'}`)
  }
  // Open sockets (pg, docker keep-alive) must not hold the step open.
  setTimeout(() => process.exit(), 100).unref()
}

/**
 * The step's error: an annotation whose title says which operation of which node ended how (the
 * run's page lists annotations by title), and exit code 1 (what core.setFailed does, which takes
 * no title).
 */
function fail(message: string, title: string): void {
  core.error(redact(message), { title: redact(title) })
  process.exitCode = 1
}

/**
 * Runs `fn` inside a collapsible group of the job log; the group ends on a throw too. Groups do
 * not nest: only the edge opens them.
 */
export async function inGroup<T>(name: string, fn: () => Promise<T>): Promise<T> {
  core.startGroup(redact(name))
  try {
    return await fn()
  } finally {
    core.endGroup()
  }
}

/** The operator's sentence for an error; the stack of anything unexpected goes to the debug log. */
export function failure(e: unknown): string {
  if (e instanceof ActionError) return e.message
  core.debug(redact((e as Error).stack ?? String(e)))
  return (e as Error).message ?? String(e)
}

/** Registers a secret: `::add-mask::` for each new form, and the redaction of what we write ourselves. */
function maskSecret(secret: string): void {
  for (const form of knownSecrets.add(secret)) core.setSecret(form)
}

/** Text we print or write (log lines, quoted container logs, outputs, the summary) without any known secret. */
const redact = (text: string): string => knownSecrets.redact(text)

/** The runner's log; warnings are annotations titled `title()` (the operation and node, once known). */
export function actionLog(title: () => string = () => 'chainlink-rollout'): Log {
  return {
    info: (m) => core.info(redact(m)),
    warning: (m) => core.warning(redact(m), { title: redact(title()) }),
    debug: (m) => core.debug(redact(m)),
    mask: maskSecret
  }
}

/** The inputs, validated and their secrets masked; shared by main and post. */
export function actionInputs(): Inputs {
  try {
    return readInputs((n) => core.getInput(n), maskSecret)
  } catch (e) {
    if (e instanceof ActionError) throw e
    throw new ActionError(`Invalid input: ${(e as Error).message}`)
  }
}

/** A report that prints each step to the runner's log as it happens. */
export function actionReport(): Report {
  return new Report((line) => core.info(redact(line)))
}

function publish(result: OperationResult, report: Report, outputs: boolean): void {
  if (outputs) {
    core.setOutput(Outputs.Result, result.result)
    for (const [k, v] of Object.entries(result.outputs)) if (v !== undefined) core.setOutput(k, redact(v))
  }
  if (result.message) report.fact('Result', `${result.result}: ${result.message}`)
  else report.fact('Result', result.result)
  // Container log lines quoted in the summary pass through the same redaction as the log.
  const md = redact(report.markdown(result.result))
  if (process.env.GITHUB_STEP_SUMMARY) {
    core.summary.addRaw(md, true)
    core.summary.write().catch((e: Error) => core.warning(redact(`could not write the job summary: ${e.message}`)))
  } else {
    core.startGroup('Summary')
    core.info(md)
    core.endGroup()
  }
}
