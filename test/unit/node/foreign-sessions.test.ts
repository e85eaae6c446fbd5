// Another node on the node's DB, decided on plain values: which app is another node's, where it
// runs when this host's containers prove it, and the refusal an operator reads.
import { describe, expect, test } from '@jest/globals'
import type { NodeSession } from '../../../src/postgres/database.js'
import { appsOf, type SessionContainer } from '../../../src/node/sessions.js'
import { describeForeign, foreignNodes, foreignRefusal, type ForeignNode } from '../../../src/node/foreign-sessions.js'

const LEADER = '6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5'
const SECONDARY = 'a0b1c2d3-e4f5-4a6b-9c8d-7e6f5a4b3c2d'
const REMOTE = 'deadbeef-0000-4000-8000-000000000000'

const T0 = Date.parse('2026-10-01T00:00:00Z')
const s = (n: number) => n * 1000

let pid = 100
function session(appId: string, at: number, clientAddr: string | null, version = '2.18.0'): NodeSession {
  pid++
  return {
    pid,
    appId,
    version,
    applicationName: `Chainlink ${version} |App|${appId}`,
    clientAddr,
    clientPort: clientAddr ? 40000 + pid : null,
    backendStart: new Date(at),
    queryStart: null,
    state: 'idle',
    query: 'commit'
  }
}
const box = (name: string, startedAt: number, ips: string[] = [], running = true): SessionContainer => ({
  id: `id-${name}`,
  name,
  running,
  ips,
  startedAt
})

type Case = {
  name: string
  sessions: NodeSession[]
  /** app ids the run's own containers were proven to run */
  ours: string[]
  /** the other running containers of this host */
  local: SessionContainer[]
  logs?: Record<string, string>
  /** app id -> the container it is tied to ('' when none is proven) */
  want: Record<string, string>
}

const cases: Case[] = [
  {
    name: 'only the named containers: nothing foreign',
    sessions: [session(LEADER, T0 + s(1), '172.17.0.2'), session(LEADER, T0 + s(2), '172.17.0.2')],
    ours: [LEADER],
    local: [box('other-service', T0, ['172.17.0.9'])],
    want: {}
  },
  {
    name: "the docs' secondary, not named, on this host's bridge: its container by address",
    sessions: [session(LEADER, T0 + s(1), '172.17.0.2'), session(SECONDARY, T0 + s(60), '172.17.0.3')],
    ours: [LEADER],
    local: [box('chainlink-secondary', T0 + s(59), ['172.17.0.3']), box('web', T0, ['172.17.0.4'])],
    want: { [SECONDARY]: 'chainlink-secondary' }
  },
  {
    name: 'a node on another host (the DB sees its host address): no container named',
    sessions: [session(LEADER, T0 + s(1), '172.17.0.2'), session(REMOTE, T0 + s(5), '10.1.2.3')],
    ours: [LEADER],
    local: [box('web', T0, ['172.17.0.4'])],
    want: { [REMOTE]: '' }
  },
  {
    name: 'a process on this host (127.0.0.1), not a container: no container named',
    sessions: [session(LEADER, T0 + s(1), '172.17.0.2'), session(REMOTE, T0 + s(5), '127.0.0.1')],
    ours: [LEADER],
    local: [box('host-net', T0, [])],
    want: { [REMOTE]: '' }
  },
  {
    name: 'the address of a container that started after the session: not that container',
    sessions: [session(LEADER, T0 + s(1), '172.17.0.2'), session(REMOTE, T0 + s(5), '172.17.0.3')],
    ours: [LEADER],
    local: [box('reused-address', T0 + s(100), ['172.17.0.3'])],
    want: { [REMOTE]: '' }
  },
  {
    name: 'behind NAT every session has one address: the log naming the app id ties it',
    sessions: [session(LEADER, T0 + s(1), '10.0.0.1'), session(SECONDARY, T0 + s(60), '10.0.0.1')],
    ours: [LEADER],
    local: [box('chainlink-b', T0 + s(59), ['172.17.0.3']), box('chainlink-c', T0 + s(59), ['172.17.0.5'])],
    logs: { 'id-chainlink-b': `Chainlink booted in 1.2s appID=${SECONDARY}` },
    want: { [SECONDARY]: 'chainlink-b' }
  },
  {
    name: 'two local containers with the address (a shared network namespace): neither named',
    sessions: [session(LEADER, T0 + s(1), '172.17.0.2'), session(SECONDARY, T0 + s(60), '172.17.0.3')],
    ours: [LEADER],
    local: [box('a', T0, ['172.17.0.3']), box('b', T0, ['172.17.0.3'])],
    want: { [SECONDARY]: '' }
  },
  {
    name: 'an app id truncated by the node (63 characters of application_name): still ours',
    sessions: [session(LEADER.slice(0, 20), T0 + s(1), '172.17.0.2')],
    ours: [LEADER],
    local: [],
    want: {}
  },
  {
    name: 'a stopped container is no evidence',
    sessions: [session(LEADER, T0 + s(1), '172.17.0.2'), session(SECONDARY, T0 + s(60), '172.17.0.3')],
    ours: [LEADER],
    local: [box('stopped', T0, ['172.17.0.3'], false)],
    want: { [SECONDARY]: '' }
  }
]

