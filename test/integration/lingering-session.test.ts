// A DB session left on the server by a node process that is gone (issue 21, the fault campaign's
// seed 2026 run 5, docs/reliability.md): a node whose network was cut when its process died
// never closed its connections, and the server keeps them until TCP keepalive ends them (hours).
// Such a session belongs to a container of the node that has exited (or restarted since): it is
// not "another node", and a rollback or a repair that needs a quiet DB ends it and says so,
// where before they refused and left the node down on the new version's migrations.
import { afterAll, afterEach, describe, expect, test } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb, docker, removeContainers, simImage, sleep, uniqueName, type TestDb } from '../support/bed.js'
import { atLine, runAction, visible, type ActionRun, type RunOptions } from '../support/action.js'
import { containerState, nodeUrl, readyz, startNode, waitReady, writers } from '../support/node.js'

const prefix = uniqueName('clr-ls')
let n = 0
let db: TestDb
let name: string
let stateDir: string

afterAll(async () => {
  await removeContainers(prefix)
})
afterEach(async () => {
  await removeContainers(name)
  await db?.drop()
})

async function sessionsOf(): Promise<{ pid: number; app: string; addr: string | null }[]> {
  const c = await db.client()
  try {
    const r = await c.query(
      `SELECT pid, application_name AS app, host(client_addr) AS addr FROM pg_stat_activity
        WHERE datname = current_database() AND application_name LIKE 'Chainlink %|App|%'`
    )
    return r.rows.map((x) => ({ pid: x.pid, app: String(x.app).split('|App|')[1], addr: x.addr }))
  } finally {
    await c.end()
  }
}

/**
 * The node's process dies with its network cut, as in the campaign's run: paused first (its
 * kernel still acknowledges what the server sent, so the server has nothing left to retransmit
 * and no reset can come back), cut from its networks, killed, reconnected and started again. The
 * server keeps the dead process's sessions. Returns its app id.
 */
async function killBehindCut(): Promise<string> {
  const c = docker.getContainer(name)
  const info = await c.inspect()
  const nets = Object.keys(info.NetworkSettings.Networks)
  const old = [...new Set((await sessionsOf()).map((s) => s.app))]
  expect(old).toHaveLength(1)
  await c.pause()
  await sleep(300)
  for (const net of nets) await docker.getNetwork(net).disconnect({ Container: info.Id, Force: true })
  await c.kill()
  await c.wait()
  for (const net of nets) await docker.getNetwork(net).connect({ Container: info.Id })
  await c.start()
  // the new process waits for the dead one's lease to run out (3 s), then leads
  await waitReady({ name }, 60_000)
  const now = await sessionsOf()
  expect(now.filter((s) => s.app === old[0]).length).toBeGreaterThan(0)
  expect(new Set(now.map((s) => s.app)).size).toBe(2)
  return old[0]
}

async function fresh() {
  db = await createDb('ls')
  name = `${prefix}-${++n}`
  stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
  await startNode({ name, tag: '2.18.0', db, layout: 'ports' })
  const c = await db.client()
  await c.query(`CREATE TABLE operator_marker (note text); INSERT INTO operator_marker VALUES ('before the upgrade')`)
  await c.end()
}

function upgrade(tag: string, extra: Record<string, string> = {}, runOpts: RunOptions = {}): Promise<ActionRun> {
  return runAction(
    {
      operation: 'upgrade',
      container: name,
      image: simImage(tag),
      'state-dir': stateDir,
      'backup-dir': join(stateDir, 'backups'),
      'stable-for': '2s',
      ...extra
    },
    runOpts
  )
}

async function dbState() {
  const c = await db.client()
  try {
    const goose = (await c.query(`SELECT max(version_id)::int AS v FROM goose_migrations WHERE is_applied`)).rows[0].v
    const nodeVersions = (await c.query(`SELECT version FROM node_versions`)).rows.map((x) => x.version)
    const marker = (await c.query(`SELECT note FROM operator_marker`)).rows.map((x) => x.note)
    return { goose, nodeVersions, marker }
  } finally {
    await c.end()
  }
}

