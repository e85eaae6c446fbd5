// The DB's way back by the new binary: `node db rollback <goose version>` in a one-off container
// of the new image (docs/node-facts.md §10: only the new binary knows its Down steps).
import type { Context } from '../context.js'
import { OperationError } from '../errors.js'
import { cloneSpec } from '../handoff/container-spec.js'
import { LABEL_ROLE } from '../handoff/clone.js'
import type { NodeLink } from '../handoff/types.js'
import type { ContainerInfo } from '../docker/client.js'
import { dbInvocation } from '../node/db-command.js'
import type { RollbackPlan } from './plan.js'

/** one-off `node db rollback` containers are named `<node>-db-rollback-<id>` */
export const SUFFIX_DB_ROLLBACK = '-db-rollback-'

export async function migrateDown(ctx: Context, link: NodeLink, plan: RollbackPlan): Promise<void> {
  const prev = (await ctx.docker.inspect(plan.previous.id))!
  await migrateDownTo(ctx, link, {
    config: prev,
    name: plan.name,
    image: plan.newImage,
    goose: plan.dbBefore.goose!,
    nodeVersion: plan.dbBefore.nodeVersion,
    whose: 'the new image',
    readyTimeoutMs: plan.settings.readyTimeoutMs
  })
}

/**
 * `node db rollback <goose>` with `image` (the binary that knows the Down steps) in a one-off
 * container with the node's config (`config`: one of its containers), then node_versions set to
 * `nodeVersion` (rollback never touches it; none: the row is deleted, an empty table passes the
 * gate). Every node on the DB must be stopped first: the command takes no lock.
 */
export async function migrateDownTo(
  ctx: Context,
  link: NodeLink,
  o: {
    config: ContainerInfo
    name: string
    image: string
    goose: number
    nodeVersion?: string
    whose: string
    /** the image as the report names it (`image` may be an id) */
    display?: string
    /** input 'ready-timeout': a long down-migration gets at least that */
    readyTimeoutMs: number
  }
): Promise<void> {
  const { docker, report } = ctx
  const inv = dbInvocation(o.config.Config.Entrypoint, o.config.Config.Cmd, ['rollback', String(o.goose)])
  const cmd = inv.cmd
  const spec = cloneSpec(o.config, {
    name: `${o.name}${SUFFIX_DB_ROLLBACK}${Date.now().toString(36)}`,
    image: o.image,
    cmd,
    entrypoint: inv.entrypoint,
    portBindings: {},
    extraLabels: { [LABEL_ROLE]: 'db-rollback' },
    asService: false
  })
  spec.HostConfig = { ...spec.HostConfig, RestartPolicy: { Name: 'no' } }
  spec.Healthcheck = { Test: ['NONE'] }
  report.step('db rollback', `${o.display ?? o.image} ${cmd.join(' ')}`)
  // bounded (long down migrations get at least ready-timeout) and ended by a cancellation: each
  // goose migration is its own transaction, so a stopped run leaves the DB at a version boundary
  const r = await docker.runOnce(spec, Math.max(10 * 60_000, o.readyTimeoutMs), ctx.signal)
  if (r.exitCode !== 0)
    throw new OperationError(
      `'node db rollback ${o.goose}' with ${o.whose} failed (exit ${r.exitCode}): ${r.output.trim().split('\n').slice(-3).join(' | ')}`
    )
  await link.db.resetNodeVersion(o.nodeVersion)
  const after = await link.db.version()
  if (after.goose !== o.goose)
    throw new OperationError(`after 'db rollback' the database is at goose ${after.goose}, not ${o.goose}`)
  report.step(
    'database rolled back',
    `goose ${after.goose}, node_versions ${after.nodeVersion ?? '(empty)'}: no writes lost`
  )
}
