import { describe, expect, it, test } from '@jest/globals'
import type Docker from 'dockerode'
import { cloneSpec, publishedPorts, remapPorts, type PortBindings } from '../../../src/handoff/container-spec.js'
import { LEADER_ID, SHORT_ID, bridgeLeader, composeLeader, hostLeader, oldImageConfig } from '../fixtures/containers.js'

const NEW_IMAGE = 'smartcontract/chainlink:2.19.0'
const clone = (info: Docker.ContainerInspectInfo, extra: Partial<Parameters<typeof cloneSpec>[1]> = {}) =>
  cloneSpec(info, { name: 'chainlink-next', image: NEW_IMAGE, oldImageConfig: oldImageConfig(), ...extra })

describe('cloneSpec: only the image changes', () => {
  it('names the new container and uses the new image', () => {
    const spec = clone(bridgeLeader())
    expect(spec.name).toBe('chainlink-next')
    expect(spec.Image).toBe(NEW_IMAGE)
  })

  it("copies the operator's env, not the old image's ENV defaults", () => {
    const spec = clone(bridgeLeader())
    expect(spec.Env).toEqual([
      'CL_DATABASE_URL=postgres://chainlink:hunter2@172.17.0.1:5432/chainlink',
      'CL_PASSWORD_KEYSTORE=keystorepw12345'
    ])
  })

  it('an operator override of an image default is copied', () => {
    const info = bridgeLeader()
    info.Config.Env = info.Config.Env.map((e) => (e.startsWith('ROOT=') ? 'ROOT=/data' : e))
    expect(clone(info).Env).toContain('ROOT=/data')
    expect(clone(info).Env).not.toContain('ROOT=/chainlink')
  })

  it('without the old image config, everything is copied (nothing is lost)', () => {
    const info = bridgeLeader()
    const spec = cloneSpec(info, { name: 'n', image: NEW_IMAGE })
    expect(spec.Env).toEqual(info.Config.Env)
    expect(spec.Labels).toEqual(info.Config.Labels)
    expect(spec.Cmd).toEqual(info.Config.Cmd)
    expect(spec.Entrypoint).toEqual(info.Config.Entrypoint)
  })

  it("copies the operator's labels, not the old image's, and adds ours", () => {
    const spec = clone(bridgeLeader(), {
      extraLabels: { 'chainlink-rollout.role': 'standby', 'chainlink-rollout.run': '42' }
    })
    expect(spec.Labels).toEqual({
      'com.example.owner': 'ops',
      'chainlink-rollout.role': 'standby',
      'chainlink-rollout.run': '42'
    })
  })

  it('an image label the operator overrode is copied', () => {
    const info = bridgeLeader()
    info.Config.Labels['org.opencontainers.image.source'] = 'https://git.example.com/fork'
    expect(clone(info).Labels).toMatchObject({ 'org.opencontainers.image.source': 'https://git.example.com/fork' })
    expect(clone(info).Labels).not.toHaveProperty('org.opencontainers.image.version')
  })

  test.each([
    [
      'the operator command',
      [
        'node',
        '-config',
        '/chainlink/config.toml',
        '-secrets',
        '/chainlink/secrets.toml',
        'start',
        '-a',
        '/chainlink/.api'
      ],
      [
        'node',
        '-config',
        '/chainlink/config.toml',
        '-secrets',
        '/chainlink/secrets.toml',
        'start',
        '-a',
        '/chainlink/.api'
      ]
    ],
    ["the image's own command: left to the new image", ['node', 'start'], undefined]
  ])('Cmd: %s', (_, cmd, want) => {
    const info = bridgeLeader()
    info.Config.Cmd = cmd
    expect(clone(info).Cmd).toEqual(want)
  })

  it('an explicit cmd replaces the command', () => {
    expect(clone(bridgeLeader(), { cmd: ['node', 'db', 'rollback', '42'] }).Cmd).toEqual([
      'node',
      'db',
      'rollback',
      '42'
    ])
  })

  it("Entrypoint: the image's is left to the new image, the operator's is copied", () => {
    expect(clone(bridgeLeader()).Entrypoint).toBeUndefined()
    const info = bridgeLeader()
    info.Config.Entrypoint = ['/usr/bin/tini', '--', 'chainlink']
    expect(clone(info).Entrypoint).toEqual(['/usr/bin/tini', '--', 'chainlink'])
  })

  // Regression (was a bug, fixed): Docker takes the image's CMD only when the create request names no Entrypoint
  // (daemon merge(): `if len(userConf.Entrypoint) == 0 { ... userConf.Cmd = imageConf.Cmd }`).
  // With an operator entrypoint (a wrapper script) and a command equal to the image's default
  // (`node start`), cloneSpec sends the Entrypoint without the Cmd, so the new container runs
  // the wrapper with no arguments instead of `node start`.
  test("an operator Entrypoint keeps its command even when it equals the image's CMD", () => {
    const info = bridgeLeader()
    info.Config.Entrypoint = ['/scripts/entry.sh']
    info.Config.Cmd = ['node', 'start']
    const spec = clone(info)
    expect(spec.Entrypoint).toEqual(['/scripts/entry.sh'])
    expect(spec.Cmd).toEqual(['node', 'start'])
  })

  it("Healthcheck: the operator's is copied, the image's is left to the new image", () => {
    const hc = { Test: ['CMD', 'curl', '-f', 'http://localhost:6688/health'], Interval: 10e9, Timeout: 5e9, Retries: 3 }
    const info = bridgeLeader()
    ;(info.Config as { Healthcheck?: unknown }).Healthcheck = hc
    expect(clone(info).Healthcheck).toEqual(hc)
    expect(clone(info, { oldImageConfig: { ...oldImageConfig(), Healthcheck: { ...hc } } }).Healthcheck).toBeUndefined()
    expect(clone(bridgeLeader()).Healthcheck).toBeUndefined()
  })

  it('WorkingDir, User and StopSignal are copied only when the operator set them', () => {
    const same = clone(bridgeLeader())
    expect([same.WorkingDir, same.User, same.StopSignal]).toEqual([undefined, undefined, undefined])
    const info = bridgeLeader() as Docker.ContainerInspectInfo & { Config: { StopSignal?: string } }
    info.Config.WorkingDir = '/chainlink'
    info.Config.User = '1000:1000'
    info.Config.StopSignal = 'SIGINT'
    const spec = clone(info)
    expect([spec.WorkingDir, spec.User, spec.StopSignal]).toEqual(['/chainlink', '1000:1000', 'SIGINT'])
  })

  it('the stop timeout is copied (it bounds the graceful lease release)', () => {
    expect(clone(bridgeLeader()).StopTimeout).toBe(30)
  })

  it("ExposedPorts: the image's are left to it, the operator's extra ones are copied", () => {
    expect(clone(bridgeLeader()).ExposedPorts).toBeUndefined()
    const info = bridgeLeader()
    info.Config.ExposedPorts = { '6688/tcp': {}, '6689/tcp': {} }
    expect(clone(info).ExposedPorts).toEqual({ '6689/tcp': {} })
  })

  it('HostConfig is copied whole: restart policy, binds, mounts, network mode, log config, resources', () => {
    const info = bridgeLeader()
    const hc = clone(info).HostConfig!
    expect(hc).toEqual(info.HostConfig)
    expect(hc.RestartPolicy).toEqual({ Name: 'unless-stopped', MaximumRetryCount: 0 })
    expect(hc.Binds).toEqual(['/home/ops/.chainlink:/chainlink'])
    expect(hc.NetworkMode).toBe('default')
    expect(hc.LogConfig).toEqual({ Type: 'json-file', Config: { 'max-size': '100m', 'max-file': '3' } })
  })

  it('replacement port bindings are used, and the leader inspect data is not modified', () => {
    const info = bridgeLeader()
    const before = JSON.stringify(info)
    const ports: PortBindings = { '6688/tcp': [{ HostIp: '127.0.0.1', HostPort: '6687' }] }
    const spec = clone(info, { portBindings: ports, extraLabels: { x: 'y' } })
    expect(spec.HostConfig!.PortBindings).toEqual(ports)
    expect(JSON.stringify(info)).toBe(before)
    expect(clone(info).HostConfig!.PortBindings).toEqual({ '6688/tcp': [{ HostIp: '127.0.0.1', HostPort: '6688' }] })
  })

  it('never attaches stdio', () => {
    const spec = clone(bridgeLeader())
    expect([spec.AttachStdin, spec.AttachStdout, spec.AttachStderr]).toEqual([false, false, false])
  })
})

