import { describe, expect, test } from '@jest/globals'
import type Docker from 'dockerode'
import type { Database, NodeSession } from '../../../src/postgres/database.js'
import { asCandidate, requireHealthUrl, requireLeader } from '../../../src/node/inspect.js'
import type { NodeContainer, NodeView } from '../../../src/node/view.js'
import { appsOf, tieApps } from '../../../src/node/sessions.js'
import { sessionContainerOf } from '../../../src/node/session-container.js'
import { bridgeLeader, hostLeader } from '../fixtures/containers.js'

const APP = '6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5'
const OTHER = 'deadbeef-0000-4000-8000-000000000000'

function session(appId: string, at: string, clientAddr: string | null): NodeSession {
  return {
    pid: 1,
    appId,
    version: '2.19.0',
    applicationName: `Chainlink 2.19.0 |App|${appId}`,
    clientAddr,
    clientPort: null,
    backendStart: new Date(at),
    queryStart: null,
    state: 'idle',
    query: 'commit'
  }
}

function member(info: Docker.ContainerInspectInfo, readyz?: number, error?: string): NodeContainer {
  return {
    info,
    name: info.Name.slice(1),
    image: info.Config.Image,
    candidate: asCandidate(info),
    healthUrl: info.HostConfig.NetworkMode === 'host' ? 'http://127.0.0.1:6688' : 'http://172.17.0.2:6688',
    health: { at: 0, readyz, failing: [], error }
  }
}

function view(containers: NodeContainer[], sessions: NodeSession[], holder = APP): NodeView {
  const apps = appsOf(sessions)
  const ties = tieApps(
    containers.map((c) => sessionContainerOf(c.info)),
    apps
  )
  for (const c of containers)
    c.session = apps.find((a) => ties.find((t) => t.appId === a.appId)?.container === c.info.Id)?.sessions[0]
  return {
    config: {} as NodeView['config'],
    mode: 'lease',
    databaseUrl: 'postgres://x',
    db: {} as Database,
    lock: { mode: 'lease', advisory: [], sessions, holder },
    dbVersion: { nodeVersionsTable: true },
    containers,
    leader: containers.find((c) => c.session?.appId === holder),
    apps,
    ties
  }
}

describe('requireHealthUrl: the gates URL proven on the leader', () => {
  type Case = [name: string, c: NodeContainer, form: string | undefined, error: RegExp | undefined]
  const cases: Case[] = [
    ['derived URL answers /readyz 200', member(bridgeLeader(), 200), undefined, undefined],
    [
      'derived container-IP URL does not answer (ListenIP 127.0.0.1, macvlan)',
      member(bridgeLeader(), undefined, 'ECONNREFUSED'),
      undefined,
      /^Input 'health-url': http:\/\/172\.17\.0\.2:6688\/readyz of the leader 'chainlink' did not answer \(ECONNREFUSED\).*nothing was changed.*the derived health URL.*http:\/\/127\.0\.0\.1:\{port\}/
    ],
    [
      'a TLS redirect is not the node answering',
      member(bridgeLeader(), 301),
      'http://{address}:6688',
      /^Input 'health-url': .* answered 301/
    ],
    [
      'a URL without placeholders on a bridge: the rollout containers answer elsewhere',
      member(bridgeLeader(), 200),
      'http://127.0.0.1:6688',
      /^Input 'health-url': http:\/\/127\.0\.0\.1:6688 names one address, but 'chainlink' is not on host networking/
    ],
    ['a URL without placeholders with host networking', member(hostLeader(), 200), 'http://127.0.0.1:6688', undefined]
  ]
  test.each(cases.map((c) => [c[0], c] as const))('%s', (_, [, c, form, error]) => {
    const v = view([c], [session(APP, '2025-06-01T00:00:00Z', '10.0.0.1')])
    const run = () => requireHealthUrl(v, c, form)
    if (error) expect(run).toThrow(error)
    else expect(run).not.toThrow()
  })
})

describe('requireLeader: refuses when the holder cannot be proven', () => {
  test('a single node behind NAT running for weeks is found', () => {
    const c = member(bridgeLeader(), 200)
    const v = view([c], [session(APP, '2025-01-01T00:00:03Z', '10.0.0.1')])
    expect(requireLeader(v).name).toBe('chainlink')
  })
  test('another process connected after the leader started, same address: refused, naming what it saw', () => {
    const c = member(bridgeLeader(), 200)
    const v = view(
      [c],
      [session(APP, '2025-01-01T00:00:03Z', '10.0.0.1'), session(OTHER, '2025-03-01T00:00:00Z', '10.0.0.1')]
    )
    expect(() => requireLeader(v)).toThrow(
      /^Cannot prove which container holds the lock: it is held by app 6f1c2d3e.*Nothing was changed\. Seen: 'chainlink' started 2025-01-01T00:00:01\.000Z; app 6f1c2d3e.* from 10\.0\.0\.1/
    )
  })
  test('the holder connected before the container started: another node leads', () => {
    const c = member(bridgeLeader(), undefined)
    const v = view([c], [session(APP, '2024-12-01T00:00:00Z', null)])
    expect(() => requireLeader(v)).toThrow(/none of the containers 'chainlink': another node on this database leads/)
  })
})
