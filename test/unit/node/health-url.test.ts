import { describe, expect, test } from '@jest/globals'
import type Docker from 'dockerode'
import { healthBase, publishedHttpPort } from '../../../src/node/health-url.js'
import { bridgeLeader, composeLeader, hostLeader } from '../fixtures/containers.js'

/** the temporary standby of the docs layout: the leader's config on a remapped host port */
function remapped(): Docker.ContainerInspectInfo {
  const c = bridgeLeader()
  c.Name = '/chainlink-rollout-next'
  c.HostConfig.PortBindings = { '6688/tcp': [{ HostIp: '127.0.0.1', HostPort: '41234' }] }
  c.NetworkSettings.Networks.bridge.IPAddress = '172.17.0.3'
  return c
}

describe('healthBase: the form of input health-url filled in per container', () => {
  type Case = [name: string, info: Docker.ContainerInspectInfo, form: string | undefined, want: string | undefined]
  const cases: Case[] = [
    ['derived, docs layout: the container IP', bridgeLeader(), undefined, 'http://172.17.0.2:6688'],
    ['derived, host networking: 127.0.0.1', hostLeader(), undefined, 'http://127.0.0.1:6688'],
    [
      '{port}, docs layout: the published host port',
      bridgeLeader(),
      'http://127.0.0.1:{port}',
      'http://127.0.0.1:6688'
    ],
    [
      '{port}, the temporary standby on a remapped port',
      remapped(),
      'http://127.0.0.1:{port}',
      'http://127.0.0.1:41234'
    ],
    ['{address}, the temporary standby', remapped(), 'http://{address}:6688', 'http://172.17.0.3:6688'],
    [
      '{name}, a runner on the node network',
      composeLeader(),
      'http://{name}:6688/',
      `http://${composeLeader().Name.slice(1)}:6688`
    ],
    ['{address} with host networking', hostLeader(), 'https://{address}:{port}', 'https://127.0.0.1:6688'],
    [
      'a URL without placeholders is used as written',
      remapped(),
      'https://node.example.com',
      'https://node.example.com'
    ]
  ]
  test.each(cases.map((c) => [c[0], c] as const))('%s', (_, [, info, form, want]) =>
    expect(healthBase(info, 6688, form)).toBe(want)
  )

  test('a container with no address gives no URL (never a half-filled one)', () => {
    const c = bridgeLeader()
    c.NetworkSettings.Networks.bridge.IPAddress = ''
    expect(healthBase(c, 6688, 'http://{address}:6688')).toBeUndefined()
    expect(healthBase(c, 6688)).toBeUndefined()
  })

  test('the live port (NetworkSettings.Ports) wins over a binding asking for a random port', () => {
    const c = bridgeLeader()
    c.HostConfig.PortBindings = { '6688/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] }
    ;(c.NetworkSettings as unknown as { Ports: unknown }).Ports = {
      '6688/tcp': [{ HostIp: '127.0.0.1', HostPort: '49153' }]
    }
    expect(publishedHttpPort(c, 6688)).toBe(49153)
    expect(publishedHttpPort(hostLeader(), 6688)).toBeUndefined()
  })
})
