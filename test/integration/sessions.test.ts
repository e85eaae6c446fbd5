// Finding the node where addresses do not tell containers apart, and proving the health URL
// before anything changes. The DB is reached through a TCP relay on the host, so the database
// sees every session from one address (as behind NAT or a pooler); leaders whose boot line left
// the log; a leader whose HTTP server listens on 127.0.0.1 inside its container; a DB URL that
// names host.docker.internal through an --add-host host-gateway entry.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createDb,
  docker,
  dockerCli,
  loadBed,
  removeContainers,
  simImage,
  uniqueName,
  waitFor,
  type TestDb
} from '../support/bed.js'
import { runAction, visible, type ActionRun } from '../support/action.js'
import { containerState, nodeUrl, readyz, startNode, waitReady, writers, type Layout } from '../support/node.js'
import { startRelay, type Relay } from '../support/relay.js'

const prefix = uniqueName('clr-sess')
let n = 0
let db: TestDb
let relay: Relay
let stateDir: string

beforeAll(async () => {
  relay = await startRelay()
})
afterAll(async () => {
  await removeContainers(prefix)
  await relay?.close()
})
afterEach(async () => {
  await removeContainers(prefix)
  await db?.drop()
})

async function fresh(): Promise<string> {
  db = await createDb('sess')
  stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
  return `${prefix}-${++n}`
}

/** The test DB as the node sees it through the relay. */
const viaRelay = (d: TestDb): TestDb => ({ ...d, url: relay.url(d.url), bridgeUrl: relay.bridgeUrl(d.url) })

function act(inputs: Record<string, string>): Promise<ActionRun> {
  return runAction({
    'state-dir': stateDir,
    'backup-dir': join(stateDir, 'backups'),
    'stable-for': '2s',
    ...inputs
  })
}

/** The premise of these tests: the database sees one client address for every node session. */
async function nodeClientAddrs(): Promise<string[]> {
  const c = await db.client()
  try {
    const r = await c.query<{ a: string | null }>(
      `SELECT DISTINCT host(client_addr) AS a FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'Chainlink %|App|%'`
    )
    return r.rows.map((x) => String(x.a))
  } finally {
    await c.end()
  }
}

async function expectLeader(name: string, tag: string) {
  const st = await containerState(name)
  expect(st?.running).toBe(true)
  expect(st?.image).toBe(simImage(tag))
  expect(await readyz((await nodeUrl(name))!)).toBe(200)
  expect((await writers(db)).interleaved).toBe(false)
}

/** Pushes the boot line ("Chainlink booted ... appID=...") out of the last 2000 log lines. */
function fillLog(name: string, lines = 2500) {
  dockerCli(
    'exec',
    name,
    '/usr/local/bin/node',
    '-e',
    `require('fs').writeFileSync('/proc/1/fd/1', Array.from({length:${lines}}, (_, i) => '[INFO] sim filler line ' + i + ' logger=Filler').join('\\n') + '\\n')`
  )
}

describe('the DB through a relay: every session from one address', () => {
  test.each<[Layout]>([['ports'], ['host']])('%s layout: upgrade ends upgraded', async (layout) => {
    const name = await fresh()
    await startNode({ name, tag: '2.18.0', db: viaRelay(db), layout })
    expect(await nodeClientAddrs()).toEqual(['127.0.0.1'])
    const r = await act({ operation: 'upgrade', container: name, image: simImage('2.19.0') })
    expect(visible(r.stdout)).not.toContain('bed-test-password')
    expect(r.outputs.result).toBe('upgraded')
    expect(r.exitCode).toBe(0)
    expect(r.summary).toMatch(/standby-ready/)
    await expectLeader(name, '2.19.0')
  })

  test('a pair (standby input): upgrade ends upgraded', async () => {
    const primary = await fresh()
    const secondary = `${primary}-s`
    await startNode({ name: primary, tag: '2.18.0', db: viaRelay(db), layout: 'ports' })
    await startNode({ name: secondary, tag: '2.18.0', db: viaRelay(db), layout: 'ports', noWait: true })
    await waitFor('both nodes connected', async () => (await nodeClientAddrs()).length === 1 && (await twoApps()))
    expect(await nodeClientAddrs()).toEqual(['127.0.0.1'])
    const r = await act({ operation: 'upgrade', container: primary, standby: secondary, image: simImage('2.19.0') })
    expect(r.outputs.result).toBe('upgraded')
    expect(r.exitCode).toBe(0)
    const leader = r.outputs.leader
    expect([primary, secondary]).toContain(leader)
    await expectLeader(leader, '2.19.0')
    const other = leader === primary ? secondary : primary
    expect((await containerState(other))?.running).toBe(true)
  })

  test('preflight finds a leader whose boot line left the log (status names it)', async () => {
    const name = await fresh()
    await startNode({ name, tag: '2.18.0', db: viaRelay(db), layout: 'ports' })
    fillLog(name)
    const tail = dockerCli('logs', '--tail', '2000', name)
    expect(tail).not.toMatch(/appID=/)
    const r = await act({ operation: 'status', container: name })
    expect(r.exitCode).toBe(0)
    expect(r.outputs.leader).toBe(name)
  })
})

