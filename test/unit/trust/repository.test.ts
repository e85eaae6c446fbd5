import { describe, expect, test } from '@jest/globals'
import { parseImageRef } from '../../../src/image/ref.js'
import { repositoryMatches, repositoryOfImage, untrustedTarget } from '../../../src/trust/repository.js'
import { dockerTls, isLoopbackDockerHost } from '../../../src/docker/host.js'
import { backupFiles, type NodeFile } from '../../../src/rollout/backup-step.js'

describe('untrustedTarget: only the repository the node runs, or one listed', () => {
  const running = ['smartcontract/chainlink:2.18.0']
  test.each([
    ['smartcontract/chainlink:2.19.0', running, []],
    ['docker.io/smartcontract/chainlink:2.19.0', running, []],
    ['index.docker.io/smartcontract/chainlink:2.19.0', running, []],
    ['public.ecr.aws/chainlink/chainlink:2.19.0', running, ['public.ecr.aws/chainlink/chainlink']],
    ['ghcr.io/acme/chainlink:2.19.0', running, ['ghcr.io/acme/*']],
    ['ghcr.io/acme/nodes/chainlink:2.19.0', running, ['ghcr.io/acme/**']],
    ['127.0.0.1:5555/smartcontract/chainlink:2.19.0', ['127.0.0.1:5555/smartcontract/chainlink:2.18.0'], []]
  ])('%s is trusted', (target, current, allowed) =>
    expect(untrustedTarget(parseImageRef(target), current, allowed)).toBeUndefined()
  )
  test.each([
    ['smartcontrakt/chainlink:2.19.0', running, []],
    ['smartcontract/chain1ink:2.19.0', running, []],
    ['evil.example.com/smartcontract/chainlink:2.19.0', running, []],
    ['127.0.0.1:5556/smartcontract/chainlink:2.19.0', ['127.0.0.1:5555/smartcontract/chainlink:2.18.0'], []],
    ['ghcr.io/acme/nodes/chainlink:2.19.0', running, ['ghcr.io/acme/*']],
    ['ghcr.io/acme-evil/chainlink:2.19.0', running, ['ghcr.io/acme/*']],
    ['smartcontract/chainlink:2.19.0', ['sha256:0123456789abcdef0123'], []]
  ])('%s is refused', (target, current, allowed) => {
    const why = untrustedTarget(parseImageRef(target), current, allowed)
    expect(why).toMatch(/is not the repository the node runs .* not listed in 'allowed-repositories'/)
  })
  test('a digest-pinned container image still names its repository', () =>
    expect(repositoryOfImage(`smartcontract/chainlink:2.18.0@sha256:${'a'.repeat(64)}`)).toBe(
      'smartcontract/chainlink'
    ))
  test('* stays inside one path component, ** does not', () => {
    expect(repositoryMatches('ghcr.io/a/b', 'ghcr.io/*')).toBe(false)
    expect(repositoryMatches('ghcr.io/a/b', 'ghcr.io/**')).toBe(true)
    expect(repositoryMatches('smartcontract/chainlink', 'docker.io/smartcontract/*')).toBe(true)
  })
})

describe('Docker TLS by the Docker CLI conventions', () => {
  test('DOCKER_TLS_VERIFY: ca.pem, cert.pem and key.pem from DOCKER_CERT_PATH', () =>
    expect(dockerTls('tcp://h:2376', { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' })).toEqual({
      ca: '/certs/ca.pem',
      cert: '/certs/cert.pem',
      key: '/certs/key.pem'
    }))
  test('without DOCKER_TLS_VERIFY, or on a unix socket: no TLS', () => {
    expect(dockerTls('tcp://h:2375', {})).toBeUndefined()
    expect(dockerTls('unix:///var/run/docker.sock', { DOCKER_TLS_VERIFY: '1' })).toBeUndefined()
  })
  test.each([
    ['tcp://127.0.0.1:2375', true],
    ['tcp://127.9.9.9:2375', true],
    ['tcp://localhost:2375', true],
    ['tcp://[::1]:2375', true],
    ['tcp://10.0.0.1:2375', false],
    ['tcp://docker.example.com:2375', false],
    ['tcp://127.0.0.1.evil.example:2375', false]
  ])('%s loopback: %s', (h, want) => expect(isLoopbackDockerHost(h)).toBe(want))
})

describe('backupFiles: secrets files only encrypted, or in plain when asked', () => {
  const files: NodeFile[] = [
    { name: '/chainlink/config.toml', path: '/h/config.toml', secret: false },
    { name: '/chainlink/secrets.toml', path: '/h/secrets.toml', secret: true },
    { name: '/chainlink/.api', path: '/h/.api', secret: true }
  ]
  test('encrypted: all, and the note says so', () => {
    const r = backupFiles(files, true, false)
    expect(r.files).toEqual(files)
    expect(r.note).toMatch(/secrets\.toml, \/chainlink\/\.api stored, encrypted to backup-recipient/)
  })
  test('plain asked for: all, and the note says UNENCRYPTED', () => {
    const r = backupFiles(files, false, true)
    expect(r.files).toEqual(files)
    expect(r.note).toMatch(/UNENCRYPTED \(backup-secrets-plain: true\)/)
  })
  test('neither: the secrets files are left out, and the note says why', () => {
    const r = backupFiles(files, false, false)
    expect(r.files.map((f) => f.name)).toEqual(['/chainlink/config.toml'])
    expect(r.note).toMatch(/not stored: .*backup-recipient.*backup-secrets-plain/)
  })
})
