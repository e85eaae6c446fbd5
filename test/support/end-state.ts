// The end state every fault row must reach (fault-matrix.test.ts, fault-real.test.ts): one
// container named as the node, running and answering /readyz; nothing of the run left; one node
// process on the DB, holding the lease and writing; never two writers; a DB the running version
// accepts; the journal closed and no host lock left. And a run's result and exit code that say
// where the node is.
import { expect } from '@jest/globals'
import type Docker from 'dockerode'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { docker, waitFor, type TestDb } from './bed.js'
import type { ActionRun } from './action.js'
import { containerState, nodeUrl, readyz, writers } from './node.js'
import { dbState, lastHeartbeat } from './fault.js'

/** Highest goose migration each simulator version knows (test/node-sim/migrations.js). */
const GOOSE_MAX: Record<string, number> = { '2.18.0': 241, '2.19.0': 250, '2.20.0': 256 }
const versionOf = (tag: string) => tag.split('-')[0]
function cmpVersion(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i]
  return 0
}

/** Where a result output says the node is. */
const RESULT_MEANS: Record<string, 'old' | 'new' | 'either'> = {
  upgraded: 'new',
  'rolled-back': 'old',
  failed: 'old',
  unchanged: 'new',
  ok: 'either'
}

export interface EndCheck {
  name: string
  db: TestDb
  stateDir: string
  /** the images the node may end on: the old one and the new one */
  oldImage: string
  newImage: string
  /** their tags (the version a leader writes in its heartbeat) */
  oldTag: string
  newTag: string
  api?: Docker
}

export interface End {
  at: 'old' | 'new'
  /** the container named as the node */
  id: string
  /** the writers' versions, in turn */
  writers: string[]
  /** how many writers there were in all */
  writerCount: number
}

export async function expectOneLeader(c: EndCheck): Promise<End> {
  const api = c.api ?? docker
  const st = await containerState(c.name, api)
  expect({ container: c.name, running: st?.running }).toEqual({ container: c.name, running: true })
  const at = st?.image === c.oldImage ? 'old' : st?.image === c.newImage ? 'new' : 'other'
  expect({ image: st?.image, at }).toEqual({ image: st?.image, at: expect.stringMatching(/^(old|new)$/) })
  const ready = await waitFor(
    `${c.name} /readyz 200`,
    async () => ((await readyz((await nodeUrl(c.name, api))!)) === 200 ? 200 : undefined),
    10000
  ).catch(() => undefined)
  expect({ readyz: ready }).toEqual({ readyz: 200 })
  // nothing of the run left over
  const others = (await api.listContainers({ all: true })).filter((x) =>
    x.Names.some((n) => n.startsWith(`/${c.name}-`))
  )
  expect({ leftovers: others.map((x) => x.Names[0]) }).toEqual({ leftovers: [] })
  // exactly one leader: one node process on the DB, holding the lease, and it is the one writing
  const s = await waitFor(
    'one node process on the DB holding the lease',
    async () => {
      const d = await dbState(c.db)
      return d.apps.length === 1 && d.holder === d.apps[0] ? d : undefined
    },
    10000
  ).catch(async () => dbState(c.db))
  expect({ nodeProcesses: s.apps.length, holder: s.holder }).toEqual({ nodeProcesses: 1, holder: s.apps[0] })
  const version = versionOf(at === 'old' ? c.oldTag : c.newTag)
  const hb = await waitFor(
    'a fresh heartbeat from the leader',
    async () => {
      const h = await lastHeartbeat(c.db)
      return h && h.app === s.holder && h.agoMs < 1000 ? h : undefined
    },
    5000
  ).catch(() => lastHeartbeat(c.db))
  expect({ lastWriter: hb?.app, version: hb?.version }).toEqual({ lastWriter: s.holder, version })
  // never two writers: no writer comes back after another wrote
  const w = await writers(c.db)
  expect({ interleaved: w.interleaved, writers: w.versions }).toEqual({ interleaved: false, writers: w.versions })
  // the DB is one the running version accepts
  expect(s.nodeVersion).toBeDefined()
  expect({ nodeVersions: s.nodeVersion, newerThanRunning: cmpVersion(s.nodeVersion ?? '0.0.0', version) > 0 }).toEqual({
    nodeVersions: s.nodeVersion,
    newerThanRunning: false
  })
  expect({ goose: s.goose, newerThanRunning: (s.goose ?? Infinity) > GOOSE_MAX[version] }).toEqual({
    goose: s.goose,
    newerThanRunning: false
  })
  // the journal says the operation ended, and no host lock is left behind (in state-dir, nor
  // the host-wide one of a run of this state-dir)
  for (const jf of journalFiles(c.stateDir))
    expect({ journal: (JSON.parse(readFileSync(jf, 'utf8')) as { phase: string }).phase }).toEqual({ journal: 'done' })
  expect({ locks: readdirSync(c.stateDir).filter((f) => f.endsWith('.lock')) }).toEqual({ locks: [] })
  expect({ hostLocks: hostLocksOf(c.stateDir) }).toEqual({ hostLocks: [] })
  return { at: at as 'old' | 'new', id: st!.id, writers: w.versions, writerCount: w.writers.length }
}

/** The journals in a state-dir (its name is the node's DB key: one node per state-dir in tests). */
export function journalFiles(stateDir: string): string[] {
  return existsSync(stateDir)
    ? readdirSync(stateDir)
        .filter((f) => f.endsWith('.journal.json'))
        .map((f) => join(stateDir, f))
    : []
}

/** The host-wide lock files (/run/lock) held or left by a run of this state-dir. */
export function hostLocksOf(stateDir: string): string[] {
  const dir = '/run/lock'
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((f) => f.startsWith('chainlink-rollout-') && f.endsWith('.lock'))
    .map((f) => join(dir, f))
    .filter((f) => {
      try {
        return (JSON.parse(readFileSync(f, 'utf8')) as { journal?: string }).journal?.startsWith(`${stateDir}/`)
      } catch {
        return false
      }
    })
}

/** A run's outputs and exit code say where the node is. */
export function expectTruthful(run: ActionRun, at: 'old' | 'new', label: string): void {
  const result = run.outputs.result
  if (result !== undefined) {
    const means = RESULT_MEANS[result]
    expect({ label, result, means: means === 'either' ? at : means }).toEqual({ label, result, means: at })
  }
  if (run.exitCode === 0 && result !== 'ok') expect({ label, exit: 0, at }).toEqual({ label, exit: 0, at: 'new' })
}
