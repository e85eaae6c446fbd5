// Which node processes on the DB are proven gone (src/node/session-container.ts, deadApps): the
// sessions a network cut left on the server for a process of the node's own containers, which a
// rollback or a repair may end (docs/reliability.md, seed 2026 run 5), and everything that may be
// alive and must never be ended.
import { describe, expect, test } from '@jest/globals'
import type { NodeSession } from '../../../src/postgres/database.js'
import { appsOf } from '../../../src/node/sessions.js'
import { deadApps, nodeContainerOf, type NodeContainer } from '../../../src/node/session-container.js'
import type { ContainerInfo } from '../../../src/docker/client.js'

const OLD = '6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5'
const NEW = 'a0b1c2d3-e4f5-4a6b-9c8d-7e6f5a4b3c2d'
const REMOTE = 'deadbeef-0000-4000-8000-000000000000'

const T0 = Date.parse('2026-10-01T00:00:00Z')
const s = (n: number) => n * 1000

let pid = 100
function session(appId: string, at: number, clientAddr: string | null): NodeSession {
  pid++
  return {
    pid,
    appId,
    version: '2.18.0',
    applicationName: `Chainlink 2.18.0 |App|${appId}`,
    clientAddr,
    clientPort: clientAddr ? 40000 + pid : null,
    backendStart: new Date(at),
    queryStart: null,
    state: 'idle',
    query: 'commit'
  }
}
const box = (
  name: string,
  o: { startedAt: number; running: boolean; ips?: string[]; finishedAt?: number }
): NodeContainer => ({
  id: `id-${name}`,
  name,
  running: o.running,
  ips: o.ips ?? [],
  startedAt: o.startedAt,
  finishedAt: o.finishedAt ?? 0
})

type Case = {
  name: string
  sessions: NodeSession[]
  node: NodeContainer[]
  /** addresses of running containers on this host */
  runningIps?: string[]
  /** container name -> app ids its log names */
  logs?: Record<string, string[]>
  /** app id -> the container it is proven to have run in and be gone from; absent: may be alive */
  want: Record<string, string>
}

