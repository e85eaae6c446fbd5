import { describe, expect, test } from '@jest/globals'
import type { NodeSession } from '../../../src/postgres/database.js'
import { appsOf, describeApps, newSessionsOf, tieApps, type SessionContainer } from '../../../src/node/sessions.js'

const LEADER = '6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5'
const STANDBY = 'a0b1c2d3-e4f5-4a6b-9c8d-7e6f5a4b3c2d'
const FOREIGN = 'deadbeef-0000-4000-8000-000000000000'

const T0 = Date.parse('2026-10-01T00:00:00Z') // weeks before the run
const T1 = Date.parse('2026-10-05T00:00:00Z')
const DB_RESTART = Date.parse('2026-11-20T00:00:00Z')
const s = (n: number) => n * 1000

let pid = 100
function session(appId: string, at: number, clientAddr: string | null): NodeSession {
  pid++
  return {
    pid,
    appId,
    version: '2.19.0',
    applicationName: `Chainlink 2.19.0 |App|${appId}`,
    clientAddr,
    clientPort: clientAddr ? 40000 + pid : null,
    backendStart: new Date(at),
    queryStart: null,
    state: 'idle',
    query: 'commit'
  }
}
/** a node process: a lock connection and two pool connections */
const proc = (appId: string, at: number, addr: string | null) => [
  session(appId, at, addr),
  session(appId, at + 50, addr),
  session(appId, at + 4000, addr)
]
const box = (id: string, startedAt: number, ips: string[] = [], running = true): SessionContainer => ({
  id,
  name: id,
  running,
  ips,
  startedAt
})

type Case = {
  name: string
  containers: SessionContainer[]
  sessions: NodeSession[]
  logs?: Record<string, string>
  dbClockAheadMs?: number
  /** app id -> container id, or undefined when it must stay untied */
  want: Record<string, string | undefined>
}

const NAT = '10.0.0.1' // the Docker host's address, as a DB server behind NAT sees every container
const POOLER = '172.30.0.9'

const cases: Case[] = [
  {
    name: 'single node running for weeks, behind NAT, boot line gone from the log',
    containers: [box('leader', T0, ['172.17.0.2'])],
    sessions: proc(LEADER, T0 + s(2), NAT),
    want: { [LEADER]: 'leader' }
  },
  {
    name: 'single node, a role without pg_read_all_stats (every address NULL)',
    containers: [box('leader', T0, ['172.17.0.2'])],
    sessions: proc(LEADER, T0 + s(2), null),
    want: { [LEADER]: 'leader' }
  },
  {
    name: 'single node through a pooler (every session from the pooler)',
    containers: [box('leader', T0, ['172.18.0.5'])],
    sessions: proc(LEADER, T0 + s(2), POOLER),
    want: { [LEADER]: 'leader' }
  },
  {
    name: 'host networking: every session from 127.0.0.1, no container address',
    containers: [box('leader', T0)],
    sessions: proc(LEADER, T0 + s(2), '127.0.0.1'),
    want: { [LEADER]: 'leader' }
  },
  {
    name: 'pair behind NAT: the standby started later, so the older process is the leader',
    containers: [box('leader', T0, ['172.17.0.2']), box('standby', T1, ['172.17.0.3'])],
    sessions: [...proc(LEADER, T0 + s(2), NAT), ...proc(STANDBY, T1 + s(1), NAT)],
    want: { [LEADER]: 'leader', [STANDBY]: 'standby' }
  },
  {
    name: 'pair whose leader was restarted after the standby started',
    containers: [box('leader', T1, ['172.17.0.2']), box('standby', T0, ['172.17.0.3'])],
    sessions: [...proc(STANDBY, T0 + s(1), null), ...proc(LEADER, T1 + s(2), null)],
    want: { [LEADER]: 'leader', [STANDBY]: 'standby' }
  },
  {
    name: 'pair after a DB restart (every session reconnected): nothing tells them apart',
    containers: [box('leader', T0), box('standby', T1)],
    sessions: [...proc(LEADER, DB_RESTART + s(1), NAT), ...proc(STANDBY, DB_RESTART + s(1), NAT)],
    want: { [LEADER]: undefined, [STANDBY]: undefined }
  },
  {
    name: 'pair after a DB restart, the leader still has its boot line in its log',
    containers: [box('leader', T0), box('standby', T1)],
    sessions: [...proc(LEADER, DB_RESTART + s(1), NAT), ...proc(STANDBY, DB_RESTART + s(1), NAT)],
    logs: { leader: `Chainlink booted in 3.01s appID=${LEADER}` },
    want: { [LEADER]: 'leader', [STANDBY]: 'standby' }
  },
  {
    name: 'another node on the DB connected before ours started: it is not ours',
    containers: [box('leader', T1)],
    sessions: [...proc(FOREIGN, T0 + s(1), NAT), ...proc(LEADER, T1 + s(2), NAT)],
    want: { [LEADER]: 'leader', [FOREIGN]: undefined }
  },
  {
    name: 'another node connected after ours started, same address: cannot tell which is ours',
    containers: [box('leader', T0)],
    sessions: [...proc(LEADER, T0 + s(2), NAT), ...proc(FOREIGN, T1, NAT)],
    want: { [LEADER]: undefined, [FOREIGN]: undefined }
  },
  {
    name: 'the same, but the DB is on the host: the address is a hint that settles it',
    containers: [box('leader', T0, ['172.17.0.2'])],
    sessions: [...proc(LEADER, T0 + s(2), '172.17.0.2'), ...proc(FOREIGN, T1, '192.168.1.50')],
    want: { [LEADER]: 'leader', [FOREIGN]: undefined }
  },
  {
    name: 'two containers started together on a bridge with the DB on the host: tied by address',
    containers: [box('a', T0, ['172.17.0.2']), box('b', T0, ['172.17.0.3'])],
    sessions: [...proc(LEADER, T0 + s(1), '172.17.0.3'), ...proc(STANDBY, T0 + s(1), '172.17.0.2')],
    want: { [LEADER]: 'b', [STANDBY]: 'a' }
  },
  {
    name: 'a stopped container runs nothing',
    containers: [box('leader', T0), box('standby', T1, [], false)],
    sessions: [...proc(LEADER, T0 + s(2), NAT)],
    want: { [LEADER]: 'leader' }
  },
  {
    name: "the DB's clock runs 5 minutes ahead: corrected by the measured offset",
    containers: [box('leader', T0), box('standby', T0 + s(120))],
    sessions: [...proc(LEADER, T0 + s(300) + s(2), NAT), ...proc(STANDBY, T0 + s(420) + s(1), NAT)],
    dbClockAheadMs: s(300),
    want: { [LEADER]: 'leader', [STANDBY]: 'standby' }
  },
  {
    name: 'the same clocks uncorrected would tie nothing to the standby-started-later rule',
    containers: [box('leader', T0), box('standby', T0 + s(120))],
    sessions: [...proc(LEADER, T0 + s(300) + s(2), NAT), ...proc(STANDBY, T0 + s(420) + s(1), NAT)],
    want: { [LEADER]: undefined, [STANDBY]: undefined }
  }
]

