// Which part of a rolling upgrade across hosts this host runs, and the order it keeps
// (src/operations/upgrade-hosts.ts, src/rollout/recreate-waiting.ts), on plain values.
import { describe, expect, test } from '@jest/globals'
import { hostPart, leaderHostRefusal } from '../../../src/operations/upgrade-hosts.js'
import { wrongVersion } from '../../../src/rollout/recreate-waiting.js'
import type { Instance } from '../../../src/node/instances.js'

const L = '6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5'
const R = 'deadbeef-0000-4000-8000-000000000000'
const R2 = 'a0b1c2d3-e4f5-4a6b-9c8d-7e6f5a4b3c2d'

const inst = (appId: string, host: Instance['host'], role: Instance['role'], version = '2.19.0'): Instance => ({
  appId,
  version,
  host,
  role,
  addrs: [host === 'local' ? '172.17.0.2' : '10.0.2.7'],
  ...(host === 'local' ? { container: appId === L ? 'chainlink' : 'other' } : {})
})

describe('hostPart', () => {
  test.each([
    ['one host: nothing elsewhere', [inst(L, 'local', 'leader')], 'one-host'],
    ['a local failover pair', [inst(L, 'local', 'leader'), inst(R, 'local', 'waiting')], 'one-host'],
    ['only a db command elsewhere', [inst(L, 'local', 'leader'), inst(R, 'remote', 'other')], 'one-host'],
    ['nobody leads', [inst(L, 'local', 'waiting'), inst(R, 'remote', 'waiting')], 'one-host'],
    ['this host waits, another leads', [inst(R, 'remote', 'leader'), inst(L, 'local', 'waiting')], 'standby-host'],
    ['this host was drained, another leads', [inst(R, 'remote', 'leader')], 'standby-host'],
    [
      'this host leads, two wait elsewhere',
      [inst(L, 'local', 'leader'), inst(R, 'remote', 'waiting'), inst(R2, 'remote', 'waiting')],
      'leader-host'
    ],
    ['another local container leads', [inst(R2, 'local', 'leader'), inst(R, 'remote', 'waiting')], 'one-host']
  ])('%s', (_, instances, kind) => {
    const p = hostPart(instances, 'chainlink')
    expect(p.kind).toBe(kind)
    if (p.kind === 'leader-host') expect(p.waiting.map((x) => x.appId)).toEqual([R, R2])
    if (p.kind === 'standby-host') expect(p.leader.appId).toBe(R)
  })
})

describe("leaderHostRefusal: the leader's host goes last", () => {
  test.each([
    ['every standby elsewhere on the target', [inst(R, 'remote', 'waiting', '2.20.0')], '2.20.0', undefined],
    [
      'one standby elsewhere still on the old version',
      [inst(R, 'remote', 'waiting', '2.20.0'), inst(R2, 'remote', 'waiting', '2.19.0')],
      '2.20.0',
      /Chainlink 2\.19\.0.*does not run the target's Chainlink 2\.20\.0: the leader's host is upgraded last/
    ],
    ['a standby elsewhere newer than the target', [inst(R, 'remote', 'waiting', '2.21.0')], '2.20.0', /2\.21\.0/],
    ["the target's version unknown: not judged", [inst(R, 'remote', 'waiting', '2.19.0')], undefined, undefined]
  ])('%s', (_, waiting, target, want) => {
    const r = leaderHostRefusal(waiting, target)
    if (want) expect(r).toMatch(want)
    else expect(r).toBeUndefined()
  })
})

test.each([
  ['2.20.0', '2.20.0', undefined],
  ['2.19.0', '2.20.0', "it runs Chainlink 2.19.0, not the target's 2.20.0"],
  ['2.20.0', undefined, undefined],
  [undefined, '2.20.0', undefined]
])('wrongVersion(%s, %s)', (proven, target, want) => {
  expect(wrongVersion(proven, target)).toBe(want)
})
