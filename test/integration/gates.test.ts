// The gates on a node that behaves like a real one (the simulator's defaults: every route
// rate-limited per client address, /health 207 while a check fails, Docker's HEALTHCHECK
// interval): a long stable-for ends `upgraded` in both layouts, a node with a check failing for
// good before and after upgrades, and a check that starts failing only after the handoff rolls
// back, named with its output.
import { afterAll, describe, expect, test } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb, removeContainers, simImage, uniqueName } from '../support/bed.js'
import { runAction, type ActionRun } from '../support/action.js'
import { startNode, type Layout } from '../support/node.js'
import { expectServing, type OneNode } from '../support/one-node.js'

const prefix = uniqueName('clr-gates')
let n = 0

afterAll(async () => {
  await removeContainers(prefix)
})

/** Runs `body` on a node of its own (the tests run side by side), removed with its DB afterwards. */
async function onFresh(
  layout: Layout,
  tag: string,
  body: (node: OneNode) => Promise<void>,
  env?: Record<string, string>,
  lease?: { duration: string; refresh: string }
) {
  const db = await createDb('gates')
  const node = { db, name: `${prefix}-${++n}`, stateDir: mkdtempSync(join(tmpdir(), 'clr-state-')) }
  try {
    await startNode({ name: node.name, tag, db, layout, env, lease })
    await body(node)
  } finally {
    await removeContainers(node.name)
    await db.drop()
  }
}

function upgrade(node: OneNode, tag: string, extra: Record<string, string> = {}): Promise<ActionRun> {
  return runAction({
    operation: 'upgrade',
    container: node.name,
    image: simImage(tag),
    'state-dir': node.stateDir,
    backup: 'false',
    ...extra
  })
}

/** the most requests the action sent in any 60 s window, as its summary reports it */
function maxWindow(summary: string): number {
  const m = /at most (\d+) in any 60 s window/.exec(summary)
  return m ? Number(m[1]) : NaN
}

const MIN = 60_000

// The tests run side by side (each on a node, DB and state-dir of its own; every node has its own
// rate limit): the file takes as long as its longest test, not the sum of them.
describe('gates on a node that behaves like a real one', () => {
  test.concurrent.each<[Layout]>([['host'], ['ports']])(
    'a long stable-for within the node rate limit: %s layout, stable-for 60s: upgraded',
    (layout) =>
      onFresh(layout, '2.18.0', async (node) => {
        const r = await upgrade(node, '2.19.0', { 'stable-for': '60s' })
        expect(r.outputs.result).toBe('upgraded')
        expect(r.exitCode).toBe(0)
        await expectServing(node, '2.19.0')
        expect(r.summary).toMatch(/health \| passed \| .*held 6\d\.\d s/)
        expect(maxWindow(r.summary)).toBeLessThanOrEqual(300)
        // the simulator's lock session ends its polls with a lower-case `commit`, as pgx does
        if (layout === 'host') expect(r.summary).toMatch(/\| aimed \(held \d+ ms\) \|/)
      }),
    6 * MIN
  )

  test.concurrent(
    '/health is evidence, not a veto: a degraded node (the same check failing before and after): upgraded, the check shown',
    () =>
      onFresh(
        'ports',
        '2.19.0',
        async (node) => {
          const r = await upgrade(node, '2.20.0', { 'stable-for': '5s' })
          expect(r.outputs.result).toBe('upgraded')
          expect(r.exitCode).toBe(0)
          await expectServing(node, '2.20.0')
          expect(r.summary).toMatch(/Health before \| failing on '[^']+' before the change .*EVM\.1337\.HeadTracker/)
          expect(r.summary).toMatch(/failing as before the upgrade: EVM\.1337\.HeadTracker/)
        },
        { SIM_FAILING_CHECK: 'EVM.1337.HeadTracker' }
      ),
    5 * MIN
  )

  test.concurrent(
    '/health is evidence, not a veto: a check that starts failing only after the handoff: rolled back, the check named with its output',
    () =>
      onFresh('bridge', '2.19.0', async (node) => {
        const r = await upgrade(node, '2.20.0-new-check-fails', { 'stable-for': '30s', 'ready-timeout': '40s' })
        expect(r.outputs.result).toBe('rolled-back')
        expect(r.exitCode).not.toBe(0)
        expect(r.summary).toMatch(/EVM\.1337\.LogPoller \(LogPoller: [^)]+\) failing after the handoff/)
        await expectServing(node, '2.19.0')
      }),
    6 * MIN
  )

  test.concurrent(
    'a failed start keeps its lease: the new node exits holding the lease: rolled back once the lease runs out, and the summary says so',
    () =>
      // a lease long enough that it is still held when the rollback starts the previous node
      onFresh(
        'host',
        '2.19.0',
        async (node) => {
          const r = await upgrade(node, '2.20.0-exit-after-lock', { 'stable-for': '2s' })
          expect(r.outputs.result).toBe('rolled-back')
          expect(r.summary).toMatch(/exited without releasing it/)
          await expectServing(node, '2.19.0')
        },
        undefined,
        { duration: '20s', refresh: '1s' }
      ),
    5 * MIN
  )
})
