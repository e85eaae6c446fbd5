// The ways of the downtime bench: one row of a table each (title, layout, how the node before is
// started), plus one small function per way that does the upgrade and says when the new node
// served. runOnce in downtime.ts sets the node up, watches it and measures; the ways only act.
import type Docker from 'dockerode'
import type pg from 'pg'
import { freePort } from '../../src/docker/client.js'
import { parseDuration } from '../../src/duration.js'
import { runAction } from '../support/action.js'
import { docker, waitFor, type TestDb } from '../support/bed.js'
import type { Layout } from '../support/node.js'

export const FROM = '2.18.0'
export const TO = '2.19.0'
// The node's defaults (docs/node-facts.md §3), what operators run; set explicitly so the bench
// does not depend on the test helpers' fast settings.
export const LEASE = { duration: '10s', refresh: '1s' }
export const STABLE_FOR = '2s'
export const STABLE_FOR_MS = parseDuration(STABLE_FOR)!
export const PID_LABEL = 'io.chainlink-rollout.bench-pid'

/** What a way is handed: the node as it runs before, and where to look at it. */
export interface WayRun {
  /** the node's container name */
  name: string
  db: TestDb
  pgc: pg.Client
  /** the leader before, and its published port (all layouts but bridge) */
  old: { id: string; port?: number }
  /** the app id that holds the lease before */
  oldApp: string
  image: string
  /** when the way started */
  t0: number
  /** a scratch directory of this run */
  dir: string
  /** the action's bundle (index.js) */
  bundle: string
  /** when container `id` started serving HTTP, from its own log (waits for it) */
  served: (id: string) => Promise<number>
}

/** When the new node first served, the way's wall time, and what the action said of itself. */
export interface WayEnd {
  endAt: number
  wallMs: number
  action?: { mainMs: number; summary: string; gapMs?: number }
}

export interface WaySpec {
  title: string
  layout: Layout
  /** in container names */
  short: string
  /** converted to the port-holder layout (`port-holder: true`) before the measured run */
  holder?: boolean
  run: (w: WayRun) => Promise<WayEnd>
}

export type Way =
  | 'action-holder'
  | 'action-ports'
  | 'action-ports-2h'
  | 'action-host'
  | 'action-bridge'
  | 'verify-swap'
  | 'docs-manual'
  | 'watchtower'
  | 'watchtower-host'
  | 'watchtower-bridge'

export const WAYS: Record<Way, WaySpec> = {
  'action-holder': {
    title: 'chainlink-rollout, docs layout in the port-holder layout (`port-holder: true`, converted before the run)',
    layout: 'ports',
    short: 'ph',
    holder: true,
    run: (w) => action(w)
  },
  'action-ports': {
    title: 'chainlink-rollout, docs layout (6688 published), `finish: swap` (default)',
    layout: 'ports',
    short: 'ap',
    run: (w) => action(w)
  },
  'action-ports-2h': {
    title: 'chainlink-rollout, docs layout, `finish: second-handoff`',
    layout: 'ports',
    short: 'a2',
    run: (w) => action(w, 'second-handoff')
  },
  'action-host': { title: 'chainlink-rollout, host networking', layout: 'host', short: 'ah', run: (w) => action(w) },
  'watchtower-host': {
    title: 'stop / rm / run, as Watchtower does, host networking',
    layout: 'host',
    short: 'wh',
    run: watchtower
  },
  'action-bridge': {
    title: 'chainlink-rollout, bridge, no published ports',
    layout: 'bridge',
    short: 'ab',
    run: (w) => action(w)
  },
  'watchtower-bridge': {
    title: 'stop / rm / run, as Watchtower does, bridge',
    layout: 'bridge',
    short: 'wb',
    run: watchtower
  },
  'verify-swap': {
    title: 'verify-then-swap by hand, docs layout (scripted: the bare docker/pg steps, no gates after the swap)',
    layout: 'ports',
    short: 'vs',
    run: verifySwap
  },
  'docs-manual': {
    title: "Chainlink docs' manual procedure (2nd container on a spare port, `docker kill` the 1st)",
    layout: 'ports',
    short: 'dm',
    run: docsManual
  },
  watchtower: {
    title: 'stop / rm / run, as Watchtower does (image pulled first), docs layout',
    layout: 'ports',
    short: 'wt',
    run: watchtower
  }
}

/** The node converted to the port-holder layout (a restart with `port-holder: true`), before the measured run. */
export async function convertToHolder(w: Pick<WayRun, 'name' | 'dir' | 'bundle'>): Promise<void> {
  const r = await runAction(
    {
      operation: 'restart',
      container: w.name,
      'port-holder': 'true',
      'stable-for': STABLE_FOR,
      'state-dir': `${w.dir}/state-dir`
    },
    { dir: w.dir, bundle: w.bundle }
  )
  if (r.exitCode !== 0 || r.outputs.layout !== 'holder')
    throw new Error(
      `conversion: exit ${r.exitCode}, layout ${r.outputs.layout}:\n${r.stdout.split('\n').slice(-25).join('\n')}`
    )
}

