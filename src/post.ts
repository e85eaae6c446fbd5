// The post step runs after main, also after a failure or a cancellation. When the journal says
// an operation is still in flight (main was cancelled or the runner died), it repairs: finish
// or undo, so the node ends in one consistent state.
import * as core from '@actions/core'
import { DockerClient } from './docker.js'
import { readInputs } from './inputs.js'
import { actionLog, fail, maskSecret, publish, redact } from './main.js'
import { repair } from './operations/repair.js'
import { Report } from './report.js'
import { StateKey, readJournal } from './state.js'

export async function run(): Promise<void> {
  const stateDir = core.getState(StateKey.StateDir)
  const container = core.getState(StateKey.Container)
  if (!stateDir || !container) return
  const j = readJournal(stateDir, container)
  if (!j || j.phase === 'done') return
  // Another job's operation in flight (this one waited for its host lock and gave up) is that
  // job's to finish; only the run this job opened is repaired here.
  if (core.getState(StateKey.RunId) !== j.runId) return
  core.warning(`The ${j.operation} of '${container}' (run ${j.runId}) did not finish; repairing`)
  try {
    const inputs = readInputs((n) => core.getInput(n), maskSecret)
    const report = new Report((line) => core.info(redact(line)))
    const result = await repair({
      inputs,
      docker: new DockerClient(inputs.dockerHost),
      log: actionLog(),
      report,
      signal: new AbortController().signal
    })
    publish(result, report)
    if (!result.ok) fail(result.message ?? `repair ended with ${result.result}`)
  } catch (e) {
    fail(`repair after an interrupted ${j.operation} failed: ${(e as Error).message}`)
  }
  setTimeout(() => process.exit(), 100).unref()
}
