// Safety of the node's data and uptime under settings and layouts that used to end with the node
// down or its DB rewritten under a live node, run as the runner runs the action against the
// real bed. Each block is one defect; its tests fail without the fix.
import { describe, expect, test } from '@jest/globals'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { createServer, type Server } from 'node:net'
import { generateIdentity, identityToRecipient } from 'age-encryption'
import pg from 'pg'
import { docker, loadBed, simImage, type TestDb } from '../support/bed.js'
import { runAction, visible, type ActionRun, type RunOptions } from '../support/action.js'
import { runFaulted } from '../support/fault.js'
import { atLine } from '../support/action.js'
import { containerState, nodeUrl, readyz, startNode, writers, type Layout, type StartOptions } from '../support/node.js'
import { oneNodePerTest, upgradeNode } from '../support/one-node.js'

const one = oneNodePerTest('clr-safe', 'safe')
let db: TestDb | undefined
let name: string
let stateDir: string

async function fresh(layout: Layout, tag = '2.18.0', opts: Partial<StartOptions> = {}) {
  ;({ db, name, stateDir } = await one.fresh({ tag, layout, ...opts }))
}

const upgrade = (tag: string, extra: Record<string, string> = {}, runOpts: RunOptions = {}): Promise<ActionRun> =>
  upgradeNode({ name, stateDir }, tag, extra, runOpts)