describe('tieApps', () => {
  // Seed 2026, run 5 of the fault campaign: the leader 'a' cut off from the DB, then restarted by
  // its policy (a new app id). A session of its earlier process lingers on the server (a cut TCP
  // connection), and a's log names both app ids. Only the one that connected after a's last
  // start runs in it; the earlier one is gone, not another node.
  test('a restarted container: its log names its earlier process too, which is gone, not a foreign node', () => {
    const A0 = 'aaaa0000-0000-4000-8000-000000000000'
    const A1 = 'aaaa1111-0000-4000-8000-000000000000'
    const B = 'bbbb0000-0000-4000-8000-000000000000'
    const restart = T1 + s(10)
    const containers = [box('a', restart, ['172.17.0.2']), box('b', T1 + s(12), ['172.17.0.3'])]
    const apps = appsOf([
      session(A0, T1, '172.17.0.2'),
      ...proc(A1, restart + 300, '172.17.0.2'),
      ...proc(B, T1 + s(12) + 200, '172.17.0.3')
    ])
    const logs: Record<string, string> = { a: `appID=${A0}\n...\nappID=${A1}`, b: `appID=${B}` }
    const ties = tieApps(containers, apps, { logNames: (id, appId) => !!logs[id]?.includes(appId) })
    const by = Object.fromEntries(ties.map((t) => [t.appId, { container: t.container, earlierOf: t.earlierOf }]))
    expect(by).toEqual({
      [A0]: { container: undefined, earlierOf: 'a' },
      [A1]: { container: 'a', earlierOf: undefined },
      [B]: { container: 'b', earlierOf: undefined }
    })
    expect(ties.find((t) => t.appId === A0)?.why).toMatch(/earlier start of 'a'/)
  })

  test.each(cases.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const apps = appsOf(c.sessions, c.dbClockAheadMs)
    const ties = tieApps(c.containers, apps, { logNames: (id, appId) => !!c.logs?.[id]?.includes(appId) })
    const got = Object.fromEntries(ties.map((t) => [t.appId, t.container]))
    expect(got).toEqual(c.want)
  })

  test('an untied app says why, and the description names what was seen without secrets', () => {
    const containers = [box('leader', T0)]
    const apps = appsOf([...proc(LEADER, T0 + s(2), NAT), ...proc(FOREIGN, T1, NAT)])
    const ties = tieApps(containers, apps)
    expect(ties.find((t) => t.appId === FOREIGN)?.why).toMatch(/connected after 'leader' started, and nothing tells/)
    const text = describeApps(apps, ties, containers)
    expect(text).toContain(`'leader' started 2026-10-01T00:00:00.000Z`)
    expect(text).toContain(`app ${FOREIGN} (2.19.0, 3 session(s) from ${NAT}, first at 2026-10-05T00:00:00.000Z)`)
  })

  test('an app that connected before every container started is named as another node', () => {
    const ties = tieApps([box('leader', T1)], appsOf(proc(FOREIGN, T0, null)))
    expect(ties[0].container).toBeUndefined()
    expect(ties[0].possible).toEqual([])
    expect(ties[0].why).toMatch(/before any of 'leader' started: another node/)
  })
})

