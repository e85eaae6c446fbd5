import { describe, expect, test } from '@jest/globals'
import { extraHost, hostsEntry, nodeNames } from '../../../src/node/connect.js'
import { sessionContainerOf } from '../../../src/node/session-container.js'
import { bridgeLeader, hostLeader } from '../fixtures/containers.js'

describe('extraHost: the --add-host entries the container resolves first', () => {
  test.each<[string[] | null, string, string | undefined]>([
    [['host.docker.internal:host-gateway'], 'host.docker.internal', 'host-gateway'],
    [['db:10.0.0.7', 'host.docker.internal=host-gateway'], 'host.docker.internal', 'host-gateway'],
    [['db:10.0.0.7'], 'DB', '10.0.0.7'],
    [['db6:[fd00::7]'], 'db6', 'fd00::7'],
    [['db:10.0.0.7'], 'postgres', undefined],
    [null, 'postgres', undefined]
  ])('%j, %s', (hosts, host, want) => expect(extraHost(hosts, host)).toBe(want))
})

describe('nodeNames', () => {
  test('container, then the pair standby', () => {
    expect(nodeNames({ container: 'chainlink' })).toEqual(['chainlink'])
    expect(nodeNames({ container: 'a', standby: 'b' })).toEqual(['a', 'b'])
  })
})

describe('sessionContainerOf', () => {
  test('start time and addresses from docker inspect', () => {
    expect(sessionContainerOf(bridgeLeader())).toMatchObject({
      name: 'chainlink',
      running: true,
      ips: ['172.17.0.2'],
      startedAt: Date.parse('2025-01-01T00:00:01Z')
    })
    expect(sessionContainerOf(hostLeader()).ips).toEqual([])
  })
})

describe('hostsEntry: the address a container /etc/hosts gives a name', () => {
  const hosts = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    '172.17.0.1\thost.docker.internal',
    '# 10.0.0.9 db',
    '172.17.0.2\t3f9c1a2b4d5e'
  ].join('\n')
  test.each<[string, string | undefined]>([
    ['host.docker.internal', '172.17.0.1'],
    ['HOST.docker.internal', '172.17.0.1'],
    ['db', undefined],
    ['3f9c1a2b4d5e', '172.17.0.2']
  ])('%s', (name, want) => expect(hostsEntry(hosts, name)).toBe(want))
})