/** Containers of ours beside the node (name-prefixed), by name. */
async function leftovers(): Promise<string[]> {
  return (await docker.listContainers({ all: true }))
    .flatMap((c) => c.Names.map((x) => x.replace(/^\//, '')))
    .filter((x) => x.startsWith(`${name}-`))
}

/** One leader, named as before, serving on `tag`, nothing of the run left, never two writers. */
async function expectSingleLeader(tag: string) {
  const st = await containerState(name)
  expect(st?.running).toBe(true)
  expect(st?.image).toBe(simImage(tag))
  expect(await readyz((await nodeUrl(name))!)).toBe(200)
  expect(await leftovers()).toEqual([])
  const w = await writers(db!)
  expect(w.interleaved).toBe(false)
  return w
}

const errorLines = (r: ActionRun) =>
  visible(r.stdout)
    .split('\n')
    .filter((l) => l.startsWith('::error::'))

describe('impossible rollback settings are refused before anything changes', () => {
  async function refused(extra: Record<string, string>, message: RegExp) {
    await fresh('bridge')
    const before = await containerState(name)
    const r = await upgrade('2.20.0-migrate-then-crash', { 'db-rollback': 'restore', ...extra })
    expect(r.exitCode).toBe(1)
    expect(errorLines(r)[0]).toMatch(message)
    // nothing changed: same container running, no run containers, no journal, no backup
    expect(await containerState(name)).toEqual(before)
    expect(await leftovers()).toEqual([])
    expect(readdirSync(stateDir).filter((f) => f.endsWith('.journal.json'))).toEqual([])
    expect(existsSync(join(stateDir, 'backups'))).toBe(false)
    expect((await writers(db!)).writers.length).toBe(1)
  }

  test('db-rollback: restore with backup: false names both inputs', async () => {
    await refused({ backup: 'false' }, /^::error::Input 'db-rollback'.*'backup' is false/)
  })

  test('db-rollback: restore with encrypted backups and no identity names backup-identity', async () => {
    const recipient = await identityToRecipient(await generateIdentity())
    await refused({ 'backup-recipient': recipient }, /^::error::Input 'backup-identity' is required/)
  })

  test("db-rollback: restore with an identity that is not the recipient's key", async () => {
    const recipient = await identityToRecipient(await generateIdentity())
    const other = await generateIdentity()
    await refused(
      { 'backup-recipient': recipient, 'backup-identity': other },
      /^::error::Input 'backup-identity' is not the secret key of 'backup-recipient'/
    )
  })

  test('db-rollback: restore with encrypted backups and the identity: a failed upgrade is rolled back', async () => {
    await fresh('bridge')
    const identity = await generateIdentity()
    const r = await upgrade('2.20.0-migrate-then-crash', {
      'db-rollback': 'restore',
      'backup-recipient': await identityToRecipient(identity),
      'backup-identity': identity
    })
    expect(r.outputs.result).toBe('rolled-back')
    expect(r.exitCode).toBe(1)
    expect(r.summary).toMatch(/restored from the pre-upgrade backup/)
    await expectSingleLeader('2.18.0')
  })
})

describe('a `docker run --rm` leader', () => {
  const rm = { restart: 'no', hostConfig: { AutoRemove: true } }

  test.each<[Layout, string]>([
    ['ports', 'swap'],
    ['bridge', 'swap']
  ])('%s layout: a good upgrade ends upgraded, one leader on the new image', async (layout, finish) => {
    await fresh(layout, '2.18.0', rm)
    const r = await upgrade('2.19.0', { finish })
    expect(r.outputs.result).toBe('upgraded')
    expect(r.exitCode).toBe(0)
    await expectSingleLeader('2.19.0')
  })

  test('a bad upgrade ends rolled-back: the previous container leads again, named as before', async () => {
    await fresh('bridge', '2.18.0', rm)
    const r = await upgrade('2.20.0-never-ready', { 'ready-timeout': '8s' })
    expect(r.outputs.result).toBe('rolled-back')
    expect(r.exitCode).toBe(1)
    const w = await expectSingleLeader('2.18.0')
    expect(w.versions.at(-1)).toBe('2.18.0')
  })
})

describe('a clone that was created but failed to start', () => {
  test('second handoff: the final container cannot bind the original port; rolled back, nothing left', async () => {
    await fresh('ports')
    const port = (await docker.getContainer(name).inspect()).HostConfig.PortBindings['6688/tcp'][0].HostPort
    let squatter: Server | undefined
    // once the leader stopped (its port free), take the port; give it back when the rollback starts
    const r = await runFaulted(
      {
        operation: 'upgrade',
        container: name,
        image: simImage('2.19.0'),
        finish: 'second-handoff',
        'state-dir': stateDir,
        'backup-dir': join(stateDir, 'backups'),
        'stable-for': '2s'
      },
      [
        {
          when: atLine(`${name} stopped`),
          do: async () => {
            squatter = await occupy(Number(port))
          }
        },
        { when: atLine('rollback'), do: () => void squatter?.close() }
      ]
    )
    await r.faultsDone
    expect(r.outputs.result).toBe('rolled-back')
    expect(r.exitCode).toBe(1)
    await expectSingleLeader('2.18.0')
    expect(await readyz(`http://127.0.0.1:${port}`)).toBe(200)
  })
})

/** Listens on 127.0.0.1:port as soon as it is free (within 20 s). */
async function occupy(port: number): Promise<Server> {
  const end = Date.now() + 20_000
  for (;;) {
    try {
      return await new Promise<Server>((res, rej) => {
        // the action's port watcher connects here: never answer, never keep a connection
        const s = createServer((sock) => sock.destroy())
        s.once('error', rej)
        s.listen({ host: '127.0.0.1', port }, () => res(s))
      })
    } catch (e) {
      if (Date.now() > end) throw e
      await new Promise((r) => setTimeout(r, 20))
    }
  }
}

describe('the host lock and the journal belong to the node', () => {
  test('container a, standby b and container b, standby a at once: one waits, then finds nothing to do', async () => {
    ;({ db, name, stateDir } = await one.claim())
    const a = `${name}-a`
    const b = `${name}-b`
    await startNode({ name: a, tag: '2.18.0', db, layout: 'bridge' })
    await startNode({ name: b, tag: '2.18.0', db, layout: 'bridge', noWait: true })
    const run = (container: string, standby: string) =>
      runAction({
        operation: 'upgrade',
        container,
        standby,
        image: simImage('2.19.0'),
        'state-dir': stateDir,
        'backup-dir': join(stateDir, 'backups'),
        'stable-for': '2s'
      })
    const [x, y] = await Promise.all([run(a, b), new Promise((r) => setTimeout(r, 300)).then(() => run(b, a))])
    expect([x.outputs.result, y.outputs.result].sort()).toEqual(['unchanged', 'upgraded'])
    expect(x.stdout + y.stdout).toMatch(/Waiting for the host lock/)
    for (const c of [a, b]) expect((await containerState(c))?.image).toBe(simImage('2.19.0'))
    expect((await writers(db)).interleaved).toBe(false)
  })
})

describe('nothing rewrites the DB under a live node', () => {
  test('restore with stop-node while a node the inputs do not name leads: refused, naming its session', async () => {
    await fresh('bridge')
    const b = await runAction({
      operation: 'backup',
      container: name,
      'state-dir': stateDir,
      'backup-dir': join(stateDir, 'backups')
    })
    expect(b.exitCode).toBe(0)
    await docker.getContainer(name).stop({ t: 10 })
    const other = `${name}-other`
    await startNode({ name: other, tag: '2.18.0', db: db!, layout: 'bridge' })
    const count = async () => {
      const c = await db!.client()
      try {
        return Number((await c.query(`SELECT count(*) AS n FROM sim_heartbeats`)).rows[0].n)
      } finally {
        await c.end()
      }
    }
    const before = await count()
    const r = await runAction({
      operation: 'restore',
      container: name,
      'stop-node': 'true',
      'state-dir': stateDir,
      'backup-dir': join(stateDir, 'backups')
    })
    expect(r.exitCode).toBe(1)
    expect(errorLines(r)[0]).toMatch(/Refusing to restore: node sessions .* app [0-9a-f-]{8,}/)
    // the other node kept leading on the DB as it was: its writes are all there and continue
    expect((await containerState(other))?.running).toBe(true)
    expect(await count()).toBeGreaterThan(before)
    expect((await containerState(name))?.running).toBe(false)
  })
})

describe('the kept previous container never comes back by itself', () => {
  test("restart policy always: 'no' while it is the stopped rollback copy, the operator's back on the leader", async () => {
    await fresh('bridge', '2.18.0', { restart: 'always' })
    const originalId = (await containerState(name))!.id
    let whileStopped: string | undefined
    const r = await runFaulted(
      {
        operation: 'upgrade',
        container: name,
        image: simImage('2.20.0-never-ready'),
        'ready-timeout': '8s',
        'state-dir': stateDir,
        'backup-dir': join(stateDir, 'backups'),
        'stable-for': '2s'
      },
      [
        {
          when: atLine(`${name} stopped`),
          do: async () => {
            whileStopped = (await docker.getContainer(originalId).inspect()).HostConfig.RestartPolicy?.Name
          }
        }
      ]
    )
    await r.faultsDone
    expect(whileStopped).toBe('no')
    expect(r.outputs.result).toBe('rolled-back')
    await expectSingleLeader('2.18.0')
    expect((await docker.getContainer(name).inspect()).HostConfig.RestartPolicy?.Name).toBe('always')
  })

  test('a good upgrade: the new leader has the restart policy always', async () => {
    await fresh('bridge', '2.18.0', { restart: 'always' })
    const r = await upgrade('2.19.0')
    expect(r.outputs.result).toBe('upgraded')
    await expectSingleLeader('2.19.0')
    expect((await docker.getContainer(name).inspect()).HostConfig.RestartPolicy?.Name).toBe('always')
  })
})

describe('repair decides from evidence', () => {
  test('host network, runner killed during the gate; the new container serves: repair (db-rollback: restore) finishes, no write lost', async () => {
    await fresh('host')
    await upgrade(
      '2.19.0',
      { 'db-rollback': 'restore', 'stable-for': '20s' },
      { post: false, cancelSignal: 'SIGKILL', cancelWhen: (out: string) => out.includes(`${name} stopped`) }
    )
    // the new container leads and writes for a while
    await new Promise((r) => setTimeout(r, 5000))
    const newWriter = (await writers(db!)).writers.at(-1)
    const st = await runAction({ operation: 'status', container: name, 'state-dir': stateDir })
    expect(st.summary).toMatch(/Open journal/)
    const r = await runAction({
      operation: 'repair',
      container: name,
      'db-rollback': 'restore',
      'state-dir': stateDir,
      'backup-dir': join(stateDir, 'backups')
    })
    expect(r.outputs.result).toBe('upgraded')
    expect(r.exitCode).toBe(0)
    const w = await expectSingleLeader('2.19.0')
    // the new leader's writes are still there: no restore happened
    expect(w.writers).toContain(newWriter)
    expect(w.writers.at(-1)).toBe(newWriter)
    expect(r.summary).not.toMatch(/restored from the pre-upgrade backup/)
  })
})

describe('restore as the DB owner without superuser', () => {
  test("the node's tables belong to the superuser in its 'public': refused in preflight, naming them, the node never stopped", async () => {
    await fresh('bridge')
    const b = await runAction({
      operation: 'backup',
      container: name,
      'state-dir': stateDir,
      'backup-dir': join(stateDir, 'backups')
    })
    expect(b.exitCode).toBe(0)
    const bed = loadBed()
    const role = `clr_owner_${name.slice(name.lastIndexOf('-') + 1)}_${Date.now().toString(36)}`
    const admin = await db!.client()
    try {
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'owner-pw-1'`)
      await admin.query(`ALTER DATABASE ${db!.name} OWNER TO ${role}`)
      // it reads what the action reads (the node's tables were created by the node's own role)
      await admin.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`)
      // as on Postgres 14 and older: public belongs to the bootstrap superuser
      await admin.query(`ALTER SCHEMA public OWNER TO ${bed.pg.user}`)
    } finally {
      await admin.end()
    }
    const started = (await docker.getContainer(name).inspect()).State.StartedAt
    try {
      const r = await runAction({
        operation: 'restore',
        container: name,
        'stop-node': 'true',
        'database-url': `postgres://${role}:owner-pw-1@${bed.pg.host}:${bed.pg.port}/${db!.name}?sslmode=disable`,
        'state-dir': stateDir,
        'backup-dir': join(stateDir, 'backups')
      })
      expect(r.exitCode).toBe(1)
      expect(errorLines(r)[0]).toMatch(
        /^::error::Refusing to restore: the database role \S+ cannot restore over what it may not drop: .*table public\.\w+ \(owned by bed\)/
      )
      const info = await docker.getContainer(name).inspect()
      expect(info.State.Running).toBe(true)
      expect(info.State.StartedAt).toBe(started)
    } finally {
      await db!.drop()
      db = undefined
      const c = new pg.Client({
        connectionString: `postgres://${bed.pg.user}:${encodeURIComponent(bed.pg.password)}@${bed.pg.host}:${bed.pg.port}/postgres?sslmode=disable`
      })
      await c.connect()
      await c.query(`DROP ROLE IF EXISTS ${role}`)
      await c.end()
    }
  })
})
