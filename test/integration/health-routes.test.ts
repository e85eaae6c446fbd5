// Health endpoints as real nodes have them now (issue 24, item 6; docs/node-facts.md §5): newer
// nodes add /public-readyz (status only), older ones answer it 404; a node may put /health (and
// /readyz) behind authentication, answering 401 or 403. The gates prefer the status-only route
// where it exists, fall back to /readyz where not, and take 401/403 as no evidence, never as a
// failure. The simulator's knobs (test/node-sim/README.md) set each on the real images; the
// action copies the leader's env to the new container, so both versions behave alike.
import { afterAll, afterEach, describe, expect, test } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb, removeContainers, simImage, uniqueName, waitFor, type TestDb } from '../support/bed.js'
import { runAction, visible } from '../support/action.js'
import { containerState, nodeUrl, startNode, writers } from '../support/node.js'

const prefix = uniqueName('clr-hr')
let n = 0
let db: TestDb | undefined
let name: string

afterAll(async () => {
  await removeContainers(prefix)
})
afterEach(async () => {
  await removeContainers(name)
  await db?.drop()
})

/** HTTP status of a path on the node's URL */
async function status(url: string, path: string): Promise<number> {
  return (await fetch(`${url}${path}`)).status
}

describe('the gates on the routes a node has', () => {
  test.each<[string, Record<string, string>, Record<string, number>, RegExp, RegExp]>([
    [
      '/health behind authentication (401): no evidence, the upgrade passes on readiness and the lock',
      { SIM_AUTH_HEALTH: '401' },
      { '/health': 401, '/public-readyz': 200, '/readyz': 200 },
      /Health before.*answers 401 \(behind authentication\): failing checks are not compared/,
      /gate health: passed \('[^']+': \/public-readyz 200, \/health 401 \(behind authentication: checks not compared\)/
    ],
    [
      '/health and /readyz behind authentication (403): the status-only /public-readyz decides',
      { SIM_AUTH_HEALTH: '403', SIM_AUTH_READYZ: '403' },
      { '/health': 403, '/public-readyz': 200, '/readyz': 403 },
      /Health before.*answers 403 \(behind authentication\)/,
      /gate health: passed \('[^']+': \/public-readyz 200, \/health 403 \(behind authentication: checks not compared\)/
    ],
    [
      'a node older than /public-readyz (404): /readyz, and /health compared as before',
      { SIM_PUBLIC_READYZ: 'off', SIM_FAILING_CHECK: 'EVM.1337.HeadTracker' },
      { '/health': 207, '/public-readyz': 404, '/readyz': 200 },
      /Health before.*failing on '[^']+' before the change .*EVM\.1337\.HeadTracker/,
      /gate health: passed \('[^']+': \/readyz 200, failing as before the upgrade: EVM\.1337\.HeadTracker/
    ]
  ])('%s', async (_, env, routes, before, gate) => {
    db = await createDb('hr')
    name = `${prefix}-${++n}`
    const stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
    // leading: the status-only route answers 200 (test/support's own wait reads /readyz)
    await startNode({ name, tag: '2.19.0', db, layout: 'ports', env, noWait: true })
    const url = (await nodeUrl(name))!
    const open = routes['/readyz'] === 200 ? '/readyz' : '/public-readyz'
    await waitFor(`${name} ${open} 200`, async () => (await status(url, open).catch(() => 0)) === 200, 30_000, 250)
    for (const [path, want] of Object.entries(routes)) expect([path, await status(url, path)]).toEqual([path, want])
    const r = await runAction({
      operation: 'upgrade',
      container: name,
      image: simImage('2.20.0'),
      'state-dir': stateDir,
      backup: 'false',
      'stable-for': '2s',
      'ready-timeout': '60s'
    })
    const out = visible(r.stdout)
    expect(r.summary).toMatch(before)
    expect(out).toMatch(gate)
    expect(r.outputs.result).toBe('upgraded')
    expect(r.exitCode).toBe(0)
    const st = await containerState(name)
    expect(st?.image).toBe(simImage('2.20.0'))
    expect(st?.running).toBe(true)
    // the new container behaves as the old one did (the env was copied): the same routes
    const url2 = (await nodeUrl(name))!
    for (const [path, want] of Object.entries(routes)) expect([path, await status(url2, path)]).toEqual([path, want])
    const w = await writers(db)
    expect(w.interleaved).toBe(false)
    expect(w.versions).toEqual(['2.19.0', '2.20.0'])
  })
})
