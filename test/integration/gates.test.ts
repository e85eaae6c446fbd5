// The gates on a node that behaves like a real one (the simulator's defaults: every route
// rate-limited per client address, /health 207 while a check fails, Docker's HEALTHCHECK
// interval): a long stable-for ends `upgraded` in both layouts, a node with a check failing for
// good before and after upgrades, and a check that starts failing only after the handoff rolls
// back, named with its output.
import { afterAll, afterEach, describe, expect, test } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb, docker, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { runAction, type ActionRun } from '../support/action.js'
import { containerState, nodeUrl, readyz, startNode, writers, type Layout } from '../support/node.js'

const prefix = uniqueName('clr-gates')
let n = 0
let db: TestDb
let name: string
let stateDir: string

afterAll(async () => {
  await removeContainers(prefix)
})

afterEach(async () => {
  await removeContainers(name)
  await db?.drop()
})

async function fresh(
  layout: Layout,
  tag: string,
  env?: Record<string, string>,
  lease?: { duration: string; refresh: string }
) {
  db = await createDb('gates')
  name = `${prefix}-${++n}`
  stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
  await startNode({ name, tag, db, layout, env, lease })
}

function upgrade(tag: string, extra: Record<string, string> = {}): Promise<ActionRun> {
  return runAction({
    operation: 'upgrade',
    container: name,
    image: simImage(tag),
    'state-dir': stateDir,
    backup: 'false',
    ...extra
  })
}

async function expectLeader(tag: string) {
  const st = await containerState(name)
  expect(st?.running).toBe(true)
  expect(st?.image).toBe(simImage(tag))
  expect(await readyz((await nodeUrl(name))!)).toBe(200)
  const left = (await docker.listContainers({ all: true })).filter((c) =>
    c.Names.some((x) => x.startsWith(`/${name}-`))
  )
  expect(left.map((c) => c.Names[0])).toEqual([])
  expect((await writers(db)).interleaved).toBe(false)
}

/** the most requests the action sent in any 60 s window, as its summary reports it */
function maxWindow(summary: string): number {
  const m = /at most (\d+) in any 60 s window/.exec(summary)
  return m ? Number(m[1]) : NaN
}

const MIN = 60_000

describe('a long stable-for within the node rate limit', () => {
  test.each<[Layout]>([['host'], ['ports']])(
    '%s layout, stable-for 60s: upgraded',
    async (layout) => {
      await fresh(layout, '2.18.0')
      const r = await upgrade('2.19.0', { 'stable-for': '60s' })
      expect(r.outputs.result).toBe('upgraded')
      expect(r.exitCode).toBe(0)
      await expectLeader('2.19.0')
      expect(r.summary).toMatch(/health \| passed \| .*held 6\d\.\d s/)
      expect(maxWindow(r.summary)).toBeLessThanOrEqual(300)
      // the simulator's lock session ends its polls with a lower-case `commit`, as pgx does
      if (layout === 'host') expect(r.summary).toMatch(/\| aimed \(held \d+ ms\) \|/)
    },
    6 * MIN
  )
})

describe('/health is evidence, not a veto', () => {
  test(
    'a degraded node (the same check failing before and after): upgraded, the check shown',
    async () => {
      await fresh('ports', '2.19.0', { SIM_FAILING_CHECK: 'EVM.1337.HeadTracker' })
      const r = await upgrade('2.20.0', { 'stable-for': '5s' })
      expect(r.outputs.result).toBe('upgraded')
      expect(r.exitCode).toBe(0)
      await expectLeader('2.20.0')
      expect(r.summary).toMatch(/Health before \| failing on '[^']+' before the change .*EVM\.1337\.HeadTracker/)
      expect(r.summary).toMatch(/failing as before the upgrade: EVM\.1337\.HeadTracker/)
    },
    5 * MIN
  )

  test(
    'a check that starts failing only after the handoff: rolled back, the check named with its output',
    async () => {
      await fresh('bridge', '2.19.0')
      const r = await upgrade('2.20.0-new-check-fails', { 'stable-for': '30s', 'ready-timeout': '40s' })
      expect(r.outputs.result).toBe('rolled-back')
      expect(r.exitCode).not.toBe(0)
      expect(r.summary).toMatch(/EVM\.1337\.LogPoller \(LogPoller: [^)]+\) failing after the handoff/)
      await expectLeader('2.19.0')
    },
    6 * MIN
  )
})

describe('a failed start keeps its lease', () => {
  test(
    'the new node exits holding the lease: rolled back once the lease runs out, and the summary says so',
    async () => {
      // a lease long enough that it is still held when the rollback starts the previous node
      await fresh('host', '2.19.0', undefined, { duration: '20s', refresh: '1s' })
      const r = await upgrade('2.20.0-exit-after-lock', { 'stable-for': '2s' })
      expect(r.outputs.result).toBe('rolled-back')
      expect(r.summary).toMatch(/exited without releasing it/)
      await expectLeader('2.19.0')
    },
    5 * MIN
  )
})