describe('cloneSpec: networks and hostname', () => {
  it('default bridge: no endpoint config (Docker attaches it)', () => {
    expect(clone(bridgeLeader()).NetworkingConfig).toBeUndefined()
  })

  it("user network: the operator's aliases are kept, the container-id and container-name aliases are not", () => {
    const spec = clone(composeLeader())
    expect(spec.HostConfig!.NetworkMode).toBe('ops_backend')
    expect(spec.NetworkingConfig).toEqual({
      EndpointsConfig: { ops_backend: { Aliases: ['chainlink', 'node.internal'] } }
    })
  })

  it('the full container id as an alias is dropped too', () => {
    const info = composeLeader()
    info.NetworkSettings.Networks.ops_backend.Aliases = [LEADER_ID, 'chainlink']
    expect(clone(info).NetworkingConfig!.EndpointsConfig!.ops_backend.Aliases).toEqual(['chainlink'])
  })

  it('a user network with only generated aliases gets no aliases', () => {
    const info = composeLeader()
    info.NetworkSettings.Networks.ops_backend.Aliases = [SHORT_ID, 'ops-chainlink-1']
    expect(clone(info).NetworkingConfig).toEqual({ EndpointsConfig: { ops_backend: { Aliases: undefined } } })
  })

  // Regression (was a bug, fixed): a container on two user networks (compose `networks: [backend, frontend]`, or a later
  // `docker network connect`) is cloned onto the first one only: cloneSpec skips every network
  // other than HostConfig.NetworkMode and nothing connects the others afterwards, so the new
  // node silently loses e.g. its proxy or its database network.
  test('a second user network is kept, with its aliases', () => {
    const info = composeLeader()
    info.NetworkSettings.Networks.ops_frontend = {
      ...info.NetworkSettings.Networks.ops_backend,
      NetworkID: 'n3',
      Aliases: ['chainlink-ui', SHORT_ID],
      IPAddress: '172.21.0.5'
    }
    const eps = clone(info).NetworkingConfig?.EndpointsConfig ?? {}
    expect(Object.keys(eps).sort()).toEqual(['ops_backend', 'ops_frontend'])
    expect(eps.ops_frontend.Aliases).toEqual(['chainlink-ui'])
  })

  it("the auto-generated hostname (the old container's id) is not copied", () => {
    expect(clone(bridgeLeader()).Hostname).toBeUndefined()
  })

  it('a hostname the operator set is copied, with its domain name', () => {
    const info = bridgeLeader()
    info.Config.Hostname = 'chainlink-node'
    info.Config.Domainname = 'example.com'
    const spec = clone(info)
    expect([spec.Hostname, spec.Domainname]).toEqual(['chainlink-node', 'example.com'])
  })

  it("host network: no endpoint config, and the host's hostname is not pinned", () => {
    const spec = clone(hostLeader())
    expect(spec.HostConfig!.NetworkMode).toBe('host')
    expect(spec.NetworkingConfig).toBeUndefined()
    expect(spec.Hostname).toBeUndefined()
  })

  it('container:<id> network mode is kept and gets no endpoints', () => {
    const info = bridgeLeader()
    info.HostConfig.NetworkMode = 'container:vpn'
    info.NetworkSettings.Networks = {} as Docker.ContainerInspectInfo['NetworkSettings']['Networks']
    const spec = clone(info)
    expect(spec.HostConfig!.NetworkMode).toBe('container:vpn')
    expect(spec.NetworkingConfig).toBeUndefined()
  })
})

