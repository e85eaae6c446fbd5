// Access to the real test bed started by test/bed/up.sh: its Postgres, Docker Engine and registry.
// Every integration test creates its own database and its own containers (named with a
// per-test prefix) and removes them afterwards, so tests never see each other's state.
// The integration files run side by side (test/run-tests.sh), so this is a rule for every test:
// name what it creates (containers, databases, image tags, volumes, networks) from uniqueName(),
// filter cleanup and "nothing left / nothing changed" checks by that prefix, never by the whole
// host's lists; own state, backup and temp dirs (mkdtemp); host ports from freePort(); nothing
// host-wide restarted or reconfigured.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import Docker from 'dockerode'
import pg from 'pg'

export interface Bed {
  registry: string
  gateway: string
  pg: { host: string; bridgeHost: string; port: number; user: string; password: string }
  node24: string
}

export const BED_DIR = process.env.BED_DIR ?? '/var/lib/chainlink-rollout-bed'

export function loadBed(): Bed {
  return JSON.parse(readFileSync(`${BED_DIR}/bed.json`, 'utf8')) as Bed
}

export const docker = new Docker({ socketPath: '/var/run/docker.sock' })

/** Image reference of a simulator version (or fault tag) in the bed's registry. */
export function simImage(tag: string, bed = loadBed()): string {
  return `${bed.registry}/${process.env.BED_SIM_REPO ?? 'smartcontract/chainlink'}:${tag}`
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`
}

export interface TestDb {
  name: string
  /** URL for processes on the host (the action, the tests). */
  url: string
  /** URL for containers on the default bridge network (the docker0 gateway). */
  bridgeUrl: string
  client(): Promise<pg.Client>
  drop(): Promise<void>
}

function adminUrl(bed: Bed, db = 'postgres', host = bed.pg.host): string {
  return `postgres://${bed.pg.user}:${encodeURIComponent(bed.pg.password)}@${host}:${bed.pg.port}/${db}?sslmode=disable`
}

/** A fresh, empty database on the bed's Postgres. */
export async function createDb(prefix = 'cl'): Promise<TestDb> {
  const bed = loadBed()
  const name = uniqueName(prefix).replace(/-/g, '_')
  const admin = new pg.Client({ connectionString: adminUrl(bed) })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = adminUrl(bed, name)
  return {
    name,
    url,
    bridgeUrl: adminUrl(bed, name, bed.pg.bridgeHost),
    async client() {
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      return c
    },
    async drop() {
      const a = new pg.Client({ connectionString: adminUrl(bed) })
      await a.connect()
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await a.end()
    }
  }
}

/** Removes every container whose name starts with prefix (test teardown). */
export async function removeContainers(prefix: string, api: Docker = docker): Promise<void> {
  const list = await api.listContainers({ all: true })
  for (const c of list) {
    if (c.Names.some((n) => n.replace(/^\//, '').startsWith(prefix))) {
      await api
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined)
    }
  }
}

export function dockerCli(...args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8' })
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls fn until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30000,
  everyMs = 100
): Promise<T> {
  const end = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < end) {
    try {
      const v = await fn()
      if (v) return v
    } catch (e) {
      last = e
    }
    await sleep(everyMs)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`)
}