/** This action, run as the runner runs it (main, then the post step). */
async function action(w: WayRun, finish?: 'second-handoff'): Promise<WayEnd> {
  const inputs: Record<string, string> = {
    operation: 'upgrade',
    container: w.name,
    image: w.image,
    'stable-for': STABLE_FOR,
    backup: 'false',
    'state-dir': `${w.dir}/state-dir`,
    ...(finish ? { finish } : {})
  }
  const r = await runAction(inputs, { dir: w.dir, bundle: w.bundle })
  const endAt = Date.now()
  if (r.exitCode !== 0 || r.outputs.result !== 'upgraded')
    throw new Error(
      `action exit ${r.exitCode}, result ${r.outputs.result}:\n${r.stdout.split('\n').slice(-25).join('\n')}`
    )
  const gap = r.outputs['leader-gap-ms']
  return {
    endAt,
    wallMs: r.totalMs,
    action: { mainMs: r.mainMs, summary: r.summary, gapMs: gap ? Number(gap) : undefined }
  }
}

/**
 * The swap by hand: the new image as a standby on a spare port, proven waiting, removed; then a
 * prepared stop -> start on the original ports.
 */
async function verifySwap(w: WayRun): Promise<WayEnd> {
  const spare = await freePort('127.0.0.1')
  const sb = await docker.createContainer(await sameConfig(w.old.id, w.image, `${w.name}-verify`, spare))
  await sb.start()
  await provenWaiting(w.pgc, sb.id, TO, w.oldApp)
  await sb.remove({ force: true })
  const next = await docker.createContainer(await sameConfig(w.old.id, w.image, `${w.name}-next`))
  await docker.getContainer(w.old.id).stop({ t: 10 })
  await next.start()
  const endAt = await w.served(next.id)
  await docker.getContainer(w.old.id).remove({ force: true })
  await next.rename({ name: w.name })
  return { endAt, wallMs: Date.now() - w.t0 }
}

/** The Chainlink docs' procedure: a second container on a spare port, proven waiting, then `docker kill` of the first. */
async function docsManual(w: WayRun): Promise<WayEnd> {
  const spare = await freePort('127.0.0.1')
  const second = await docker.createContainer(await sameConfig(w.old.id, w.image, `${w.name}-second`, spare))
  await second.start()
  await provenWaiting(w.pgc, second.id, TO, w.oldApp) // the docs: "it is waiting for the database lock"
  await docker.getContainer(w.old.id).kill() // SIGKILL
  const endAt = await w.served(second.id)
  return { endAt, wallMs: endAt - w.t0 }
}

/** Watchtower: image already pulled; stop (SIGTERM, 10 s timeout), remove, create + start. */
async function watchtower(w: WayRun): Promise<WayEnd> {
  const spec = await sameConfig(w.old.id, w.image, w.name)
  await docker.getContainer(w.old.id).stop({ t: 10 })
  await docker.getContainer(w.old.id).remove()
  const c = await docker.createContainer(spec)
  await c.start()
  const endAt = await w.served(c.id)
  return { endAt, wallMs: endAt - w.t0 }
}

/** The old container's config with another image, name and (maybe) host port: `docker run` as the operator would retype it. */
async function sameConfig(
  id: string,
  image: string,
  name: string,
  hostPort?: number
): Promise<Docker.ContainerCreateOptions> {
  const i = await docker.getContainer(id).inspect()
  const hc: Docker.HostConfig = {
    RestartPolicy: i.HostConfig.RestartPolicy,
    NetworkMode: i.HostConfig.NetworkMode,
    PortBindings: i.HostConfig.PortBindings,
    Binds: i.HostConfig.Binds ?? undefined
  }
  if (hostPort !== undefined) hc.PortBindings = { '6688/tcp': [{ HostIp: '127.0.0.1', HostPort: String(hostPort) }] }
  return {
    name,
    Image: image,
    Env: i.Config.Env,
    Labels: i.Config.Labels,
    Cmd: i.Config.Cmd ?? undefined,
    ExposedPorts: i.Config.ExposedPorts,
    HostConfig: hc
  }
}

export async function leaseHolder(c: pg.Client): Promise<string | undefined> {
  const r = await c.query<{ client_id: string }>('SELECT client_id::text FROM lease_lock WHERE expires_at > now()')
  return r.rows[0]?.client_id
}

/** The standby-ready gate, scripted: running, a DB session of the new version, the lock still the old app's. */
async function provenWaiting(c: pg.Client, id: string, version: string, oldApp: string): Promise<void> {
  await waitFor(
    `standby ${id.slice(0, 12)} waiting for the lock`,
    async () => {
      const info = await docker.getContainer(id).inspect()
      if (!info.State.Running) throw new Error(`standby exited (${info.State.ExitCode})`)
      const s = await c.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE $1`,
        [`Chainlink ${version} |App|%`]
      )
      return Number(s.rows[0].n) > 0 && (await leaseHolder(c)) === oldApp
    },
    30_000,
    50
  )
}