async function expectServing(tag: string) {
  const st = await containerState(name)
  expect(st?.running).toBe(true)
  expect(st?.image).toBe(simImage(tag))
  expect(await readyz((await nodeUrl(name))!)).toBe(200)
  const others = (await docker.listContainers({ all: true })).filter((c) =>
    c.Names.some((x) => x.startsWith(`/${name}-`))
  )
  expect(others.map((c) => c.Names[0])).toEqual([])
  expect((await writers(db)).interleaved).toBe(false)
}

describe('a session of an exited process of the node lingers on the server', () => {
  test('a bad upgrade rolls back: the dead session is ended, named, and the old version leads on an un-migrated DB', async () => {
    await fresh()
    const dead = await killBehindCut()
    // 2.20.0 migrates (goose 241 -> 256) and crashes: the gate fails, `db rollback` is needed
    const r = await upgrade('2.20.0-migrate-then-crash')
    const out = visible(r.stdout)
    expect(out).not.toMatch(/another node runs on this database|node sessions remain/)
    expect(out).toMatch(new RegExp(`ended .*session.* of app ${dead}.*exited`))
    expect(r.outputs.result).toBe('rolled-back')
    expect(r.exitCode).toBe(1)
    expect(r.outputs.image).toBe(simImage('2.18.0'))
    await expectServing('2.18.0')
    expect((await dbState()).goose).toBe(241)
    expect((await sessionsOf()).some((s) => s.app === dead)).toBe(false)
  })

  test('the runner dies during the rollback: repair ends the dead session and finishes it', async () => {
    await fresh()
    const dead = await killBehindCut()
    // killed once the rollback stopped every container, before the DB is touched
    const r = await upgrade(
      '2.20.0-migrate-then-crash',
      {},
      { post: false, cancelSignal: 'SIGKILL', cancelWhen: atLine('database moved: ') }
    )
    expect(r.killed).toBe(true)
    expect((await sessionsOf()).some((s) => s.app === dead)).toBe(true)
    const rep = await runAction({ operation: 'repair', container: name, 'state-dir': stateDir })
    const out = visible(rep.stdout)
    expect(out).not.toMatch(/another node runs on this database|node sessions remain/)
    expect(out).toMatch(new RegExp(`ended .*session.* of app ${dead}`))
    expect(rep.outputs.result).toBe('rolled-back')
    await expectServing('2.18.0')
    expect(await dbState()).toEqual({ goose: 241, nodeVersions: ['2.18.0'], marker: ['before the upgrade'] })
  })

  test('a restore with stop-node ends the dead session too, and the node leads on the backup', async () => {
    await fresh()
    const b = await runAction({
      operation: 'backup',
      container: name,
      'state-dir': stateDir,
      'backup-dir': join(stateDir, 'backups')
    })
    expect(b.outputs.result).toBe('ok')
    const dead = await killBehindCut()
    const c = await db.client()
    await c.query(`INSERT INTO operator_marker VALUES ('after the backup')`)
    await c.end()
    const r = await runAction({
      operation: 'restore',
      container: name,
      'state-dir': stateDir,
      'backup-dir': join(stateDir, 'backups'),
      'backup-file': b.outputs['backup-file'],
      'stop-node': 'true'
    })
    const out = visible(r.stdout)
    expect(out).not.toMatch(/another node runs on this database|node sessions remain/)
    expect(out).toMatch(new RegExp(`ended .*session.* of app ${dead}`))
    expect(r.exitCode).toBe(0)
    await expectServing('2.18.0')
    expect((await dbState()).marker).toEqual(['before the upgrade'])
  })

  test('a session of a running container that is not the node stays a refusal, named', async () => {
    await fresh()
    // a second node on the DB, running: the docs' failover secondary not named as standby
    const other = `${name}-other`
    await startNode({ name: other, tag: '2.18.0', db, layout: 'ports', noWait: true })
    await sleep(2000)
    const r = await upgrade('2.20.0-migrate-then-crash')
    expect(visible(r.stdout)).toMatch(new RegExp(`Another node runs on this database.*'${other}'`))
    expect(r.outputs.result).toBe('failed')
    expect((await containerState(name))?.running).toBe(true)
    expect((await containerState(other))?.running).toBe(true)
  })
})