const cases: Case[] = [
  {
    name: 'the node stopped, its log names the app: gone (the campaign run 5, at repair)',
    sessions: [session(OLD, T0 + s(2), '172.17.0.3')],
    node: [box('node', { startedAt: T0, running: false, finishedAt: T0 + s(60) })],
    logs: { node: [OLD] },
    want: { [OLD]: 'node' }
  },
  {
    name: 'the node restarted after the app connected, its log names it: an earlier start, gone',
    sessions: [session(OLD, T0 + s(2), '172.17.0.3'), session(NEW, T0 + s(70), '172.17.0.3')],
    node: [box('node', { startedAt: T0 + s(65), running: true, ips: ['172.17.0.3'] })],
    runningIps: ['172.17.0.3'],
    logs: { node: [OLD, NEW] },
    want: { [OLD]: 'node' }
  },
  {
    name: "the running node's current process (its log names it, connected after its start): alive",
    sessions: [session(NEW, T0 + s(70), '172.17.0.3')],
    node: [box('node', { startedAt: T0 + s(65), running: true, ips: ['172.17.0.3'] })],
    runningIps: ['172.17.0.3'],
    logs: { node: [NEW] },
    want: {}
  },
  {
    name: 'named by two logs, one of them running it now: alive',
    sessions: [session(OLD, T0 + s(2), '172.17.0.3')],
    node: [
      box('node', { startedAt: T0, running: false, finishedAt: T0 + s(60) }),
      box('node-next', { startedAt: T0, running: true, ips: ['172.17.0.4'] })
    ],
    runningIps: ['172.17.0.4'],
    logs: { node: [OLD], 'node-next': [OLD] },
    want: {}
  },
  {
    name: 'no log line (rotated away), its address the stopped node had, connected while it ran: gone',
    sessions: [session(OLD, T0 + s(2), '172.17.0.3'), session(OLD, T0 + s(3), '172.17.0.3')],
    node: [box('node', { startedAt: T0, running: false, ips: ['172.17.0.3'], finishedAt: T0 + s(60) })],
    want: { [OLD]: 'node' }
  },
  {
    name: 'its address, but a running container has that address now: may be alive',
    sessions: [session(OLD, T0 + s(2), '172.17.0.3')],
    node: [box('node', { startedAt: T0, running: false, ips: ['172.17.0.3'], finishedAt: T0 + s(60) })],
    runningIps: ['172.17.0.3'],
    want: {}
  },
  {
    name: 'its address, but it connected after the node exited: someone else, may be alive',
    sessions: [session(OLD, T0 + s(90), '172.17.0.3')],
    node: [box('node', { startedAt: T0, running: false, ips: ['172.17.0.3'], finishedAt: T0 + s(60) })],
    want: {}
  },
  {
    name: 'its address, but it connected before the node started: another process, may be alive',
    sessions: [session(OLD, T0 - s(30), '172.17.0.3')],
    node: [box('node', { startedAt: T0, running: false, ips: ['172.17.0.3'], finishedAt: T0 + s(60) })],
    want: {}
  },
  {
    name: 'the address of a running node that restarted, no log line: not proven (the address is in use)',
    sessions: [session(OLD, T0 + s(2), '172.17.0.3')],
    node: [box('node', { startedAt: T0 + s(65), running: true, ips: ['172.17.0.3'] })],
    runningIps: ['172.17.0.3'],
    want: {}
  },
  {
    name: 'another host (an address no container of the node had): never ended',
    sessions: [session(REMOTE, T0 + s(2), '10.0.0.8')],
    node: [box('node', { startedAt: T0, running: false, ips: ['172.17.0.3'], finishedAt: T0 + s(60) })],
    want: {}
  },
  {
    name: 'an address the role cannot read (NULL), no log line: not proven',
    sessions: [session(OLD, T0 + s(2), null)],
    node: [box('node', { startedAt: T0, running: false, ips: ['172.17.0.3'], finishedAt: T0 + s(60) })],
    want: {}
  },
  {
    name: 'sessions from two addresses, only one the node had: not proven',
    sessions: [session(OLD, T0 + s(2), '172.17.0.3'), session(OLD, T0 + s(3), '172.17.0.9')],
    node: [box('node', { startedAt: T0, running: false, ips: ['172.17.0.3'], finishedAt: T0 + s(60) })],
    want: {}
  },
  {
    name: 'a pair: the stopped leader gone by its log, the running secondary alive, a remote node untouched',
    sessions: [
      session(OLD, T0 + s(2), '172.17.0.3'),
      session(NEW, T0 + s(3), '172.17.0.4'),
      session(REMOTE, T0 + s(4), '10.0.0.8')
    ],
    node: [
      box('a', { startedAt: T0, running: false, finishedAt: T0 + s(60) }),
      box('b', { startedAt: T0, running: true, ips: ['172.17.0.4'] })
    ],
    runningIps: ['172.17.0.4'],
    logs: { a: [OLD], b: [NEW] },
    want: { [OLD]: 'a' }
  }
]

describe('deadApps: the node processes proven gone', () => {
  test.each(cases)('$name', (c) => {
    const logNames = (id: string, appId: string) =>
      (c.logs?.[c.node.find((n) => n.id === id)?.name ?? ''] ?? []).includes(appId)
    const got = deadApps(appsOf(c.sessions), c.node, new Set(c.runningIps ?? []), logNames)
    expect(Object.fromEntries(got.map((d) => [d.appId, d.container]))).toEqual(c.want)
    // every session of a gone app is named, with the evidence
    for (const d of got) {
      expect(d.pids.sort()).toEqual(
        c.sessions
          .filter((x) => x.appId === d.appId)
          .map((x) => x.pid)
          .sort()
      )
      expect(d.why).toMatch(d.container)
    }
  })
})

describe('nodeContainerOf', () => {
  const info = (running: boolean, ip: string, finishedAt: string) =>
    ({
      Id: 'abc',
      Name: '/node',
      State: { Running: running, StartedAt: new Date(T0).toISOString(), FinishedAt: finishedAt },
      NetworkSettings: { Networks: { bridge: { IPAddress: ip } } }
    }) as unknown as ContainerInfo

  test('a stopped container: the addresses it had (as recorded) and when it exited', () => {
    const c = nodeContainerOf(info(false, '', new Date(T0 + s(60)).toISOString()), ['172.17.0.3'])
    expect(c).toMatchObject({ running: false, ips: ['172.17.0.3'], startedAt: T0, finishedAt: T0 + s(60) })
  })

  test("a running one has not finished (Docker's zero time reads as none)", () => {
    const c = nodeContainerOf(info(true, '172.17.0.3', '0001-01-01T00:00:00Z'), ['172.17.0.3'])
    expect(c).toMatchObject({ running: true, ips: ['172.17.0.3'], finishedAt: 0 })
  })
})
