// The drain's gate on an instance on another host, judged on plain observations
// (src/handoff/remote-gate.ts): the lease its own and renewed, its sessions alive and at work,
// and its /readyz when its URL is given.
import { describe, expect, test } from '@jest/globals'
import type { NodeSession } from '../../../src/postgres/database.js'
import { judgeRemoteLeader, type RemoteObs } from '../../../src/handoff/remote-gate.js'
import type { ReadyObs } from '../../../src/node/observer.js'

const APP = 'deadbeef-0000-4000-8000-000000000000'
const OTHER = '6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5'

function session(pid: number, query: string, queryStartMs: number, appId = APP): NodeSession {
  return {
    pid,
    appId,
    version: '2.19.0',
    applicationName: `Chainlink 2.19.0 |App|${appId}`,
    clientAddr: '10.0.2.7',
    clientPort: 40000 + pid,
    backendStart: new Date(0),
    queryStart: new Date(queryStartMs),
    state: 'idle',
    query
  }
}

/** A look every 500 ms: the lease renewed each time, the lock session at `commit`, a work session inserting. */
function looks(
  n: number,
  o: { renew?: boolean; work?: boolean; ready?: (i: number) => ReadyObs | undefined } = {}
): RemoteObs[] {
  return Array.from({ length: n }, (_, i) => ({
    at: i * 500,
    lease: { clientId: APP, expiresAt: 10_000 + (o.renew === false ? 0 : i * 500), expired: false },
    sessions: [session(1, 'commit', i * 500), session(2, 'INSERT INTO heads ...', o.work === false ? 0 : i * 500)],
    ready: o.ready?.(i)
  }))
}
const P = { appId: APP, stableMs: 3000, withUrl: false, readyBy: 60_000 }

describe('judgeRemoteLeader', () => {
  test('passes once the window is over with renewals and work of its own sessions', () => {
    const v = judgeRemoteLeader(looks(7), P)
    expect(v.kind).toBe('pass')
    if (v.kind === 'pass') expect(v.proved).toMatchObject({ renewals: 6, work: 6 })
  })
  test('waits until the window is over', () => {
    expect(judgeRemoteLeader(looks(3), P).kind).toBe('wait')
  })
  test("the lock session's own polls are no work", () => {
    expect(judgeRemoteLeader(looks(7, { work: false }), P)).toEqual({
      kind: 'wait',
      why: 'no work of the node seen yet'
    })
    const v = judgeRemoteLeader(looks(19, { work: false }), P)
    expect(v.kind).toBe('fail')
  })
  test('a lease not renewed is no proof', () => {
    expect(judgeRemoteLeader(looks(7, { renew: false }), P).kind).toBe('wait')
    expect(judgeRemoteLeader(looks(19, { renew: false }), P)).toMatchObject({ kind: 'fail' })
  })
  test.each([
    ['the lease is another app’s', { clientId: OTHER, expiresAt: 1, expired: false }, /the lock left app/],
    ['the lease ran out', { clientId: APP, expiresAt: 1, expired: true }, /ran out unrenewed/],
    ['the lease row is gone', undefined, /the lease is gone/]
  ])('fails at once when %s', (_, lease, reason) => {
    const obs = looks(4)
    obs[2] = { ...obs[2], lease }
    const v = judgeRemoteLeader(obs, P)
    expect(v.kind).toBe('fail')
    if (v.kind === 'fail') expect(v.reason).toMatch(reason)
  })
  test('fails when its sessions are gone (its node exited)', () => {
    const obs = looks(4)
    obs[3] = { ...obs[3], sessions: [session(9, 'commit', 0, OTHER)] }
    expect(judgeRemoteLeader(obs, P)).toMatchObject({
      kind: 'fail',
      reason: expect.stringMatching(/no DB session left/)
    })
  })
  test('with a URL: the window starts at the first ready answer, a not-ready one after it fails', () => {
    const ready = (i: number): ReadyObs => ({
      at: i * 500,
      kind: i >= 2 ? 'ready' : 'not-ready',
      status: i >= 2 ? 200 : 503
    })
    const url = { ...P, withUrl: true }
    expect(judgeRemoteLeader(looks(8, { ready }), url).kind).toBe('wait')
    expect(judgeRemoteLeader(looks(9, { ready }), url)).toMatchObject({ kind: 'pass', proved: { readyAt: 1000 } })
    const flap = (i: number): ReadyObs => ({
      at: i * 500,
      kind: i === 4 ? 'not-ready' : 'ready',
      status: i === 4 ? 503 : 200
    })
    expect(judgeRemoteLeader(looks(9, { ready: flap }), url)).toMatchObject({ kind: 'fail' })
  })
  test('with a URL never ready by the deadline: fails', () => {
    const never = (i: number): ReadyObs => ({ at: i * 500, kind: 'not-ready', status: 503 })
    expect(judgeRemoteLeader(looks(5, { ready: never }), { ...P, withUrl: true, readyBy: 2000 })).toMatchObject({
      kind: 'fail',
      reason: expect.stringMatching(/did not answer 200/)
    })
  })
})
