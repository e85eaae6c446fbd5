// What happens at the end of every run, in the action (main and post steps) and the command
// line alike: the node's textfile is rewritten and the webhook gets its document. Neither can
// fail the run: a problem is a warning. Settings arrive as plain values (the edges read inputs).
import type { OperationResult } from '../context.js'
import type { Log } from '../log.js'
import type { Report } from '../report.js'
import { active, readQuarantine } from '../safeguards/quarantine.js'
import { nodeKey } from '../journal/journal.js'
import { textfilePath, writeMetrics } from './metrics.js'
import { postWebhook, webhookDocument } from './webhook.js'

/** The run's end from what it was asked (its inputs) and how it ended, as notifyRunEnd takes it. */
export function runEndOf(
  asked: {
    stateDir: string
    backupDir: string
    container: string
    standby?: string
    operation: string
    dryRun: boolean
    webhookUrl?: string
  },
  step: RunEnd['step'],
  result: OperationResult,
  report: Report
): RunEnd {
  return {
    stateDir: asked.stateDir,
    backupDir: asked.backupDir,
    node: nodeKey(asked),
    operation: asked.operation,
    dryRun: asked.dryRun,
    webhookUrl: asked.webhookUrl,
    step,
    result,
    report
  }
}

interface RunEnd {
  stateDir: string
  backupDir: string
  /** the node's key (journal/journal.ts nodeKey): its files in state-dir are named by it */
  node: string
  operation: string
  /** a dry run changes nothing on the host: no textfile */
  dryRun: boolean
  webhookUrl?: string
  step: 'main' | 'post' | 'cli'
  result: OperationResult
  report: Report
}

/** `redact` removes every known secret from text that leaves the process. */
export async function notifyRunEnd(e: RunEnd, log: Log, redact: (text: string) => string): Promise<void> {
  const endedAt = Date.now()
  const gap = Number(e.result.outputs['leader-gap-ms'])
  if (!e.dryRun)
    try {
      await writeMetrics({
        stateDir: e.stateDir,
        backupDir: e.backupDir,
        node: e.node,
        run: {
          operation: e.operation,
          result: e.result.result,
          ok: e.result.ok,
          at: Math.round(endedAt / 1000),
          leaderGapMs: e.result.outputs['leader-gap-ms'] !== undefined && Number.isFinite(gap) ? gap : undefined
        }
      })
    } catch (err) {
      log.warning(`could not write the metrics textfile ${textfilePath(e.stateDir, e.node)}: ${(err as Error).message}`)
    }
  if (!e.webhookUrl) return
  const quarantined = active(readQuarantine(e.stateDir, e.node)).map((q) => q.digest)
  const body = redact(JSON.stringify(webhookDocument({ ...e, quarantined, endedAt })))
  const problem = await postWebhook(e.webhookUrl, body)
  // the URL itself is a secret: the warning never names it
  if (problem) log.warning(redact(`the webhook was not delivered (webhook-url): ${problem}`))
  else log.debug('webhook delivered')
}