describe('publishedPorts', () => {
  test.each([
    ['docs layout on the bridge', bridgeLeader, { '6688/tcp': [{ HostIp: '127.0.0.1', HostPort: '6688' }] }],
    [
      'compose, two ports',
      composeLeader,
      { '6688/tcp': [{ HostIp: '127.0.0.1', HostPort: '6688' }], '6689/tcp': [{ HostIp: '', HostPort: '6689' }] }
    ],
    ['host network: none, whatever PortBindings says', hostLeader, {}]
  ])('%s', (_, make, want) => expect(publishedPorts(make())).toEqual(want))

  it('exposed-only and empty bindings are not published ports', () => {
    const info = bridgeLeader()
    info.HostConfig.PortBindings = { '6688/tcp': null, '6689/tcp': [] } as unknown as Docker.HostConfig['PortBindings']
    expect(publishedPorts(info)).toEqual({})
    delete info.HostConfig.PortBindings
    expect(publishedPorts(info)).toEqual({})
  })
})

describe('remapPorts', () => {
  /** A fake free-port finder: the lowest port from 40000 not in `avoid`; records its calls. */
  function finder() {
    const calls: Array<[string, number[]]> = []
    const fn = async (hostIp: string, avoid: Set<number>) => {
      calls.push([hostIp, [...avoid].sort()])
      let p = 40000
      while (avoid.has(p)) p++
      return p
    }
    return { fn, calls }
  }

  it('keeps every host address: a UI on 127.0.0.1 stays on 127.0.0.1', async () => {
    const { fn, calls } = finder()
    const out = await remapPorts({ '6688/tcp': [{ HostIp: '127.0.0.1', HostPort: '6688' }] }, fn)
    expect(out).toEqual({ '6688/tcp': [{ HostIp: '127.0.0.1', HostPort: '40000' }] })
    expect(calls[0][0]).toBe('127.0.0.1')
  })

  it('several ports and addresses: each keeps its address, all host ports distinct', async () => {
    const { fn, calls } = finder()
    const out = await remapPorts(
      {
        '6688/tcp': [
          { HostIp: '127.0.0.1', HostPort: '6688' },
          { HostIp: '::1', HostPort: '6688' }
        ],
        '6689/tcp': [{ HostIp: '', HostPort: '6689' }],
        '8080/tcp': [{ HostIp: '10.0.0.5', HostPort: '' }]
      },
      fn
    )
    expect(Object.keys(out)).toEqual(['6688/tcp', '6689/tcp', '8080/tcp'])
    expect(out['6688/tcp']!.map((b) => b.HostIp)).toEqual(['127.0.0.1', '::1'])
    expect(out['6689/tcp']![0].HostIp).toBe('')
    expect(out['8080/tcp']![0].HostIp).toBe('10.0.0.5')
    const ports = Object.values(out).flatMap((bs) => bs!.map((b) => b.HostPort))
    expect(new Set(ports).size).toBe(4)
    expect(ports.every((p) => /^\d+$/.test(p!) && !['6688', '6689'].includes(p!))).toBe(true)
    expect(calls.map((c) => c[0])).toEqual(['127.0.0.1', '::1', '', '10.0.0.5'])
  })

  it('a binding without HostIp is remapped on all interfaces, as it was', async () => {
    const { fn, calls } = finder()
    const out = await remapPorts({ '6688/tcp': [{ HostPort: '6688' }] }, fn)
    expect(out['6688/tcp']).toEqual([{ HostIp: '', HostPort: '40000' }])
    expect(calls[0][0]).toBe('')
  })

  it('no published ports: nothing to remap, no port probed', async () => {
    const { fn, calls } = finder()
    expect(await remapPorts({}, fn)).toEqual({})
    expect(calls).toEqual([])
  })
})

