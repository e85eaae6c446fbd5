// A deliberate downgrade (docs/node-facts.md §9, §10): an image older than the version the DB
// records would pass every step of an upgrade up to its start, then refuse the DB at the node's
// version gate and end in a rollback. So it is refused in preflight unless asked for
// (`allow-downgrade`); then the older image's own `node db status` names its newest migration,
// and at the swap, with every node stopped, the running (newer) image's `node db rollback` takes
// the DB there and node_versions is set to the older version, before the older image starts.
import type { Context } from '../context.js'
import { OperationError } from '../errors.js'
import type { ContainerInfo } from '../docker/client.js'
import { cloneSpec } from '../handoff/container-spec.js'
import { LABEL_ROLE } from '../handoff/clone.js'
import { dbInvocation } from '../node/db-command.js'
import { endDeadSessions, requireQuietDb } from '../node/foreign-sessions.js'
import { migrateDownTo } from './migrate-down.js'
import type { Downgrade, Prepared } from './plan.js'

/** What a target version is to the node's DB: the same line or newer, or older (a downgrade). */
export type Direction =
  | { kind: 'up' }
  | { kind: 'unknown'; why: string }
  | { kind: 'down'; from: string; to: string; source: 'node_versions' | 'running' }

interface Version {
  text: string
  nums: [number, number, number]
  pre: string[]
}

/** A semantic version as the node's gate reads it (Masterminds/semver: `v` allowed, build metadata ignored). */
function parseVersion(v: string | undefined): Version | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(v?.trim() ?? '')
  if (!m) return undefined
  return { text: v!.trim().replace(/^v/, ''), nums: [+m[1], +m[2], +m[3]], pre: m[4] ? m[4].split('.') : [] }
}

/** Pure: semver precedence (a pre-release is lower than its release: `2.30.1-cre` < `2.30.1`). */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a)
  const y = parseVersion(b)
  if (!x || !y) throw new Error(`not a semantic version: ${!x ? a : b}`)
  for (let i = 0; i < 3; i++) if (x.nums[i] !== y.nums[i]) return x.nums[i] < y.nums[i] ? -1 : 1
  if (!x.pre.length || !y.pre.length) return x.pre.length === y.pre.length ? 0 : x.pre.length ? -1 : 1
  for (let i = 0; i < Math.max(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i]
    const q = y.pre[i]
    if (p === undefined) return -1
    if (q === undefined) return 1
    if (p === q) continue
    const pn = /^\d+$/.test(p)
    const qn = /^\d+$/.test(q)
    if (pn && qn) return +p < +q ? -1 : 1
    if (pn !== qn) return pn ? -1 : 1
    return p < q ? -1 : 1
  }
  return 0
}

const clean = (v: string | undefined) => parseVersion(v)?.text
const lt = (a: string, b: string) => compareVersions(a, b) < 0

/**
 * Pure: is `target` older than the DB's node_versions (what the version gate compares,
 * semver, pre-releases lower: docs/node-facts.md §9) or, without a readable row, than the version
 * the leader runs? Equal or newer is an upgrade.
 */
export function directionOf(o: { target?: string; dbNodeVersion?: string; running?: string }): Direction {
  const to = clean(o.target)
  if (!to) return { kind: 'unknown', why: `the target's version is not known${o.target ? ` ('${o.target}')` : ''}` }
  const db = clean(o.dbNodeVersion)
  if (db) return lt(to, db) ? { kind: 'down', from: db, to, source: 'node_versions' } : { kind: 'up' }
  const run = clean(o.running)
  if (run && lt(to, run)) return { kind: 'down', from: run, to, source: 'running' }
  return { kind: 'up' }
}

/** The refusal without `allow-downgrade`: why, and what the operator can do. */
export function downgradeRefusal(target: string, d: Extract<Direction, { kind: 'down' }>): string {
  const why =
    d.source === 'node_versions'
      ? `Chainlink ${d.to} would refuse to start on this database ("Application version (${d.to}) is lower than database version (${d.from}). Only Chainlink ${d.from} or higher can be run on this database": the node's version gate), so the upgrade would end in a rollback`
      : `the database carries ${d.from}'s migrations, which ${d.to} does not know`
  return `${target} is Chainlink ${d.to}, older than ${d.from} (the database's ${d.source === 'node_versions' ? 'node_versions' : 'running version'}): ${why}. Nothing was changed. To go back deliberately set 'allow-downgrade: true': the running image's 'node db rollback' then brings the database to ${d.to}'s newest migration first (writes are kept; a table a newer migration added is dropped with its rows)`
}

/** Pure: the newest migration a binary ships, from its `node db status` lines (`version:N, path:...`). */
export function newestMigration(output: string): number | undefined {
  let max: number | undefined
  for (const m of output.matchAll(/\bversion:\s*(\d+),\s*path:/g)) max = Math.max(max ?? 0, Number(m[1]))
  return max
}

/** one-off `node db status` containers are named `<node>-db-status-<id>` */
const SUFFIX_DB_STATUS = '-db-status-'

/**
 * The older image's newest migration, from the image itself: its `node db status` in a one-off
 * container with the leader's config (it reads the DB and takes no lock; docs/node-facts.md §7).
 */
export async function migrationOfImage(
  ctx: Context,
  leader: ContainerInfo,
  name: string,
  image: string
): Promise<number> {
  const inv = dbInvocation(leader.Config.Entrypoint, leader.Config.Cmd, ['status'])
  const spec = cloneSpec(leader, {
    name: `${name}${SUFFIX_DB_STATUS}${Date.now().toString(36)}`,
    image,
    cmd: inv.cmd,
    entrypoint: inv.entrypoint,
    portBindings: {},
    extraLabels: { [LABEL_ROLE]: 'db-status' },
    asService: false
  })
  spec.HostConfig = { ...spec.HostConfig, RestartPolicy: { Name: 'no' } }
  spec.Healthcheck = { Test: ['NONE'] }
  ctx.report.step('db status', `${image} ${inv.cmd.join(' ')}`)
  const r = await ctx.docker.runOnce(spec, 120_000, ctx.signal)
  const n = r.exitCode === 0 ? newestMigration(r.output) : undefined
  if (n === undefined)
    throw new OperationError(
      `cannot tell the newest migration of ${image}: its 'node db status' ${r.exitCode !== 0 ? `failed (exit ${r.exitCode})` : 'listed none'}: ${r.output.trim().split('\n').slice(-2).join(' | ')}. Nothing was changed; going back to it needs a backup taken before the upgrade from it restored (operation restore)`
    )
  return n
}

/**
 * At the swap, the leader stopped and the older container not yet started: no node may use the
 * DB (`db rollback` takes no lock), then the running image's binary takes it down to the
 * target's newest migration and node_versions says the target's version (docs/node-facts.md §10).
 */
export async function takeDbDown(ctx: Context, p: Prepared, d: Downgrade): Promise<void> {
  const leader = p.leader.info
  const node = p.view.containers.map((c) => c.info)
  await requireQuietDb(p.link.db, p.t.lockMs, "run 'db rollback' for the downgrade", ctx.signal, () =>
    endDeadSessions(ctx, p.link.db, node)
  )
  await migrateDownTo(ctx, p.link, {
    config: leader,
    name: p.leader.name,
    image: leader.Image,
    goose: d.goose,
    nodeVersion: d.to,
    whose: `the running image ${d.newerImage}`,
    display: `${d.newerImage} (${leader.Image.slice(0, 19)})`,
    readyTimeoutMs: p.t.readyMs
  })
}
