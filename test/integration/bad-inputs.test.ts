// Bad-input sweep: every input of action.yml with malformed values, each run through
// the committed bundle as the runner runs it (main, then post). Each must fail with one clear
// `::error::` naming the input, exit 1, and touch nothing: the node container keeps its id and
// keeps running and writing, no container of a run appears, no journal or host lock is left (for a
// value refused before any host access, the state-dir is not even created), no backup is written.
//
// Rows whose value is well-formed but wrong on this host (no such container, an unreachable DB or
// Docker Engine, a tag the registry lacks) are refused in preflight: same rules, and the message
// names the input or the value. Every row runs with `dry-run: true` unless it is about dry-run
// itself, so an input the action wrongly ignored ends as `planned` (a failed row), never as a
// real upgrade of the node.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { createDb, docker, loadBed, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { runAction, visible, type ActionRun } from '../support/action.js'
import { containerState, startNode, writers } from '../support/node.js'
import { pool } from '../support/pool.js'

const root = resolve(import.meta.dirname, '../..')
const prefix = uniqueName('clr-fm-bad')
const name = `${prefix}-node`
let db: TestDb
let tmp: string
let before: { id: string; image: string; running: boolean }

const WRONG_PASSWORD = 'wrong-secret-4f9c2'
const BAD_IDENTITY = 'AGE-SECRET-KEY-1TOOSHORTSECRET'

interface BadRow {
  input: string
  value: string | (() => string)
  /** the one ::error:: line must match this */
  error: RegExp
  /** refused only after looking at the host (Docker, DB, registry): state-dir may exist, empty */
  preflight?: boolean
  /** other inputs for this row */
  with?: Record<string, string>
  /** text that must never be printed (a secret in the value) */
  secret?: string
  why?: string
}

const named = (input: string) => new RegExp(`^::error::Input '${input}'`)

