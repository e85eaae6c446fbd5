import { describe, expect, it, test } from '@jest/globals'
import type Docker from 'dockerode'
import { cloneSpec } from '../../../src/handoff/container-spec.js'
import {
  holderProblem,
  holderSpec,
  joinedView,
  layoutChange,
  layoutOf,
  ownView,
  waitCommand,
  type Layout,
  type LayoutChange
} from '../../../src/handoff/port-holder.js'
import { finishOf } from '../../../src/rollout/plan.js'
import { bridgeLeader, composeLeader, hostLeader, oldImageConfig, SHORT_ID } from '../fixtures/containers.js'

const HOLDER_ID = 'f'.repeat(64)
const WAIT = ['/usr/bin/sleep', 'infinity']

/** The holder as Docker shows it once created from holderSpec (labels, ports, networks). */
function holderOf(leader: Docker.ContainerInspectInfo): Docker.ContainerInspectInfo {
  const spec = holderSpec(leader, {
    name: 'chainlink-port-holder',
    image: 'img',
    wait: WAIT,
    nodeName: 'chainlink',
    labels: {}
  })
  const h = bridgeLeader()
  h.Id = HOLDER_ID
  h.Name = '/chainlink-port-holder'
  h.Config = { ...h.Config, Hostname: HOLDER_ID.slice(0, 12), Labels: spec.Labels!, ExposedPorts: spec.ExposedPorts! }
  h.HostConfig = { ...h.HostConfig, ...spec.HostConfig } as Docker.ContainerInspectInfo['HostConfig']
  const nets = structuredClone(leader.NetworkSettings.Networks)
  for (const [net, ep] of Object.entries(spec.NetworkingConfig?.EndpointsConfig ?? {}))
    nets[net] = { ...nets[net], Aliases: [...(ep.Aliases ?? []), HOLDER_ID.slice(0, 12)] }
  h.NetworkSettings = { ...leader.NetworkSettings, Networks: nets }
  return h
}

describe('holderSpec: the holder takes the network, the ports and nothing else', () => {
  it('publishes the leader ports, keeps DNS and extra hosts, runs only the wait, restarts unless stopped', () => {
    const leader = composeLeader()
    leader.HostConfig.Dns = ['192.0.2.53']
    leader.HostConfig.ExtraHosts = ['host.docker.internal:host-gateway']
    leader.HostConfig.Sysctls = { 'net.ipv4.ip_unprivileged_port_start': '0', 'kernel.shm_rmid_forced': '1' }
    const spec = holderSpec(leader, {
      name: 'ops-chainlink-1-port-holder',
      image: 'sha256:abc',
      wait: WAIT,
      nodeName: 'ops-chainlink-1',
      labels: { run: 'r1' }
    })
    expect(spec.Image).toBe('sha256:abc')
    expect(spec.Entrypoint).toEqual(WAIT)
    expect(spec.Cmd).toEqual([])
    expect(spec.Healthcheck).toEqual({ Test: ['NONE'] })
    expect(spec.StopSignal).toBe('SIGKILL')
    expect(spec.HostConfig?.PortBindings).toEqual(leader.HostConfig.PortBindings)
    expect(spec.HostConfig?.Dns).toEqual(['192.0.2.53'])
    expect(spec.HostConfig?.ExtraHosts).toEqual(['host.docker.internal:host-gateway'])
    expect(spec.HostConfig?.Sysctls).toEqual({ 'net.ipv4.ip_unprivileged_port_start': '0' })
    expect(spec.HostConfig?.RestartPolicy).toEqual({ Name: 'unless-stopped' })
    expect(spec.HostConfig?.NetworkMode).toBe('ops_backend')
    // no volumes, env or compose labels: the holder is not a node
    expect(spec.HostConfig?.Binds).toBeUndefined()
    expect(spec.Env).toBeUndefined()
    expect(Object.keys(spec.Labels!).some((k) => k.startsWith('com.docker.compose.'))).toBe(false)
    expect(spec.Labels!['io.chainlink-rollout.port-holder-of']).toBe('ops-chainlink-1')
    // the network aliases stay reachable, the node's own name included; Docker's id alias is not copied
    expect(spec.NetworkingConfig?.EndpointsConfig?.ops_backend.Aliases?.sort()).toEqual(
      ['chainlink', 'node.internal', 'ops-chainlink-1'].sort()
    )
  })

  it('an operator-set hostname moves to the holder (the joined node cannot set one); an automatic one does not', () => {
    expect(holderSpec(hostLeader(), { name: 'h', image: 'i', wait: WAIT, nodeName: 'n', labels: {} }).Hostname).toBe(
      'node-host-01'
    )
    expect(
      holderSpec(bridgeLeader(), { name: 'h', image: 'i', wait: WAIT, nodeName: 'n', labels: {} }).Hostname
    ).toBeUndefined()
  })
})