describe('foreignNodes: the apps none of the run’s containers runs, and where each runs', () => {
  test.each(cases)('$name', (c) => {
    const got = foreignNodes(appsOf(c.sessions), c.ours, c.local, (id, app) => !!c.logs?.[id]?.includes(app))
    expect(Object.fromEntries(got.map((f) => [f.appId, f.container ?? '']))).toEqual(c.want)
    for (const f of got) expect(f.version).toBe('2.18.0')
  })
})

const secondary: ForeignNode = { appId: SECONDARY, version: '2.18.0', addrs: ['172.17.0.3'], container: 'cl-b' }
const remote: ForeignNode = { appId: REMOTE, version: '2.19.0', addrs: ['10.1.2.3'] }
const viaSocket: ForeignNode = { appId: REMOTE, version: '2.19.0', addrs: ['null'] }

describe('describeForeign: the container when local, else address, app id and version', () => {
  test.each([
    ['local', secondary, `container 'cl-b' on this host (app ${SECONDARY}, Chainlink 2.18.0)`],
    [
      'remote',
      remote,
      `a node no container on this host is proven to run (app ${REMOTE}, Chainlink 2.19.0, connected from 10.1.2.3)`
    ],
    [
      'address unreadable',
      viaSocket,
      `a node no container on this host is proven to run (app ${REMOTE}, Chainlink 2.19.0, connected from a local socket (or an address this DB role cannot read))`
    ]
  ])('%s', (_, f, want) => expect(describeForeign(f)).toBe(want))
})

describe('foreignRefusal: refused before anything changes, saying what to do', () => {
  test.each<[string, ForeignNode[], string[], boolean, RegExp[] | undefined]>([
    ['no other node: go on', [], ['cl'], false, undefined],
    [
      'a local secondary of a single node: name it as standby, or stop it',
      [secondary],
      ['cl'],
      false,
      [
        /besides 'cl': container 'cl-b'/,
        /nothing was changed/,
        /nothing was changed\. Name 'cl-b' as input 'standby'.*or stop it, then run again$/
      ]
    ],
    [
      'a third local node beside a named pair: stop it',
      [secondary],
      ['cl-a', 'cl-c'],
      true,
      [/besides 'cl-a' and 'cl-c'/, /Stop 'cl-b' \(a pair has one standby\), then run again$/]
    ],
    [
      'a node elsewhere: stop it',
      [remote],
      ['cl'],
      false,
      [
        /connected from 10\.1\.2\.3/,
        /Stop that node \(it runs where this action cannot see or stop it\), then run again$/
      ]
    ],
    [
      'both kinds: both named, both steps said',
      [secondary, remote],
      ['cl'],
      false,
      [/container 'cl-b'.*; a node no container/, /as input 'standby'.*; stop that node/]
    ]
  ])('%s', (_, foreign, named, standby, want) => {
    const msg = foreignRefusal(foreign, named, standby)
    if (!want) return expect(msg).toBeUndefined()
    for (const re of want) expect(msg).toMatch(re)
    // it takes the lock on its own image: the reason is said
    expect(msg).toMatch(/would take the lock as soon as the leader releases it/)
  })
})