const ROWS: BadRow[] = [
  // enums
  { input: 'operation', value: 'upgrad', error: named('operation') },
  { input: 'operation', value: 'UPGRADE', error: named('operation') },
  { input: 'operation', value: 'upgrade; status', error: named('operation') },
  { input: 'lock-mode', value: 'lease-lock', error: named('lock-mode') },
  { input: 'lock-mode', value: 'none', error: named('lock-mode'), why: 'a node without a lock cannot be handed off' },
  {
    input: 'lock-mode',
    value: 'advisorylock',
    error: /^::error::No single leader: nobody holds the advisory lock/,
    preflight: true,
    why: 'the node runs in lease mode'
  },
  { input: 'db-rollback', value: 'down', error: named('db-rollback') },
  { input: 'backup-verify', value: 'checksum', error: named('backup-verify') },
  { input: 'finish', value: 'sideways', error: named('finish') },
  { input: 'port-holder', value: 'maybe', error: named('port-holder') },
  // names
  { input: 'container', value: 'bad name!', error: named('container') },
  { input: 'container', value: '-leading-dash', error: named('container') },
  { input: 'container', value: 'a/b', error: named('container') },
  { input: 'container', value: 'two\nlines', error: named('container') },
  {
    input: 'container',
    value: 'clr-fm-no-such-node',
    error: /^::error::Input 'container': no container named 'clr-fm-no-such-node'/,
    preflight: true
  },
  { input: 'standby', value: 'bad name!', error: named('standby') },
  { input: 'standby', value: () => name, error: /^::error::Input 'standby' must name a different container/ },
  {
    input: 'standby',
    value: 'clr-fm-no-such-standby',
    error: /^::error::Input 'standby': no container named 'clr-fm-no-such-standby'/,
    preflight: true
  },
  // references
  { input: 'image', value: 'Bad Image::x', error: named('image') },
  { input: 'image', value: 'smartcontract/Chainlink:2.19.0', error: named('image'), why: 'uppercase repository' },
  { input: 'image', value: 'smartcontract/chainlink:', error: named('image'), why: 'empty tag' },
  { input: 'image', value: 'smartcontract/chainlink:-2.19.0', error: named('image') },
  { input: 'image', value: 'smartcontract/chainlink@sha256:abc', error: named('image'), why: 'short digest' },
  {
    input: 'image',
    value: `smartcontract/chainlink@sha256:${'A'.repeat(64)}`,
    error: named('image'),
    why: 'uppercase digest'
  },
  { input: 'image', value: 'bad_host:5000/x:1', error: named('image') },
  { input: 'image', value: '   ', error: /^::error::Input 'image' is required/ },
  {
    input: 'image',
    value: () => simImage('9.9.9'),
    error: /^::error::Input 'image': cannot pull/,
    preflight: true,
    why: 'tag missing from the registry'
  },
  {
    input: 'image',
    value: () => `${simImage('2.19.0')}@sha256:${'0'.repeat(64)}`,
    error: /^::error::Input 'image': (cannot pull|digest mismatch)/,
    preflight: true
  },
  {
    input: 'image-file',
    value: '/nonexistent/chainlink.env',
    with: { image: '' },
    error: /^::error::Input 'image-file' must be inside the workspace/,
    why: 'outside the workspace'
  },
  { input: 'image-file', value: '../chainlink.env', with: { image: '' }, error: named('image-file') },
  {
    input: 'image-file',
    value: 'missing/chainlink.env',
    with: { image: '' },
    error: /^::error::Input 'image-file': cannot read/,
    preflight: true
  },
  {
    input: 'image-file',
    value: () => join(tmp, 'garbage.env'),
    with: { image: '' },
    error: named('image-file'),
    preflight: true,
    why: 'no reference in the file'
  },
  {
    input: 'image-file',
    value: () => join(tmp, 'bad-ref.env'),
    with: { image: '' },
    error: named('image-file'),
    preflight: true,
    why: 'a malformed reference in the file'
  },
  {
    input: 'image-file',
    value: () => tmp,
    with: { image: '' },
    error: /^::error::Input 'image-file': cannot read .*: EISDIR/,
    preflight: true,
    why: 'a directory'
  },
  {
    input: 'image-file',
    value: () => join(tmp, 'good.env'),
    error: /^::error::Input 'image-file' cannot be combined with 'image'/
  },
  // URLs
  { input: 'database-url', value: 'mysql://bed:pw@127.0.0.1/x', error: named('database-url') },
  {
    input: 'database-url',
    value: `postgres://bed:${WRONG_PASSWORD}@[not-a-host/x`,
    error: named('database-url'),
    secret: WRONG_PASSWORD
  },
  { input: 'database-url', value: 'not a url', error: named('database-url') },
  {
    input: 'database-url',
    value: () => `postgres://bed:${WRONG_PASSWORD}@127.0.0.1:${loadBed().pg.port}/${db.name}?sslmode=disable`,
    error: /^::error::.*(database-url|database).*password authentication failed/,
    preflight: true,
    secret: WRONG_PASSWORD,
    why: 'wrong password'
  },
  {
    input: 'database-url',
    value: () =>
      `postgres://bed:${encodeURIComponent(loadBed().pg.password)}@127.0.0.1:${loadBed().pg.port}/clr_fm_no_such_db?sslmode=disable`,
    error:
      /^::error::cannot connect to the node's database: database "clr_fm_no_such_db" does not exist.*input 'database-url'/,
    preflight: true,
    why: 'no such database'
  },
  {
    input: 'database-url',
    value: 'postgres://bed:x@127.0.0.1:1/x',
    error: /^::error::.*(database-url|database).*(ECONNREFUSED|connect)/,
    preflight: true,
    why: 'nothing listens'
  },
  { input: 'health-url', value: 'not a url', error: named('health-url') },
  { input: 'health-url', value: 'ftp://127.0.0.1/', error: named('health-url') },
  { input: 'health-url', value: 'http//127.0.0.1:6688', error: named('health-url') },
  { input: 'remote-health-url', value: 'not a url', error: named('remote-health-url') },
  { input: 'remote-health-url', value: 'ftp://10.0.2.7/', error: named('remote-health-url') },
  { input: 'docker-host', value: '/var/run/docker.sock', error: named('docker-host'), why: 'no scheme' },
  { input: 'docker-host', value: 'docker.sock', error: named('docker-host') },
  {
    input: 'docker-host',
    value: 'tcp://10.255.255.1:2375',
    error: /^::error::Input 'docker-host' .*plain TCP to a remote Docker Engine/,
    why: 'plain TCP to a remote host without docker-insecure-tcp'
  },
  { input: 'docker-insecure-tcp', value: 'maybe', error: named('docker-insecure-tcp') },
  { input: 'allowed-repositories', value: 'smartcontract/chainlink:2.19.0', error: named('allowed-repositories') },
  {
    input: 'allowed-repositories',
    value: 'ghcr.io/acme/*',
    with: { image: 'evil.example.com/chainlink:2.19.0' },
    error: /^::error::Input 'allowed-repositories': the target evil\.example\.com\/chainlink is not the repository/,
    preflight: true,
    why: 'a target from another repository than the one listed or run'
  },
  { input: 'backup-secrets-plain', value: 'maybe', error: named('backup-secrets-plain') },
  {
    input: 'docker-host',
    value: 'tcp://127.0.0.1:1',
    error: /^::error::.*(docker-host|Docker Engine).*(ECONNREFUSED|127\.0\.0\.1:1)/,
    preflight: true,
    why: 'nothing listens'
  },
  // durations
  { input: 'stop-timeout', value: '10 parsecs', error: named('stop-timeout') },
  { input: 'stop-timeout', value: '-1s', error: named('stop-timeout') },
  { input: 'stop-timeout', value: '500ms', error: named('stop-timeout'), why: 'below the 1 s minimum' },
  { input: 'stop-timeout', value: '1h30m', error: named('stop-timeout'), why: 'compound durations are not accepted' },
  { input: 'standby-timeout', value: 'abc', error: named('standby-timeout') },
  { input: 'standby-timeout', value: '0', error: named('standby-timeout') },
  { input: 'ready-timeout', value: '10S', error: named('ready-timeout') },
  { input: 'ready-timeout', value: '0.5', error: named('ready-timeout') },
  { input: 'stable-for', value: 'forever', error: named('stable-for') },
  { input: 'stable-for', value: '-2s', error: named('stable-for') },
  { input: 'stable-for', value: '2s\n3s', error: named('stable-for') },
  { input: 'lock-timeout', value: 'soon', error: named('lock-timeout') },
  { input: 'lock-timeout', value: '1e3', error: named('lock-timeout') },
  { input: 'retry-quarantined', value: 'maybe', error: named('retry-quarantined') },
  { input: 'allow-downgrade', value: 'maybe', error: named('allow-downgrade') },
  { input: 'window', value: 'weekdays 8-18', error: named('window'), why: 'unknown day' },
  { input: 'window', value: 'Mon-Fri 08:00-18:00 Nowhere/City', error: named('window'), why: 'unknown time zone' },
  { input: 'rehearse-migration', value: 'maybe', error: named('rehearse-migration') },
  {
    input: 'rehearse-migration',
    value: 'true',
    with: { backup: 'false' },
    error: named('rehearse-migration'),
    why: 'needs the pre-upgrade backup'
  },
  { input: 'webhook-url', value: 'hooks.example.com/x', error: named('webhook-url'), why: 'no scheme' },
  {
    input: 'webhook-url',
    value: 'ftp://user:wh-secret-77@hooks.example.com/x',
    error: named('webhook-url'),
    secret: 'wh-secret-77',
    why: 'not http(s); the URL is a secret'
  },
  // booleans
  { input: 'rollback', value: 'maybe', error: named('rollback') },
  { input: 'prefer-primary', value: 'sometimes', error: named('prefer-primary') },
  { input: 'backup', value: '2', error: named('backup') },
  { input: 'stop-node', value: 'perhaps', error: named('stop-node') },
  { input: 'restore-other-node', value: 'perhaps', error: named('restore-other-node') },
  { input: 'db-copy-unchecked', value: 'perhaps', error: named('db-copy-unchecked') },
  { input: 'dry-run', value: 'perhaps', error: named('dry-run') },
  { input: 'allow-other-updaters', value: 'perhaps', error: named('allow-other-updaters') },
  // numbers
  { input: 'backup-keep', value: '0', error: named('backup-keep') },
  { input: 'backup-keep', value: '-1', error: named('backup-keep') },
  { input: 'backup-keep', value: 'seven', error: named('backup-keep') },
  { input: 'backup-keep', value: '1.5', error: named('backup-keep') },
  // keys
  { input: 'backup-recipient', value: 'age1short', error: named('backup-recipient') },
  { input: 'backup-recipient', value: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB', error: named('backup-recipient') },
  { input: 'backup-identity', value: BAD_IDENTITY, error: named('backup-identity'), secret: BAD_IDENTITY },
  // paths
  { input: 'backup-dir', value: 'relative/backups', error: named('backup-dir') },
  { input: 'backup-file', value: '../outside.dump', error: named('backup-file') },
  { input: 'backup-file', value: '/etc/passwd', error: named('backup-file'), why: 'outside backup-dir' },
  { input: 'state-dir', value: 'relative/state', error: named('state-dir') }
]

/** Inputs of action.yml the committed bundle reads at all (an input added to action.yml but not yet bundled is skipped). */
const bundle = readFileSync(join(root, 'dist/index.js'), 'utf8')
const bundleReads = (input: string) => bundle.includes(`'${input}'`) || bundle.includes(`"${input}"`)
const declared = Object.keys(
  (parseYaml(readFileSync(join(root, 'action.yml'), 'utf8')) as { inputs: Record<string, unknown> }).inputs
)

beforeAll(async () => {
  db = await createDb('fmbad')
  tmp = mkdtempSync(join(tmpdir(), 'clr-fm-bad-'))
  writeFileSync(join(tmp, 'garbage.env'), 'nothing to see here\n')
  writeFileSync(join(tmp, 'bad-ref.env'), 'CHAINLINK_IMAGE=Smartcontract/Chainlink::2.19.0\n')
  writeFileSync(join(tmp, 'good.env'), `CHAINLINK_IMAGE=${simImage('2.19.0')}\n`)
  await startNode({ name, tag: '2.18.0', db, layout: 'bridge' })
  before = (await containerState(name))!
})

afterAll(async () => {
  await removeContainers(prefix)
  await db?.drop()
})

/** What the runner shows: `::add-mask::` registers a secret, every later line shows it as ***. */
function runnerView(stdout: string): string {
  const masks: string[] = []
  const out: string[] = []
  for (const line of stdout.split('\n')) {
    if (line.startsWith('::add-mask::')) {
      const m = line.slice('::add-mask::'.length)
      if (m) masks.push(m)
      continue
    }
    out.push(masks.reduce((l, m) => l.split(m).join('***'), line))
  }
  return out.join('\n')
}

/** Rows run side by side (each is its own run of the bundle with its own state-dir and backup-dir,
 *  and must change nothing): the preflight rows first, as they wait on the host (the Docker
 *  Engine that is not there is waited out for 90 s, src/docker/daemon-wait.ts). */
const slot = pool(6)
const inOrder = [...ROWS].sort((a, b) => Number(!!b.preflight) - Number(!!a.preflight))

let n = 0
async function runBad(row: BadRow): Promise<{ run: ActionRun; stateDir: string; backupDir: string }> {
  const dir = join(tmp, `row-${++n}`)
  const stateDir = join(dir, 'state')
  const backupDir = join(dir, 'backups')
  const value = typeof row.value === 'function' ? row.value() : row.value
  const inputs: Record<string, string> = {
    operation: 'upgrade',
    container: name,
    image: simImage('2.19.0'),
    'state-dir': stateDir,
    'backup-dir': backupDir,
    'stable-for': '2s',
    ...(row.input === 'dry-run' ? {} : { 'dry-run': 'true' }),
    ...(row.with ?? {}),
    [row.input]: value
  }
  const run = await runAction(inputs, { env: { GITHUB_WORKSPACE: tmp } })
  return { run, stateDir, backupDir }
}

describe('bad inputs: one clear error naming the input, exit 1, nothing touched', () => {
  test('every input of action.yml has at least one malformed value in the table', () => {
    const covered = new Set(ROWS.map((r) => r.input))
    expect(declared.filter((i) => !covered.has(i))).toEqual([])
  })

  for (const row of inOrder) {
    const label = `${row.input}: ${JSON.stringify(typeof row.value === 'function' ? `(${row.why ?? 'computed'})` : row.value)}${row.why && typeof row.value !== 'function' ? ` (${row.why})` : ''}${row.preflight ? ' [preflight]' : ''}`
    if (!bundleReads(row.input)) {
      test.skip(`${label} (skipped: dist/index.js does not read '${row.input}' yet; rebuild the bundle)`, () =>
        undefined)
      continue
    }
    test.concurrent(label, () => slot(() => checkBad(row, label)))
  }

  async function checkBad(row: BadRow, label: string) {
    const { run, stateDir, backupDir } = await runBad(row)
    const out = visible(run.stdout)
    try {
      expect(run.exitCode).toBe(1)
      const errors = out.split('\n').filter((l) => l.startsWith('::error::'))
      expect(errors).toHaveLength(1)
      expect(errors[0]).toMatch(row.error)
      // clear: a sentence, not a stack trace; and no secret echoed
      expect(out).not.toMatch(/^\s+at .+\(.+:\d+:\d+\)$/m)
      if (row.secret) expect(runnerView(run.stdout)).not.toContain(row.secret)
      expect(run.outputs.result ?? 'failed').toBe('failed')
      // nothing touched on the host
      const st = await containerState(name)
      expect(st).toEqual(before)
      const ours = (await docker.listContainers({ all: true })).filter((c) =>
        c.Names.some((x) => x.startsWith(`/${name}-`))
      )
      expect(ours.map((c) => c.Names[0])).toEqual([])
      if (row.preflight) {
        if (existsSync(stateDir)) expect(readdirSync(stateDir)).toEqual([])
      } else {
        expect(existsSync(stateDir)).toBe(false)
      }
      expect(existsSync(backupDir) ? readdirSync(backupDir) : []).toEqual([])
      expect(out).not.toMatch(/--- post ---[\s\S]*repair/)
    } catch (e) {
      process.stderr.write(
        `--- ${label} ---\nexit ${run.exitCode}, outputs ${JSON.stringify(run.outputs)}\n${out.split('\n').slice(-25).join('\n')}\n`
      )
      throw e
    }
  }

  test('the node kept leading and writing through the whole sweep', async () => {
    expect(await containerState(name)).toEqual(before)
    const w = await writers(db)
    expect(w.writers).toHaveLength(1)
    expect(w.interleaved).toBe(false)
  })
})