describe('joinedView + cloneSpec: the node joined to the holder keeps its own config', () => {
  it('joins the holder; nothing Docker refuses on a joined container; name, volumes, env, labels, restart policy kept', () => {
    const leader = composeLeader()
    leader.HostConfig.Dns = ['192.0.2.53']
    leader.HostConfig.Binds = ['/srv/cl:/chainlink']
    leader.Config.ExposedPorts = { '6688/tcp': {}, '6689/tcp': {} }
    const spec = cloneSpec(joinedView(leader, HOLDER_ID), {
      name: 'ops-chainlink-1',
      image: 'new',
      oldImageConfig: oldImageConfig()
    })
    expect(spec.HostConfig?.NetworkMode).toBe(`container:${HOLDER_ID}`)
    for (const f of ['PortBindings', 'Dns', 'ExtraHosts', 'PublishAllPorts', 'Links'] as const)
      expect(spec.HostConfig?.[f]).toBeUndefined()
    expect(spec.ExposedPorts).toBeUndefined()
    expect(spec.Hostname).toBeUndefined()
    expect(spec.NetworkingConfig).toBeUndefined()
    expect(spec.name).toBe('ops-chainlink-1')
    expect(spec.HostConfig?.Binds).toEqual(['/srv/cl:/chainlink'])
    expect(spec.HostConfig?.RestartPolicy).toEqual(leader.HostConfig.RestartPolicy)
    expect(spec.Labels?.['com.docker.compose.service']).toBe('chainlink')
    expect(spec.Env).toEqual(cloneSpec(leader, { name: 'x', image: 'new', oldImageConfig: oldImageConfig() }).Env)
  })

  it('a standby cloned from a joined leader joins the same holder, with no hostname (Docker refuses one)', () => {
    const joined = joinedView(bridgeLeader(), HOLDER_ID)
    joined.Config.Hostname = HOLDER_ID.slice(0, 12) // what Docker reports for a joined container
    const spec = cloneSpec(joined, { name: 'chainlink-rollout-next', image: 'new' })
    expect(spec.HostConfig?.NetworkMode).toBe(`container:${HOLDER_ID}`)
    expect(spec.Hostname).toBeUndefined()
  })
})

describe('ownView: converting back takes the holder network and ports', () => {
  it('the node gets the ports, DNS, networks and aliases back, without the holder or its own name as alias', () => {
    const leader = composeLeader()
    leader.HostConfig.ExtraHosts = ['a:192.0.2.1']
    const holder = holderOf(leader)
    const joined = { ...joinedView(leader, HOLDER_ID), Id: 'e'.repeat(64) }
    const spec = cloneSpec(ownView(joined, holder), {
      name: 'ops-chainlink-1',
      image: 'new',
      oldImageConfig: oldImageConfig()
    })
    expect(spec.HostConfig?.NetworkMode).toBe('ops_backend')
    expect(spec.HostConfig?.PortBindings).toEqual(leader.HostConfig.PortBindings)
    expect(spec.HostConfig?.ExtraHosts).toEqual(['a:192.0.2.1'])
    expect(spec.NetworkingConfig?.EndpointsConfig?.ops_backend.Aliases?.sort()).toEqual(['chainlink', 'node.internal'])
    expect(spec.Hostname).toBeUndefined()
  })
})

