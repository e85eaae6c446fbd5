// What both entries put around an operation (the action's steps, src/edge/main.ts and post.ts,
// and the command line, src/cli.ts): the run's services. The operation gets the inputs beside
// them, not inside: below its preflight a function is handed the values it needs.
import type { Context } from '../context.js'
import { DockerClient } from '../docker/client.js'
import type { Log } from '../log.js'
import type { Report } from '../report.js'

/**
 * The run's services on `dockerHost` (input 'docker-host'). Without `signal` nothing cancels the
 * run: a repair after an interrupted one is not cancelled, and neither are its Docker client's waits.
 */
export function runContext(
  dockerHost: string | undefined,
  o: { log: Log; report: Report; signal?: AbortSignal; onJournal?: Context['onJournal'] }
): Context {
  return {
    // a Docker daemon restarting is waited for (bounded), and the wait ends with a cancellation
    docker: new DockerClient(dockerHost, { signal: o.signal, onWait: (m) => o.log.warning(m) }),
    log: o.log,
    report: o.report,
    signal: o.signal ?? new AbortController().signal,
    onJournal: o.onJournal
  }
}
