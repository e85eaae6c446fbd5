// operation: handoff (leadership to the other container of a pair, or, for a single node, to a
// temporary standby on the same image) and operation: restart (a rolling restart on the same
// image through handoffs). Same lock check and health gate as an upgrade; no image changes.
import type { Context, OperationResult } from '../context.js'
import type { Inputs } from '../inputs/types.js'
import { planText, type Change, type RolloutDeps } from '../rollout/plan.js'
import { rollPair } from '../rollout/pair.js'
import { changeSettings, withNode } from '../rollout/prepare.js'
import { rollSingle } from '../rollout/single.js'
import { anyDigest } from '../docker/client.js'
import { memberOf } from '../handoff/types.js'
import { standbyReady } from '../handoff/gate-loops.js'
import { restoreForRollback } from '../rollout/backup-step.js'
import { rollback } from '../rollout/rollback.js'

/** No backup (the image does not change) and the rollback after a failure. */
function handoffDeps(inputs: Inputs): RolloutDeps {
  return {
    backup: async () => undefined,
    rollback: (ctx, link, plan, t, reason) =>
      rollback(ctx, link, plan, t, reason, (c, l, file) => restoreForRollback(c, l, file, inputs))
  }
}

export async function handoffOrRestart(ctx: Context, inputs: Inputs): Promise<OperationResult> {
  const { docker, report } = ctx
  const deps = handoffDeps(inputs)
  const operation = inputs.operation as 'handoff' | 'restart'
  report.title = `chainlink-rollout ${operation} of ${inputs.container}${inputs.standby ? ` / ${inputs.standby}` : ''}`
  return withNode(ctx, inputs, async (p) => {
    // The same image the leader runs, by id, so a moved tag cannot sneak in a new version.
    const img = await docker.imageInfo(p.leader.info.Image)
    const digest = img ? anyDigest(img) : undefined
    const display = `${p.leader.image.replace(/@sha256:[a-f0-9]{64}$/, '')}${digest ? `@${digest}` : ''}`
    const byName = await docker.imageInfo(p.leader.image)
    const ch: Change = {
      operation,
      createRef: byName && byName.id === img?.id ? p.leader.image : p.leader.info.Image,
      imageId: p.leader.info.Image,
      display,
      backup: false,
      ...changeSettings(inputs)
    }
    // A pair's restart recreates neither container: both get a fresh process through handoffs.
    const plan = planText(
      p,
      operation === 'restart' && p.other ? { ...ch, operation: 'handoff' } : ch,
      inputs.preferPrimary,
      inputs.finish
    )
    report.fact('Plan', plan)
    if (inputs.dryRun)
      return {
        result: 'planned',
        ok: true,
        message: `dry run: would ${plan}`,
        outputs: { leader: p.leader.name, image: display }
      }
    if (!p.other) return rollSingle(ctx, p, ch, deps)
    if (operation === 'restart') {
      // The waiting standby restarts first (it serves nothing), then leadership moves to it.
      const known = new Set(p.view.lock.sessions.map((s) => s.appId))
      report.step(`restart ${p.other.name}`, 'waiting standby')
      await docker.restart(p.other.info.Id, p.t.stopS)
      const m = memberOf(p.other.info)
      const proven = await standbyReady(ctx, p.link, m, p.view.lock.holder!, known, p.t.standbyMs)
      p.other.session = (await p.link.db.nodeSessions()).find((s) => s.appId === proven.appId)
    }
    return rollPair(ctx, p, { ...ch, operation: 'handoff' }, deps)
  })
}
