// The webhook: one JSON document per run, POSTed to input `webhook-url` at its end. It carries
// what the job summary shows (result, outputs, facts, handoffs, gates, timeline) and the image
// digests, never a container's log lines; the caller redacts every known secret from the text
// before it is sent. A webhook that fails is the operator's to hear about, never the run's.
import type { OperationResult } from '../context.js'
import type { Report } from '../report.js'

/** Long enough for a chat service, short enough not to hold the job. */
const WEBHOOK_TIMEOUT_MS = 5000

const digestOf = (ref: string | undefined) => /@(sha256:[0-9a-f]{64})$/.exec(ref ?? '')?.[1]

/** Pure: the document for one run. */
export function webhookDocument(o: {
  node: string
  operation: string
  /** which step sent it: the action's main or post step, or the command line */
  step: 'main' | 'post' | 'cli'
  result: OperationResult
  report: Report
  quarantined: string[]
  endedAt: number
}): Record<string, unknown> {
  const { result: r, report } = o
  return {
    schema: 1,
    source: 'chainlink-rollout',
    node: o.node,
    operation: o.operation,
    step: o.step,
    result: r.result,
    ok: r.ok,
    message: r.message,
    outputs: r.outputs,
    digests: {
      image: digestOf(r.outputs.image),
      previous: digestOf(r.outputs['previous-image']),
      quarantined: o.quarantined
    },
    startedAt: new Date(report.started).toISOString(),
    endedAt: new Date(o.endedAt).toISOString(),
    facts: Object.fromEntries(report.facts),
    handoffs: report.handoffs,
    gates: report.gates,
    timeline: report.timeline.map((e) => ({ at: new Date(e.at).toISOString(), step: e.step, detail: e.detail })),
    notes: report.notes,
    ci: process.env.GITHUB_RUN_ID
      ? {
          repository: process.env.GITHUB_REPOSITORY,
          runId: process.env.GITHUB_RUN_ID,
          workflow: process.env.GITHUB_WORKFLOW
        }
      : undefined
  }
}

/** POSTs the body; returns why it was not delivered, or undefined. Never throws. */
export async function postWebhook(
  url: string,
  body: string,
  timeoutMs = WEBHOOK_TIMEOUT_MS
): Promise<string | undefined> {
  try {
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'chainlink-rollout' },
      body,
      // a redirect would send the run's document somewhere the operator did not name
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs)
    })
    await r.body?.cancel()
    return r.ok ? undefined : `the endpoint answered HTTP ${r.status}`
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } }
    if (err.name === 'TimeoutError') return `no answer within ${timeoutMs / 1000} s`
    return err.cause?.code ?? err.cause?.message ?? err.message
  }
}
