// The trust boundary (docs/security.md), run as the runner runs the action against a node with a
// secret in every place (support/secret-node.ts): backups keep the node's secrets encrypted or
// leave them out, with 0600 files in 0700 directories; a target from another repository is
// refused before anything changes; paths stay in the workspace and the backup dir; a remote
// Docker Engine is reached over TLS (a dedicated dockerd with --tlsverify on 127.0.0.1).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateIdentity, identityToRecipient } from 'age-encryption'
import { createDb, docker, loadBed, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { runAction, visible, type ActionRun } from '../support/action.js'
import { containerState } from '../support/node.js'
import { startSecretNode, type SecretNode } from '../support/secret-node.js'
import { startTlsDockerd, type TlsDockerd } from '../support/tls-dockerd.js'

const prefix = uniqueName('clr-sec')
const name = `${prefix}-node`
let db: TestDb
let sn: SecretNode
let base: string
let before: Awaited<ReturnType<typeof containerState>>

beforeAll(async () => {
  db = await createDb('sec')
  base = mkdtempSync(join(tmpdir(), 'clr-sec-'))
  sn = await startSecretNode({ name, tag: '2.19.0', db })
  before = await containerState(name)
})
afterAll(async () => {
  await removeContainers(prefix)
  await db?.drop()
})

const mode = (p: string) => statSync(p).mode & 0o777
const errors = (r: ActionRun) =>
  visible(r.stdout)
    .split('\n')
    .filter((l) => l.startsWith('::error::'))

/** The node was not touched: same container, same image, still running; no container of a run. */
async function untouched(): Promise<void> {
  expect(await containerState(name)).toEqual(before)
  const ours = (await docker.listContainers({ all: true })).filter((c) =>
    c.Names.some((n) => n.startsWith(`/${name}-`))
  )
  expect(ours.map((c) => c.Names[0])).toEqual([])
}

describe('backups keep the node secrets encrypted or not at all', () => {
  const stateDir = () => join(base, 'state')
  const backupDir = () => join(base, 'backups')
  const act = (inputs: Record<string, string>) =>
    runAction({ operation: 'backup', container: name, 'state-dir': stateDir(), 'backup-dir': backupDir(), ...inputs })
  const manifestOf = (file: string) =>
    JSON.parse(readFileSync(file.replace(/\.dump.*$/, '.json'), 'utf8')) as {
      encrypted: boolean
      files?: { file: string; entries: { name: string }[] }
    }
  const secretsFiles = ['secrets.toml', '.api', '.password', 'config.toml']

  test('no recipient: the secrets files are left out, and the summary says so; 0600 files, 0700 dirs', async () => {
    mkdirSync(backupDir(), { recursive: true })
    chmodSync(backupDir(), 0o755) // an existing, too open backup dir is narrowed
    const r = await act({})
    expect(r.exitCode).toBe(0)
    const m = manifestOf(r.outputs['backup-file'])
    const stored = (m.files?.entries ?? []).map((e) => e.name)
    for (const f of secretsFiles) expect(stored).not.toContain(f)
    expect(r.summary).toMatch(
      /Secrets files \| .*secrets\.toml.*not stored: a backup keeps the node's secrets only encrypted/
    )
    expect(mode(backupDir())).toBe(0o700)
    expect(mode(stateDir())).toBe(0o700)
    for (const f of readdirSync(backupDir())) expect([f, mode(join(backupDir(), f))]).toEqual([f, 0o600])
    for (const f of readdirSync(stateDir()).filter((x) => x !== 'backups'))
      expect([f, mode(join(stateDir(), f))]).toEqual([f, 0o600])
  })

  test('encrypted to backup-recipient: stored, encrypted, and the summary says so', async () => {
    const recipient = await identityToRecipient(await generateIdentity())
    const r = await act({ 'backup-recipient': recipient })
    expect(r.exitCode).toBe(0)
    const m = manifestOf(r.outputs['backup-file'])
    expect(m.encrypted).toBe(true)
    expect(m.files?.file).toMatch(/\.age$/)
    expect((m.files?.entries ?? []).map((e) => e.name).sort()).toEqual([...secretsFiles].sort())
    const tar = readFileSync(join(backupDir(), m.files!.file), 'latin1')
    for (const s of Object.values(sn.secrets)) expect(tar).not.toContain(s)
    expect(r.summary).toMatch(/Secrets files \| .*stored, encrypted to backup-recipient/)
    for (const f of readdirSync(backupDir())) expect([f, mode(join(backupDir(), f))]).toEqual([f, 0o600])
  })

  test('backup-secrets-plain: true stores them in plain, and the summary says UNENCRYPTED', async () => {
    const r = await act({ 'backup-secrets-plain': 'true' })
    expect(r.exitCode).toBe(0)
    const m = manifestOf(r.outputs['backup-file'])
    expect(m.encrypted).toBe(false)
    expect((m.files?.entries ?? []).map((e) => e.name).sort()).toEqual([...secretsFiles].sort())
    expect(r.summary).toMatch(/Secrets files \| .*stored UNENCRYPTED \(backup-secrets-plain: true\)/)
  })
})

describe('only a trusted repository runs with the node secrets', () => {
  const registry = loadBed().registry
  const stateDir = () => join(base, 'trust-state')
  const upgrade = (image: string, more: Record<string, string> = {}) =>
    runAction({
      container: name,
      image,
      'state-dir': stateDir(),
      'backup-dir': join(stateDir(), 'backups'),
      'stable-for': '2s',
      ...more
    })

  test.each([
    ['a typo-squatted repository', () => `${registry}/smartcontrakt/chainlink:2.20.0`],
    ['another registry', () => `registry.example.com:5000/${simImage('2.20.0').split('/').slice(1).join('/')}`]
  ])('%s is refused before anything changes, naming the input', async (_what, image) => {
    const r = await upgrade(image())
    expect(r.exitCode).toBe(1)
    expect(errors(r)).toEqual([
      expect.stringMatching(/^::error::Input 'allowed-repositories': the target .* is not the repository the node runs/)
    ])
    expect(visible(r.stdout)).not.toMatch(/^pull/m)
    await untouched()
    expect(existsSync(stateDir()) ? readdirSync(stateDir()).filter((f) => f.endsWith('.journal.json')) : []).toEqual([])
  })

  test('a repository listed in allowed-repositories (a glob) is accepted', async () => {
    const mirror = `${registry}/clr-mirror-${prefix}/chainlink`
    execFileSync('docker', ['tag', simImage('2.20.0'), `${mirror}:2.20.0`])
    try {
      const refused = await upgrade(`${mirror}:2.20.0`, { 'dry-run': 'true' })
      expect(refused.exitCode).toBe(1)
      const r = await upgrade(`${mirror}:2.20.0`, {
        'dry-run': 'true',
        'allowed-repositories': `ghcr.io/acme/*\n${registry}/clr-mirror-*/chainlink`
      })
      expect(errors(r)).toEqual([])
      expect(r.outputs.result).toBe('planned')
      await untouched()
    } finally {
      execFileSync('docker', ['rmi', `${mirror}:2.20.0`])
    }
  })
})

describe('paths stay where they belong', () => {
  const ws = () => join(base, 'workspace')
  const outside = () => join(base, 'outside')
  const password = 'leak-outside-password-a1b2c3d4'
  beforeAll(() => {
    mkdirSync(join(ws(), 'deploy'), { recursive: true })
    mkdirSync(outside(), { recursive: true })
    writeFileSync(join(outside(), '.password'), `${password}\n`)
    writeFileSync(join(ws(), 'deploy', 'pw.txt'), `${password}\n`)
    symlinkSync(join(outside(), '.password'), join(ws(), 'deploy', 'link.env'))
    mkdirSync(join(base, 'pbackups'), { recursive: true })
    symlinkSync(outside(), join(base, 'pbackups', 'elsewhere'))
  })
  const run = (inputs: Record<string, string>) =>
    runAction(
      { container: name, 'state-dir': join(base, 'pstate'), 'backup-dir': join(base, 'pbackups'), ...inputs },
      { env: { GITHUB_WORKSPACE: ws() } }
    )

  test.each([
    ['image-file', '../outside/.password', /^::error::Input 'image-file' must not contain '\.\.'/],
    ['image-file', '/etc/passwd', /^::error::Input 'image-file' must be inside the workspace/],
    [
      'image-file',
      'deploy/link.env',
      /^::error::Input 'image-file' leads outside the workspace .* through a symbolic link/
    ],
    [
      'image-file',
      'deploy/pw.txt',
      /^::error::Input 'image-file': deploy\/pw.txt|^::error::Input 'image-file': .*pw\.txt: line 1/
    ],
    ['backup-file', '../../etc/passwd', /^::error::Input 'backup-file' must not contain '\.\.'/],
    ['backup-file', '/etc/passwd', /^::error::Input 'backup-file' must be inside 'backup-dir'/],
    [
      'backup-file',
      'elsewhere/.password',
      /^::error::Input 'backup-file' leads outside 'backup-dir' .* through a symbolic link/
    ]
  ])('%s=%s is refused; the file is never echoed; the node untouched', async (input, value, re) => {
    const r = await run(
      input === 'backup-file' ? { operation: 'restore', 'backup-file': value } : { 'image-file': value }
    )
    expect(r.exitCode).toBe(1)
    expect(errors(r)).toEqual([expect.stringMatching(re)])
    expect(r.stdout + r.summary).not.toContain(password)
    await untouched()
  })
})

describe('remote Docker is encrypted', () => {
  let d: TlsDockerd
  beforeAll(async () => {
    d = await startTlsDockerd()
  }, 120_000)
  afterAll(async () => {
    await d?.stop()
  }, 60_000)
  const status = (env: Record<string, string>, more: Record<string, string> = {}) =>
    // backup pings the Engine first, then looks for the container
    runAction(
      {
        operation: 'backup',
        container: 'clr-sec-nowhere',
        'docker-host': d.host,
        'state-dir': join(base, 'tls-state'),
        'backup-dir': join(base, 'tls-backups'),
        ...more
      },
      { env, post: false }
    )

  test('DOCKER_TLS_VERIFY and DOCKER_CERT_PATH: the action talks to the --tlsverify daemon', async () => {
    const r = await status({ DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: d.certPath })
    // the daemon answered over TLS (client certificate accepted): it has no such container
    expect(errors(r)).toEqual([
      expect.stringMatching(/^::error::Input 'container': no container named 'clr-sec-nowhere'/)
    ])
  })
  test('plain HTTP to it fails', async () => {
    const r = await status({})
    expect(errors(r)).toEqual([
      expect.stringMatching(/^::error::cannot reach the Docker Engine at tcp:\/\/127\.0\.0\.1/)
    ])
  })
  test('a CA the daemon does not trust fails', async () => {
    const r = await status({ DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: d.strangerCertPath })
    expect(errors(r)).toEqual([
      expect.stringMatching(/^::error::cannot reach the Docker Engine at tcp:\/\/127\.0\.0\.1/)
    ])
  })
  test('DOCKER_TLS_VERIFY without the certificate files: refused, naming the file', async () => {
    const r = await status({ DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: join(base, 'no-certs') })
    expect(errors(r)).toEqual([expect.stringMatching(/^::error::Input 'docker-host' .*no-certs\/ca\.pem/)])
  })
  test('plain TCP to a remote address needs docker-insecure-tcp; refused before any connection', async () => {
    const r = await runAction(
      { operation: 'status', container: name, 'docker-host': 'tcp://10.255.255.1:2375' },
      { post: false }
    )
    expect(errors(r)).toEqual([
      expect.stringMatching(
        /^::error::Input 'docker-host' tcp:\/\/10\.255\.255\.1:2375 is plain TCP to a remote Docker Engine.*docker-insecure-tcp: true/
      )
    ])
  })
})