describe('cloneSpec: a --rm leader', () => {
  it('the clone does not remove itself when stopped: it may be what a rollback starts', () => {
    const info = bridgeLeader()
    info.HostConfig.AutoRemove = true
    expect(clone(info).HostConfig?.AutoRemove).toBe(false)
  })
})

describe('cloneSpec: ulimits as Podman inspects them', () => {
  it("Podman's kernel names (RLIMIT_NOFILE) become the names its create takes (nofile); Docker's stay", () => {
    const info = hostLeader()
    info.HostConfig.Ulimits = [
      { Name: 'RLIMIT_NOFILE', Soft: 1024, Hard: 1024 },
      { Name: 'RLIMIT_NPROC', Soft: 4096, Hard: 4096 },
      { Name: 'core', Soft: 0, Hard: 0 }
    ]
    expect(clone(info).HostConfig?.Ulimits).toEqual([
      { Name: 'nofile', Soft: 1024, Hard: 1024 },
      { Name: 'nproc', Soft: 4096, Hard: 4096 },
      { Name: 'core', Soft: 0, Hard: 0 }
    ])
  })
})

describe("cloneSpec: compose's labels", () => {
  const compose = (k: string) => k.startsWith('com.docker.compose.')

  it('a container that takes the node’s name keeps them: compose finds the node as its service', () => {
    const labels = clone(composeLeader()).Labels ?? {}
    expect(labels['com.docker.compose.project']).toBe('ops')
    expect(labels['com.docker.compose.service']).toBe('chainlink')
  })

  it('one that never does (interim standby, db rollback) carries none: it is no replica of the service', () => {
    const info = composeLeader()
    const labels = clone(info, { asService: false, extraLabels: { 'io.chainlink-rollout.role': 'next' } }).Labels ?? {}
    expect(Object.keys(labels).filter(compose)).toEqual([])
    // the operator's other labels stay, and ours are added
    const imageLabels: Record<string, string> = oldImageConfig().Labels ?? {}
    const others = Object.keys(info.Config.Labels ?? {}).filter(
      (k) => !compose(k) && imageLabels[k] !== info.Config.Labels?.[k]
    )
    for (const k of others) expect(labels[k]).toBe(info.Config.Labels?.[k])
    expect(labels['io.chainlink-rollout.role']).toBe('next')
  })
})
