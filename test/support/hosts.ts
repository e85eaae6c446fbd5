// A bed of "hosts" for one node spread over several machines (issue 22): each host is a
// dedicated Docker daemon of its own (socket, data root, bridge and subnet: dedicated-dockerd.ts)
// with the simulator images pulled from the bed's registry, and all of them share the bed's
// Postgres. Their containers reach it as the bed daemon's containers do, at the docker0 gateway
// (TestDb.bridgeUrl): that address is the machine's own, so a packet from any bridge of this
// machine is delivered locally, and Postgres sees it come from the container's own address (the
// dedicated daemons add no MASQUERADE rule), one subnet per host, as from real hosts.
// `run` runs the action as that host's runner would: its own DOCKER_HOST, state dir and host lock.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startDedicatedDockerd, type DedicatedDockerd } from './dedicated-dockerd.js'
import { runAction, visible, type ActionRun, type RunOptions } from './action.js'
import { removeContainers, simImage, waitFor, type TestDb } from './bed.js'
import { lastHeartbeat } from './fault.js'

export interface BedHost {
  /** h1, h2, ... */
  label: string
  dockerd: DedicatedDockerd
  /** the runner's state dir on this host (journal, host lock, drain record) */
  stateDir: string
  /** the action, as this host's runner runs it */
  run(inputs: Record<string, string>, opts?: RunOptions): Promise<ActionRun>
}

/** Starts `n` hosts, each with `tags` of the simulator pulled. Stop them with stopHosts. */
export async function startHosts(n: number, tags: string[]): Promise<BedHost[]> {
  const hosts: BedHost[] = []
  try {
    for (let i = 1; i <= n; i++) {
      const dockerd = await startDedicatedDockerd()
      const stateDir = mkdtempSync(join(tmpdir(), `clr-host${i}-state-`))
      const host: BedHost = {
        label: `h${i}`,
        dockerd,
        stateDir,
        run: async (inputs, opts = {}) => {
          const r = await runAction(
            { 'state-dir': stateDir, ...inputs },
            { ...opts, env: { DOCKER_HOST: dockerd.host, ...(opts.env ?? {}) } }
          )
          // HOSTS_VERBOSE=1: every run's log on stderr
          if (process.env.HOSTS_VERBOSE)
            process.stderr.write(
              `--- h${i} ${inputs.operation}: exit ${r.exitCode} ${r.outputs.result ?? ''} ---\n${visible(r.stdout)}\n`
            )
          return r
        }
      }
      hosts.push(host)
      for (const tag of tags) dockerd.cli('pull', '-q', simImage(tag))
    }
    return hosts
  } catch (e) {
    await stopHosts(hosts)
    throw e
  }
}

/** Removes the test's containers from every host, stops the daemons and removes their state dirs. */
export async function stopHosts(hosts: BedHost[], prefix?: string): Promise<void> {
  for (const h of hosts) {
    if (prefix) await removeContainers(prefix, h.dockerd.api).catch(() => undefined)
    await h.dockerd.stop().catch(() => undefined)
    rmSync(h.stateDir, { recursive: true, force: true })
  }
}

/** Until the DB shows `n` node processes (a standby just started has opened its session). */
export async function nodeProcesses(db: TestDb, n: number): Promise<void> {
  await waitFor(
    `${n} node processes on the DB`,
    async () => {
      const c = await db.client()
      try {
        const r = await c.query(
          `SELECT count(DISTINCT application_name)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'Chainlink %'`,
          [db.name]
        )
        return r.rows[0].n === n
      } finally {
        await c.end()
      }
    },
    60_000,
    200
  )
}

/** The app id of the process that writes heartbeats now (the leader, by its own writes), of `version`. */
export async function writerNow(db: TestDb, version: string): Promise<string> {
  const h = await waitFor(
    `a fresh heartbeat of ${version}`,
    async () => {
      const x = await lastHeartbeat(db)
      return x && x.agoMs < 1000 && x.version === version ? x : undefined
    },
    60_000
  )
  return h.app
}

/** The DB's goose version and node_versions row. */
export async function dbVersionOf(db: TestDb): Promise<{ goose: number; node?: string }> {
  const c = await db.client()
  try {
    const g = await c.query(`SELECT max(version_id)::int AS v FROM goose_migrations WHERE is_applied`)
    const n = await c.query(`SELECT version FROM node_versions LIMIT 1`)
    return { goose: g.rows[0].v, node: n.rows[0]?.version }
  } finally {
    await c.end()
  }
}

/** The containers of every host whose name starts with `name`: host, name, image, running. */
export async function containersOf(
  hosts: BedHost[],
  name: string
): Promise<{ host: string; name: string; image: string; running: boolean }[]> {
  const out: { host: string; name: string; image: string; running: boolean }[] = []
  for (const h of hosts)
    for (const c of await h.dockerd.api.listContainers({ all: true }))
      for (const n of c.Names.map((x) => x.replace(/^\//, '')).filter((x) => x.startsWith(name)))
        out.push({ host: h.label, name: n, image: c.Image, running: c.State === 'running' })
  return out.sort((a, b) => (a.host + a.name).localeCompare(b.host + b.name))
}
