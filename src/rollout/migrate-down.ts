// The DB's way back by the new binary: `node db rollback <goose version>` in a one-off container
// of the new image (docs/node-facts.md §10: only the new binary knows its Down steps).
import type { Context } from '../context.js'
import { OperationError } from '../errors.js'
import { cloneSpec } from '../handoff/container-spec.js'
import { LABEL_ROLE } from '../handoff/clone.js'
import type { NodeLink } from '../handoff/types.js'
import { dbInvocation } from '../node/db-command.js'
import type { RollbackPlan } from './plan.js'

/** one-off `node db rollback` containers are named `<node>-db-rollback-<id>` */
export const SUFFIX_DB_ROLLBACK = '-db-rollback-'

export async function migrateDown(ctx: Context, link: NodeLink, plan: RollbackPlan): Promise<void> {
  const { docker, report } = ctx
  const prev = (await docker.inspect(plan.previous.id))!
  const inv = dbInvocation(prev.Config.Entrypoint, prev.Config.Cmd, ['rollback', String(plan.dbBefore.goose)])
  const cmd = inv.cmd
  const spec = cloneSpec(prev, {
    name: `${plan.name}${SUFFIX_DB_ROLLBACK}${Date.now().toString(36)}`,
    image: plan.newImage,
    cmd,
    entrypoint: inv.entrypoint,
    portBindings: {},
    extraLabels: { [LABEL_ROLE]: 'db-rollback' },
    asService: false
  })
  spec.HostConfig = { ...spec.HostConfig, RestartPolicy: { Name: 'no' } }
  spec.Healthcheck = { Test: ['NONE'] }
  report.step('db rollback', `${plan.newImage} ${cmd.join(' ')}`)
  // bounded (long down migrations get at least ready-timeout) and ended by a cancellation: each
  // goose migration is its own transaction, so a stopped run leaves the DB at a version boundary
  const r = await docker.runOnce(spec, Math.max(10 * 60_000, ctx.inputs.readyTimeoutMs), ctx.signal)
  if (r.exitCode !== 0)
    throw new OperationError(
      `'node db rollback ${plan.dbBefore.goose}' with the new image failed (exit ${r.exitCode}): ${r.output.trim().split('\n').slice(-3).join(' | ')}`
    )
  await link.db.resetNodeVersion(plan.dbBefore.nodeVersion)
  const after = await link.db.version()
  if (after.goose !== plan.dbBefore.goose)
    throw new OperationError(`after 'db rollback' the database is at goose ${after.goose}, not ${plan.dbBefore.goose}`)
  report.step(
    'database rolled back',
    `goose ${after.goose}, node_versions ${after.nodeVersion ?? '(empty)'}: no writes lost`
  )
}
