// Which engine answers the Docker API, and what the action refuses on it (src/docker/engine.ts).
import { describe, expect, it } from '@jest/globals'
import { describeEngine, engineOf, engineRefusals, type PodmanFacts } from '../../../src/docker/engine.js'

// GET /version as Debian 12's podman 4.3.1 answers it (test/bed/podman.sh), and as dockerd 20.10 does
const podman43 = {
  Components: [
    { Name: 'Podman Engine', Version: '4.3.1' },
    { Name: 'Conmon', Version: 'conmon version 2.1.6' }
  ],
  Version: '4.3.1',
  ApiVersion: '1.41'
}
const docker20 = { Components: [{ Name: 'Engine', Version: '20.10.24' }], Version: '20.10.24', ApiVersion: '1.41' }

describe('engineOf', () => {
  it.each([
    ['Docker Engine 20.10', docker20, { name: 'Docker Engine', podman: false, restartPolicyUpdate: true }],
    ['Podman 4.3.1', podman43, { name: 'Podman Engine', version: '4.3.1', podman: true, restartPolicyUpdate: false }],
    [
      'Podman 5.4.2',
      { ...podman43, Components: [{ Name: 'Podman Engine', Version: '5.4.2' }], Version: '5.4.2' },
      { podman: true, restartPolicyUpdate: true }
    ],
    [
      'Podman with an unreadable version: treated as the old one',
      { Components: [{ Name: 'Podman Engine', Version: 'dev' }] },
      { podman: true, restartPolicyUpdate: false }
    ],
    ['no Components (an old Docker)', { Version: '1.13.1', ApiVersion: '1.26' }, { podman: false }]
  ])('%s', (_, answer, want) => {
    expect(engineOf(answer)).toMatchObject(want)
  })

  it('one summary line', () => {
    expect(describeEngine(engineOf(podman43))).toBe('Podman Engine 4.3.1 (Docker API 1.41)')
    expect(describeEngine(engineOf(docker20))).toBe('Docker Engine 20.10.24 (Docker API 1.41)')
  })
})

describe('engineRefusals', () => {
  const plain: PodmanFacts = { name: 'chainlink', restartPolicy: 'no' }
  const cases: Array<[string, 'docker' | 'podman4' | 'podman5', PodmanFacts[], RegExp[]]> = [
    ['Docker: nothing is refused here', 'docker', [{ ...plain, restartPolicy: 'always', pod: 'p' }], []],
    ['Podman 4, policy no: allowed', 'podman4', [plain], []],
    ['Podman 4, no policy at all: allowed', 'podman4', [{ name: 'chainlink' }], []],
    [
      'Podman 4, policy always: refused, the container named, what to do',
      'podman4',
      [{ ...plain, restartPolicy: 'always' }],
      [/^'chainlink' has restart policy 'always' and Podman Engine 4\.3\.1 .*Recreate 'chainlink' with --restart=no/]
    ],
    [
      'Podman 4, pair: only the one with a policy',
      'podman4',
      [plain, { name: 'chainlink-b', restartPolicy: 'unless-stopped' }],
      [/^'chainlink-b' has restart policy 'unless-stopped'/]
    ],
    ['Podman 5, policy always: allowed', 'podman5', [{ ...plain, restartPolicy: 'always' }], []],
    [
      'Podman 5, a pod: refused by name',
      'podman5',
      [{ ...plain, pod: 'node-pod' }],
      [/^'chainlink' runs in Podman pod 'node-pod'/]
    ],
    [
      'Podman 5, systemd unit: refused by name',
      'podman5',
      [{ ...plain, systemdUnit: 'container-cl.service' }],
      [/^'chainlink' is run by systemd unit 'container-cl.service' \(label PODMAN_SYSTEMD_UNIT\)/]
    ],
    [
      'Podman 4, all three: every cause',
      'podman4',
      [{ name: 'chainlink', pod: 'p', systemdUnit: 'u.service', restartPolicy: 'always' }],
      [/pod 'p'/, /unit 'u.service'/, /restart policy 'always'/]
    ]
  ]
  const engines = {
    docker: engineOf(docker20),
    podman4: engineOf(podman43),
    podman5: engineOf({ Components: [{ Name: 'Podman Engine', Version: '5.4.2' }], ApiVersion: '1.41' })
  }
  it.each(cases)('%s', (_, engine, containers, want) => {
    const got = engineRefusals(engines[engine], containers)
    expect(got).toHaveLength(want.length)
    want.forEach((re, i) => expect(got[i]).toMatch(re))
  })
})