describe('layoutOf and layoutChange', () => {
  const holder = holderOf(bridgeLeader())
  const joined = joinedView(bridgeLeader(), HOLDER_ID)
  const sidecar = { ...hostLeader(), Config: { ...hostLeader().Config, Labels: {} } }
  test.each<[string, Docker.ContainerInspectInfo, Docker.ContainerInspectInfo | undefined, Layout]>([
    ['published ports', bridgeLeader(), undefined, 'ports'],
    ['host networking', hostLeader(), undefined, 'host'],
    ['joined to our holder', joined, holder, 'holder'],
    ['joined to another container (a VPN sidecar)', joined, sidecar, 'container']
  ])('%s', (_, info, owner, want) => expect(layoutOf(info, owner)).toBe(want))

  it('a bridge with nothing published', () => {
    const b = bridgeLeader()
    b.HostConfig.PortBindings = {}
    expect(layoutOf(b)).toBe('bridge')
  })

  test.each<[boolean | undefined, Layout, LayoutChange['to'], string]>([
    [undefined, 'ports', 'none', 'unset keeps the layout'],
    [undefined, 'holder', 'none', 'unset keeps the holder'],
    [true, 'ports', 'holder', 'converts the docs layout'],
    [true, 'bridge', 'holder', 'converts a bridge node (its address stays with the holder)'],
    [true, 'holder', 'none', 'already converted: a handoff inside it'],
    [true, 'host', 'none', 'nothing to hold on host networking'],
    [false, 'holder', 'own', 'converts back'],
    [false, 'ports', 'none', 'already on its own ports']
  ])('port-holder %s on %s -> %s (%s)', (asked, layout, to) => {
    expect(layoutChange(asked, layout).to).toBe(to)
  })

  it('a compose service is not converted: compose would recreate it with its own ports', () => {
    expect(layoutChange(true, 'ports', undefined, 'ops')).toMatchObject({
      to: 'none',
      refuse: expect.stringMatching(/compose project 'ops'/)
    })
  })

  it('false on a node joined to a container that is not ours is refused, naming it', () => {
    const c = layoutChange(false, 'container', 'vpn')
    expect(c).toMatchObject({ to: 'none', refuse: expect.stringMatching(/'vpn'.*not a port holder/) })
  })

  test.each<[string, Docker.ContainerInspectInfo, LayoutChange | undefined, string]>([
    ['docs layout, nothing asked', bridgeLeader(), undefined, 'swap'],
    ['docs layout, converted', bridgeLeader(), { to: 'holder' }, 'to-holder'],
    ['holder layout: the standby shares the ports', joined, { to: 'none' }, 'rename'],
    ['holder layout, converted back', joined, { to: 'own' }, 'from-holder']
  ])('finishOf: %s', (_, info, change, want) => expect(finishOf(info, 'swap', change)).toBe(want))
})

describe('holderProblem: a node the holder ports do not reach', () => {
  const holder = holderOf(bridgeLeader())
  const node = joinedView(bridgeLeader(), HOLDER_ID)
  it('none when the holder started before the node', () => {
    holder.State = { ...holder.State, StartedAt: '2025-01-01T00:00:00Z' }
    expect(holderProblem(node, holder)).toBeUndefined()
  })
  it('stale when the holder started again after the node', () => {
    const h = { ...holder, State: { ...holder.State, StartedAt: '2025-01-02T00:00:00Z' } }
    expect(holderProblem(node, h)?.kind).toBe('stale')
  })
  it('down when the holder is stopped, gone when it is gone', () => {
    expect(holderProblem(node, { ...holder, State: { ...holder.State, Running: false, Status: 'exited' } })?.kind).toBe(
      'down'
    )
    expect(holderProblem(node, undefined)?.kind).toBe('gone')
  })
})

describe('waitCommand: what the image has', () => {
  const has = (paths: string[]) => async (p: string) => paths.includes(p)
  test.each<[string, string[], string[] | undefined]>([
    ['Ubuntu (the real image): sleep infinity', ['/usr/bin/sleep', '/usr/bin/tail'], ['/usr/bin/sleep', 'infinity']],
    ['busybox-like: /bin/sleep', ['/bin/sleep'], ['/bin/sleep', 'infinity']],
    ['tail only', ['/usr/bin/tail'], ['/usr/bin/tail', '-f', '/dev/null']],
    [
      'the simulator: its node runtime',
      ['/usr/local/bin/node'],
      ['/usr/local/bin/node', '-e', 'setInterval(() => {}, 1 << 30)']
    ],
    ['nothing to wait with', [], undefined]
  ])('%s', async (_, paths, want) => expect(await waitCommand(has(paths))).toEqual(want))
})

it('fixtures: the automatic hostname is the short id', () => expect(bridgeLeader().Config.Hostname).toBe(SHORT_ID))
