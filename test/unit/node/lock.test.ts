import { describe, expect, it, test } from '@jest/globals'
import {
  parseApplicationName,
  type AdvisoryHolder,
  type LeaseRow,
  type NodeSession
} from '../../../src/postgres/database.js'
import { decideHolder, type LockState } from '../../../src/node/lock.js'
import type { LockMode } from '../../../src/node/config-types.js'

const OLD = '6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5'
const NEW = 'a0b1c2d3-e4f5-4a6b-9c8d-7e6f5a4b3c2d'
const GHOST = 'deadbeef-0000-4000-8000-000000000000'
const EXPIRES = new Date('2025-06-01T12:00:10.000Z')

function session(appId: string, pid: number, clientAddr: string | null = null, version = '2.19.0'): NodeSession {
  return {
    pid,
    appId,
    version,
    applicationName: `Chainlink ${version} |App|${appId}`,
    clientAddr,
    clientPort: clientAddr ? 40000 + pid : null,
    backendStart: new Date('2025-06-01T12:00:00Z'),
    queryStart: null,
    state: 'idle',
    query: ''
  }
}
const lease = (clientId: string, expired = false): LeaseRow => ({ clientId, expiresAt: EXPIRES, expired })
const adv = (pid: number, appId?: string): AdvisoryHolder => ({ pid, appId })

function state(
  mode: LockMode,
  parts: { lease?: LeaseRow; advisory?: AdvisoryHolder[]; sessions?: NodeSession[] }
): LockState {
  return { mode, lease: parts.lease, advisory: parts.advisory ?? [], sessions: parts.sessions ?? [] }
}

describe('decideHolder', () => {
  const both = [session(OLD, 101), session(NEW, 202)]
  type Case = [name: string, s: LockState, holder: string | undefined, problem: RegExp | undefined]
  const cases: Case[] = [
    // lease
    ['lease held by a live node', state('lease', { lease: lease(OLD), sessions: both }), OLD, undefined],
    ['lease held, a standby waiting', state('lease', { lease: lease(NEW), sessions: both }), NEW, undefined],
    [
      'lease expired',
      state('lease', { lease: lease(OLD, true), sessions: both }),
      undefined,
      /expired at 2025-06-01T12:00:10.000Z.*no node holds the lock/
    ],
    ['lease table empty', state('lease', { sessions: both }), undefined, /lease_lock table is empty/],
    [
      'lease held by an app without a DB session (killed node)',
      state('lease', { lease: lease(GHOST), sessions: both }),
      undefined,
      new RegExp(`held by app ${GHOST}, which has no DB session.*expires at 2025-06-01T12:00:10.000Z`)
    ],
    [
      'lease held, no node connected at all',
      state('lease', { lease: lease(OLD), sessions: [] }),
      undefined,
      /no DB session/
    ],
    // advisory
    ['advisory: nobody', state('advisorylock', { sessions: both }), undefined, /nobody holds the advisory lock/],
    ['advisory: one node', state('advisorylock', { advisory: [adv(101, OLD)], sessions: both }), OLD, undefined],
    [
      'advisory: the same app twice is one holder',
      state('advisorylock', { advisory: [adv(101, OLD), adv(101, OLD)], sessions: both }),
      OLD,
      undefined
    ],
    [
      'advisory: two nodes',
      state('advisorylock', { advisory: [adv(101, OLD), adv(202, NEW)], sessions: both }),
      undefined,
      new RegExp(`two sessions hold the advisory lock \\(${OLD}, ${NEW}\\)`)
    ],
    [
      'advisory: a node and a foreign session',
      state('advisorylock', { advisory: [adv(101, OLD), adv(303)], sessions: both }),
      undefined,
      /two sessions hold the advisory lock \(.*pid 303\)/
    ],
    // dual: lease first, then advisory; both must name the same app
    ['dual: agreeing', state('dual', { lease: lease(OLD), advisory: [adv(101, OLD)], sessions: both }), OLD, undefined],
    [
      'dual: disagreeing',
      state('dual', { lease: lease(OLD), advisory: [adv(202, NEW)], sessions: both }),
      undefined,
      new RegExp(`two leaders: app ${OLD} holds the lease while ${NEW} holds the advisory lock`)
    ],
    [
      'dual: advisory missing',
      state('dual', { lease: lease(OLD), sessions: both }),
      undefined,
      new RegExp(`app ${OLD} holds the lease but nobody holds the advisory lock`)
    ],
    [
      'dual: advisory held, lease expired',
      state('dual', { lease: lease(OLD, true), advisory: [adv(101, OLD)], sessions: both }),
      undefined,
      /lease expired/
    ],
    [
      'dual: advisory held twice',
      state('dual', { lease: lease(OLD), advisory: [adv(101, OLD), adv(202, NEW)], sessions: both }),
      undefined,
      /two sessions hold the advisory lock/
    ],
    // none
    [
      'mode none',
      state('none', { lease: lease(OLD), advisory: [adv(101, OLD)], sessions: both }),
      undefined,
      /lock mode 'none'.*no zero-downtime handoff/
    ]
  ]
  test.each(cases)('%s', (_, s, holder, problem) => {
    const out = decideHolder(s)
    expect(out.holder).toBe(holder)
    if (problem) expect(out.problem).toMatch(problem)
    else expect(out.problem).toBeUndefined()
    // exactly one of holder / problem
    expect(!!out.holder !== !!out.problem).toBe(true)
  })

  it('keeps what was read and clears a stale verdict', () => {
    const s = { ...state('lease', { lease: lease(OLD, true), sessions: [session(OLD, 101)] }), holder: OLD }
    const out = decideHolder(s)
    expect(out.holder).toBeUndefined()
    expect(out.sessions).toBe(s.sessions)
    expect(out.lease).toBe(s.lease)
    expect(
      decideHolder({ ...state('lease', { lease: lease(OLD), sessions: [session(OLD, 101)] }), problem: 'old' }).problem
    ).toBeUndefined()
  })

  // Regression (was a bug, fixed): the node truncates application_name to 63 characters (static.SetConsumerName; the
  // simulator does the same), so with a version string longer than 11 characters, e.g. the CCIP
  // node's '2.17.0-ccip1.5.16', the app UUID in pg_stat_activity is cut short. decideHolder
  // compares it with the full UUID in lease_lock and reports the live leader as "no DB session",
  // so preflight refuses every such node.
  test('a leader whose application_name was truncated to 63 characters is still the holder', () => {
    const version = '2.17.0-ccip1.5.16'
    const applicationName = `Chainlink ${version} |App|${OLD}`.slice(0, 63)
    const parsed = parseApplicationName(applicationName)!
    expect(parsed.appId).not.toBe(OLD) // what the DB really shows: a prefix of the UUID
    const s = session(parsed.appId, 101, null, parsed.version)
    const out = decideHolder(state('lease', { lease: lease(OLD), sessions: [{ ...s, applicationName }] }))
    expect(out.problem).toBeUndefined()
    expect(out.holder).toBe(OLD)
  })
})