describe('appsOf', () => {
  test('groups by app id, oldest session first, distinct addresses (NULL kept as "null")', () => {
    const apps = appsOf([session(LEADER, T0 + 10, null), session(LEADER, T0, NAT), session(STANDBY, T1, NAT)])
    expect(apps.map((a) => [a.appId, a.sessions.length, a.firstSeen, a.addrs])).toEqual([
      [LEADER, 2, T0, ['null', NAT]],
      [STANDBY, 1, T1, [NAT]]
    ])
  })
})

describe('newSessionsOf (a container just started)', () => {
  const started = T1
  const standby = box('standby', started, ['172.17.0.3'])
  const known = new Set([LEADER])
  type G = [name: string, sessions: NodeSession[], want: string | undefined, ahead?: number, tolerance?: number]
  const cases: G[] = [
    [
      'a new app behind NAT (same address as the leader)',
      [...proc(LEADER, T0, NAT), ...proc(STANDBY, T1 + 500, NAT)],
      STANDBY
    ],
    ['a new app with NULL addresses', [...proc(LEADER, T0, null), ...proc(STANDBY, T1 + 500, null)], STANDBY],
    ['only known apps: none yet', proc(LEADER, T0, NAT), undefined],
    ['a new app that connected before the container started is not its own', proc(FOREIGN, T1 - s(60), NAT), undefined],
    [
      'two new apps, one from the container address',
      [...proc(FOREIGN, T1 + 200, '192.168.1.50'), ...proc(STANDBY, T1 + 500, '172.17.0.3')],
      STANDBY
    ],
    [
      'two new apps with nothing to tell them apart: none',
      [...proc(FOREIGN, T1 + 200, NAT), ...proc(STANDBY, T1 + 500, NAT)],
      undefined
    ],
    ['the DB clock 2 minutes behind, corrected', proc(STANDBY, T1 - s(120) + 500, NAT), STANDBY, -s(120)],
    ['no measured offset: the start time is not compared', proc(STANDBY, T1 - s(120) + 500, NAT), STANDBY, 0, Infinity]
  ]
  test.each(cases.map((c) => [c[0], c] as const))('%s', (_, [, sessions, want, ahead, tolerance]) => {
    const got = newSessionsOf(standby, sessions, known, ahead, tolerance)
    expect([...new Set(got.map((x) => x.appId))]).toEqual(want ? [want] : [])
  })
})

describe('a role that cannot read other roles’ session details (NULL backend_start)', () => {
  const hidden = (appId: string): NodeSession => ({ ...session(appId, 0, null), backendStart: null })

  test('an app whose start is unknown is grouped, and described without a date', () => {
    const apps = appsOf([hidden('app-x'), hidden('app-x')])
    expect(apps.map((a) => [a.appId, a.sessions.length])).toEqual([['app-x', 2]])
    expect(describeApps(apps, [], [])).toContain('unknown (NULL backend_start)')
  })

  test('the standby gate still finds a new app by the apps known before the start', () => {
    const standby = box('standby', s(100), ['172.17.0.3'])
    const found = newSessionsOf(standby, [...proc('leader', s(1), null), hidden('new-app')], new Set(['leader']))
    expect(found.map((x) => x.appId)).toEqual(['new-app'])
  })
})

describe('the port-holder layout: two instances in one network namespace, one client address', () => {
  // Both instances join the holder: Docker lists no address for either (the address is the
  // holder's), and every session of both comes from the holder's address.
  const HOLDER_IP = '172.17.0.9'
  test('the leader and a standby started later are told apart by time, never by the shared address', () => {
    const containers = [box('leader', T0), box('standby', T1)]
    const sessions = [...proc(LEADER, T0 + s(2), HOLDER_IP), ...proc(STANDBY, T1 + s(2), HOLDER_IP)]
    const ties = tieApps(containers, appsOf(sessions))
    expect(ties.find((t) => t.appId === LEADER)?.container).toBe('leader')
    expect(ties.find((t) => t.appId === STANDBY)?.container).toBe('standby')
  })
  test("a new standby's sessions are found by app id and start, the leader's excluded although from the same address", () => {
    const sessions = [...proc(LEADER, T0 + s(2), HOLDER_IP), ...proc(STANDBY, T1 + s(2), HOLDER_IP)]
    const mine = newSessionsOf(box('standby', T1), sessions, new Set([LEADER]))
    expect(new Set(mine.map((x) => x.appId))).toEqual(new Set([STANDBY]))
  })
  test('were the holder address listed for both, it would settle nothing: two new apps stay untold', () => {
    const sessions = [...proc(LEADER, T1 + s(2), HOLDER_IP), ...proc(STANDBY, T1 + s(3), HOLDER_IP)]
    expect(newSessionsOf(box('standby', T1, [HOLDER_IP]), sessions, new Set())).toEqual([])
  })
})
