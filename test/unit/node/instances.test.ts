// Every instance of a node spread over hosts, decided on plain values (src/node/instances.ts):
// where each node process runs (this host or another) and its role (leader, waiting, other).
import { describe, expect, test } from '@jest/globals'
import type { NodeSession } from '../../../src/postgres/database.js'
import { appsOf } from '../../../src/node/sessions.js'
import { classifyInstances, describeInstance, type Instance } from '../../../src/node/instances.js'
import { pollsLock } from '../../../src/node/lock.js'

const LOCAL = '6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5'
const REMOTE = 'deadbeef-0000-4000-8000-000000000000'
const REMOTE2 = 'a0b1c2d3-e4f5-4a6b-9c8d-7e6f5a4b3c2d'

let pid = 100
function session(appId: string, clientAddr: string | null, query: string, version = '2.19.0'): NodeSession {
  pid++
  return {
    pid,
    appId,
    version,
    applicationName: `Chainlink ${version} |App|${appId}`,
    clientAddr,
    clientPort: clientAddr ? 40000 + pid : null,
    backendStart: new Date(0),
    queryStart: null,
    state: 'idle',
    query
  }
}
const LEASE = 'INSERT INTO lease_lock (client_id, expires_at) VALUES ($1, NOW()+$2::interval) ON CONFLICT ...'

type Row = Pick<Instance, 'appId' | 'host' | 'role'> & { container?: string }
const cases: {
  name: string
  sessions: NodeSession[]
  holder?: string
  local?: [string, string][]
  addrs?: string[]
  hostNetwork?: boolean
  want: Row[]
}[] = [
  {
    name: 'local leader tied to its container, remote standby polling the lease',
    sessions: [
      session(LOCAL, '172.17.0.2', LEASE),
      session(LOCAL, '172.17.0.2', 'INSERT INTO heads ...'),
      session(REMOTE, '10.0.2.7', 'commit')
    ],
    holder: LOCAL,
    local: [[LOCAL, 'chainlink']],
    addrs: ['172.17.0.2'],
    want: [
      { appId: LOCAL, host: 'local', role: 'leader', container: 'chainlink' },
      { appId: REMOTE, host: 'remote', role: 'waiting' }
    ]
  },
  {
    name: 'remote leader; the local standby waits (its lock session between polls reads COMMIT)',
    sessions: [session(REMOTE, '10.0.2.7', LEASE), session(LOCAL, '172.17.0.2', 'COMMIT;')],
    holder: REMOTE,
    local: [[LOCAL, 'chainlink']],
    addrs: ['172.17.0.2'],
    want: [
      { appId: REMOTE, host: 'remote', role: 'leader' },
      { appId: LOCAL, host: 'local', role: 'waiting', container: 'chainlink' }
    ]
  },
  {
    name: 'a local process not tied to a container is local by its address',
    sessions: [session(REMOTE, '10.0.2.7', LEASE), session(LOCAL, '172.17.0.9', 'commit')],
    holder: REMOTE,
    addrs: ['172.17.0.9'],
    want: [
      { appId: REMOTE, host: 'remote', role: 'leader' },
      { appId: LOCAL, host: 'local', role: 'waiting' }
    ]
  },
  {
    name: 'host networking: loopback sessions are this host',
    sessions: [session(LOCAL, '127.0.0.1', LEASE), session(REMOTE, '10.0.2.7', 'commit')],
    holder: LOCAL,
    hostNetwork: true,
    want: [
      { appId: LOCAL, host: 'local', role: 'leader' },
      { appId: REMOTE, host: 'remote', role: 'waiting' }
    ]
  },
  {
    name: 'without a host-network container, loopback is not ours (a process on the DB host)',
    sessions: [session(REMOTE, '127.0.0.1', LEASE)],
    holder: REMOTE,
    want: [{ appId: REMOTE, host: 'remote', role: 'leader' }]
  },
  {
    name: 'a process that does not poll the lock (a node db command) is other',
    sessions: [
      session(LOCAL, '172.17.0.2', LEASE),
      session(REMOTE, '10.0.2.7', 'SELECT version_id FROM goose_db_version')
    ],
    holder: LOCAL,
    local: [[LOCAL, 'chainlink']],
    addrs: ['172.17.0.2'],
    want: [
      { appId: LOCAL, host: 'local', role: 'leader', container: 'chainlink' },
      { appId: REMOTE, host: 'remote', role: 'other' }
    ]
  },
  {
    name: 'nobody holds the lock: every poller waits',
    sessions: [session(REMOTE, '10.0.2.7', LEASE), session(REMOTE2, '10.0.3.7', 'commit')],
    want: [
      { appId: REMOTE, host: 'remote', role: 'waiting' },
      { appId: REMOTE2, host: 'remote', role: 'waiting' }
    ]
  },
  {
    name: 'a truncated application_name still matches the holder (sameApp)',
    sessions: [session(REMOTE.slice(0, 20), '10.0.2.7', LEASE)],
    holder: REMOTE,
    want: [{ appId: REMOTE.slice(0, 20), host: 'remote', role: 'leader' }]
  },
  {
    name: 'advisory lock mode: the try of the advisory lock is a poll',
    sessions: [session(LOCAL, '172.17.0.2', 'x'), session(REMOTE, '10.0.2.7', 'SELECT pg_try_advisory_lock($1)')],
    holder: LOCAL,
    local: [[LOCAL, 'chainlink']],
    want: [
      { appId: LOCAL, host: 'local', role: 'leader', container: 'chainlink' },
      { appId: REMOTE, host: 'remote', role: 'waiting' }
    ]
  }
]

describe('classifyInstances', () => {
  test.each(cases)('$name', (c) => {
    const got = classifyInstances({
      apps: appsOf(c.sessions),
      holder: c.holder,
      localContainers: new Map(c.local ?? []),
      localAddrs: new Set(c.addrs ?? []),
      hostNetwork: !!c.hostNetwork
    })
    expect(
      got.map((x) => ({
        appId: x.appId,
        host: x.host,
        role: x.role,
        ...(x.container ? { container: x.container } : {})
      }))
    ).toEqual(c.want)
  })
})

describe('pollsLock', () => {
  test.each([
    [LEASE, true],
    ['commit', true],
    [' COMMIT; ', true],
    ['SELECT pg_try_advisory_lock($1)', true],
    ['INSERT INTO sim_heartbeats (app_id, version) VALUES ($1, $2)', false],
    ['', false]
  ])('%s -> %s', (query, want) => expect(pollsLock({ query })).toBe(want))
})

test('describeInstance names the role, version and where', () => {
  expect(
    describeInstance({ appId: REMOTE, version: '2.19.0', host: 'remote', addrs: ['10.0.2.7'], role: 'waiting' })
  ).toBe(`app ${REMOTE} (Chainlink 2.19.0), waiting standby, on another host (from 10.0.2.7)`)
  expect(
    describeInstance({
      appId: LOCAL,
      version: '',
      host: 'local',
      container: 'chainlink',
      addrs: ['null'],
      role: 'leader'
    })
  ).toBe(`app ${LOCAL} (Chainlink ?), leader, on this host ('chainlink')`)
})