async function twoApps(): Promise<boolean> {
  const c = await db.client()
  try {
    const r = await c.query<{ n: number }>(
      `SELECT count(DISTINCT application_name)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'Chainlink %|App|%'`
    )
    return r.rows[0].n === 2
  } finally {
    await c.end()
  }
}

describe('the health URL is proven before anything changes', () => {
  test('a leader whose HTTP listens on 127.0.0.1 in its container is refused, naming health-url', async () => {
    const name = await fresh()
    const node = await startNode({
      name,
      tag: '2.18.0',
      db,
      layout: 'ports',
      env: { CL_CONFIG: '[WebServer]\nListenIP = "127.0.0.1"\n' },
      noWait: true
    })
    await waitFor('the leader serving on 127.0.0.1 in its container', async () =>
      dockerCli('logs', name).includes('Listening and serving HTTP on 127.0.0.1:6688')
    )
    const before = await containerState(name)
    const r = await act({ operation: 'upgrade', container: name, image: simImage('2.19.0') })
    expect(r.exitCode).not.toBe(0)
    expect(visible(r.stdout)).toMatch(
      /::error::Input 'health-url': http:\/\/172\.[0-9.]+:6688\/(public-)?readyz of the leader/
    )
    // nothing changed: the same container, running, on its image, nothing else of ours
    expect(await containerState(name)).toEqual(before)
    const ours = (await docker.listContainers({ all: true })).filter((c) =>
      c.Names.some((x) => x.startsWith(`/${name}`))
    )
    expect(ours.map((c) => c.Id)).toEqual([node.id])
  })

  test('health-url as a form ({port}) is used for every container: the docs layout upgrades', async () => {
    const name = await fresh()
    await startNode({ name, tag: '2.18.0', db, layout: 'ports' })
    const r = await act({
      operation: 'upgrade',
      container: name,
      image: simImage('2.19.0'),
      'health-url': 'http://127.0.0.1:{port}'
    })
    expect(r.outputs.result).toBe('upgraded')
    await expectLeader(name, '2.19.0')
  })
})

describe('the DB URL resolved as the container resolves it', () => {
  test('URL only in the secrets TOML, naming host.docker.internal (--add-host host-gateway): upgraded', async () => {
    const name = await fresh()
    const bed = loadBed()
    const dir = mkdtempSync(join(tmpdir(), 'clr-secrets-'))
    chmodSync(dir, 0o755)
    const u = new URL(db.url)
    u.hostname = 'host.docker.internal'
    writeFileSync(join(dir, 'secrets.toml'), `[Database]\nURL = '${u.toString()}'\n`, { mode: 0o644 })
    const c = await docker.createContainer({
      name,
      Image: simImage('2.18.0'),
      Cmd: ['node', '-secrets', '/chainlink/secrets.toml', 'start'],
      Env: ['LEASE_LOCK_DURATION=3s', 'LEASE_LOCK_REFRESH_INTERVAL=500ms'],
      Labels: { 'test.chainlink-rollout': 'yes' },
      ExposedPorts: { '6688/tcp': {} },
      HostConfig: {
        RestartPolicy: { Name: 'unless-stopped' },
        Binds: [`${dir}:/chainlink:ro`],
        ExtraHosts: ['host.docker.internal:host-gateway'],
        PortBindings: { '6688/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] }
      }
    })
    await c.start()
    await waitReady({ name })
    const r = await act({ operation: 'upgrade', container: name, image: simImage('2.19.0') })
    expect(visible(r.stdout)).not.toContain('bed-test-password')
    expect(visible(r.stdout)).toContain(`database host 'host.docker.internal' is ${bed.gateway} in the container`)
    expect(r.outputs.result).toBe('upgraded')
    await expectLeader(name, '2.19.0')
  })
})
