// Drain and resume decisions on plain values (src/rollout/cross-host.ts, src/operations/drain.ts):
// versions against the DB's migrations, whose the lock is after the stop, and the refusals.
import { describe, expect, test } from '@jest/globals'
import { cmpVersion, judgeRemoteTake, versionGateRefusal } from '../../../src/rollout/cross-host.js'
import { drainRefusal } from '../../../src/operations/drain.js'
import type { Instance } from '../../../src/node/instances.js'

const L = '6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5'
const R = 'deadbeef-0000-4000-8000-000000000000'
const R2 = 'a0b1c2d3-e4f5-4a6b-9c8d-7e6f5a4b3c2d'

test.each([
  ['2.19.0', '2.18.0', 1],
  ['2.18.0', '2.19.0', -1],
  ['2.19.0', '2.19.0', 0],
  ['2.19.0-beta1', '2.19.0', 0],
  ['v2.10.0', '2.9.3', 1],
  ['', '2.19.0', undefined],
  ['2.19.0', undefined, undefined]
])('cmpVersion(%s, %s) has the sign of %s', (a, b, sign) => {
  const c = cmpVersion(a, b)
  expect(c === undefined ? undefined : Math.sign(c)).toBe(sign)
})

test('versionGateRefusal: only an older version than node_versions is refused', () => {
  expect(versionGateRefusal('2.18.0', '2.19.0')).toMatch(/lower than the database's version 2\.19\.0/)
  expect(versionGateRefusal('2.19.0', '2.19.0')).toBeUndefined()
  expect(versionGateRefusal('2.20.0', '2.19.0')).toBeUndefined()
  expect(versionGateRefusal('2.18.0', undefined)).toBeUndefined()
})

describe('judgeRemoteTake', () => {
  test.each([
    ['nobody holds it yet', { live: [L, R] }, 'wait'],
    ['the stopped leader still holds it', { holder: L, live: [L, R] }, 'wait'],
    ['a waiting remote holds it, the leader still has a session', { holder: R, live: [L, R] }, 'wait'],
    ['a waiting remote holds it alone', { holder: R, live: [R] }, 'pass'],
    ['an instance that was not waiting elsewhere holds it', { holder: R2, live: [R2] }, 'fail']
  ])('%s: %s', (_, o, kind) => {
    expect(judgeRemoteTake(o, { from: L, to: [R] }).kind).toBe(kind)
  })
})

const inst = (appId: string, host: Instance['host'], role: Instance['role'], version = '2.19.0'): Instance => ({
  appId,
  version,
  host,
  role,
  addrs: [host === 'local' ? '172.17.0.2' : '10.0.2.7'],
  ...(host === 'local' ? { container: appId === L ? 'chainlink' : 'other' } : {})
})

describe('drainRefusal', () => {
  test.each([
    ['a waiting instance on another host: go', [inst(L, 'local', 'leader'), inst(R, 'remote', 'waiting')], undefined],
    [
      'no instance at all elsewhere',
      [inst(L, 'local', 'leader')],
      /No instance of the node waits for the lock on another host/
    ],
    [
      'the one elsewhere does not poll the lock',
      [inst(L, 'local', 'leader'), inst(R, 'remote', 'other')],
      /No instance of the node waits/
    ],
    [
      'another instance waits on this host too',
      [inst(L, 'local', 'leader'), inst(R, 'remote', 'waiting'), inst(R2, 'local', 'waiting')],
      /also waits for the lock on this host/
    ],
    [
      'the one waiting elsewhere is older than the DB',
      [inst(L, 'local', 'leader'), inst(R, 'remote', 'waiting', '2.18.0')],
      /2\.18\.0 is lower than the database's version 2\.19\.0.*nothing was changed/
    ],
    [
      'a newer one elsewhere may take it (it migrates: the rolling upgrade)',
      [inst(L, 'local', 'leader'), inst(R, 'remote', 'waiting', '2.20.0')],
      undefined
    ]
  ])('%s', (_, instances, want) => {
    const got = drainRefusal(instances, L, '2.19.0')
    if (want === undefined) expect(got).toBeUndefined()
    else expect(got).toMatch(want)
  })
})
