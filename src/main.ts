// The main step: read inputs, run the operation, publish outputs and the job summary.
// The only module besides post.ts that talks to @actions/core.
import * as core from '@actions/core'
import type { Context, Log, OperationResult } from './context.js'
import { AbortedError, OperationError } from './context.js'
import { DockerClient } from './docker.js'
import { InputError, readInputs, type Inputs } from './inputs.js'
import { Report } from './report.js'
import { runOperation } from './operations/index.js'
import { StateKey, nodeKey } from './state.js'

export function actionLog(): Log {
  return {
    info: (m) => core.info(m),
    warning: (m) => core.warning(m),
    debug: (m) => core.debug(m),
    mask: (s) => core.setSecret(s)
  }
}

export async function run(): Promise<void> {
  let inputs: Inputs
  try {
    inputs = readInputs(
      (n) => core.getInput(n),
      (s) => core.setSecret(s)
    )
  } catch (e) {
    core.setFailed(e instanceof InputError ? e.message : `Invalid input: ${(e as Error).message}`)
    return
  }
  // Cancellation: the runner sends SIGINT, then SIGTERM 7.5 s later. Abort in-flight waits so
  // main ends quickly; the post step reads the journal and finishes or undoes the operation.
  const abort = new AbortController()
  const onSignal = (sig: string) => {
    core.warning(`${sig} received: aborting; the post step will bring the node to a consistent state`)
    abort.abort()
  }
  process.once('SIGINT', () => onSignal('SIGINT'))
  process.once('SIGTERM', () => onSignal('SIGTERM'))

  const report = new Report((line) => core.info(line))
  const ctx: Context = {
    inputs,
    docker: new DockerClient(inputs.dockerHost),
    log: actionLog(),
    report,
    signal: abort.signal,
    onJournal: (id) => core.saveState(StateKey.RunId, id)
  }
  core.saveState(StateKey.StateDir, inputs.stateDir)
  // the node's key: its journal and host lock are named by it
  core.saveState(StateKey.Container, nodeKey(inputs))
  let result: OperationResult
  try {
    result = await runOperation(ctx)
  } catch (e) {
    const msg =
      e instanceof AbortedError
        ? 'cancelled'
        : e instanceof OperationError || e instanceof InputError
          ? e.message
          : `${(e as Error).message}`
    if (!(e instanceof OperationError) && !(e instanceof InputError) && !(e instanceof AbortedError))
      core.debug((e as Error).stack ?? String(e))
    result = { result: 'failed', ok: false, message: msg, outputs: {} }
  }
  publish(result, report)
  if (!result.ok) core.setFailed(result.message ?? `the operation ended with result ${result.result}`)
  else if (result.message) core.info(result.message)
  // Open sockets (pg, docker keep-alive) must not hold the step open.
  setTimeout(() => process.exit(), 100).unref()
}

export function publish(result: OperationResult, report: Report): void {
  core.setOutput('result', result.result)
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
