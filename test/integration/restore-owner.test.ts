// A restore as the database's owner without superuser, where schema `public` belongs to the
// bootstrap superuser (as on Postgres 14 and older; here made so on the bed's Postgres 15). The
// node runs as that role; restores go through the action as the runner runs it: the restore
// operation (one-file and directory backups) and the DB rollback of a failed upgrade. The
// superuser's `public` stays (same schema, owner, grants); only the role's objects are replaced.
import { afterAll, afterEach, describe, expect, test } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { createBackup } from '../../src/backup/create.js'
import { createDb, loadBed, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { runAction, visible, type ActionRun } from '../support/action.js'
import { linesLog } from '../support/log.js'
import { containerState, nodeUrl, readyz, startNode, writers } from '../support/node.js'

const prefix = uniqueName('clr-rown')
let n = 0
let name: string
let stateDir: string
let owned: OwnedDb | undefined

interface OwnedDb {
  /** the database, reached as the owner role (url, bridgeUrl) */
  db: TestDb
  /** the same database as the bed's superuser */
  admin(): Promise<pg.Client>
  role: string
  drop(): Promise<void>
}

const bed = loadBed()
const superUrl = (db: string) =>
  `postgres://${bed.pg.user}:${encodeURIComponent(bed.pg.password)}@${bed.pg.host}:${bed.pg.port}/${db}?sslmode=disable`

/** A database owned by a new non-superuser role, its `public` given to the bootstrap superuser. */
async function ownedDb(createdb = false): Promise<OwnedDb> {
  const base = await createDb('rown')
  const role = `clr_rown_${base.name.split('_').at(-1)}`
  const su = await base.client()
  try {
    await su.query(`CREATE ROLE ${role} LOGIN PASSWORD 'owner-pw-1' NOSUPERUSER ${createdb ? 'CREATEDB' : ''}`)
    await su.query(`ALTER DATABASE ${base.name} OWNER TO ${role}`)
    await su.query(`ALTER SCHEMA public OWNER TO ${bed.pg.user}`)
    await su.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC')
    await su.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${role}`)
  } finally {
    await su.end()
  }
  const url = (host: string) => `postgres://${role}:owner-pw-1@${host}:${bed.pg.port}/${base.name}?sslmode=disable`
  const db: TestDb = {
    name: base.name,
    url: url(bed.pg.host),
    bridgeUrl: url(bed.pg.bridgeHost),
    async client() {
      const c = new pg.Client({ connectionString: url(bed.pg.host) })
      await c.connect()
      return c
    },
    drop: () => base.drop()
  }
  return {
    db,
    role,
    admin: () => base.client(),
    async drop() {
      await base.drop()
      const c = new pg.Client({ connectionString: superUrl('postgres') })
      await c.connect()
      await c.query(`DROP ROLE IF EXISTS ${role}`)
      await c.end()
    }
  }
}

/** What the superuser owns in the database: `public`'s identity, owner, grants and comment. */
async function superusersPublic(o: OwnedDb) {
  const c = await o.admin()
  try {
    return (
      await c.query(
        `SELECT oid::text, pg_get_userbyid(nspowner) AS owner, nspacl::text AS acl,
                obj_description(oid, 'pg_namespace') AS comment
           FROM pg_namespace WHERE nspname = 'public'`
      )
    ).rows[0]
  } finally {
    await c.end()
  }
}

async function keyRings(o: OwnedDb): Promise<string[]> {
  const c = await o.db.client()
  try {
    return (await c.query(`SELECT encrypted_keys->>'k' AS k FROM encrypted_key_rings ORDER BY 1`)).rows.map((r) => r.k)
  } finally {
    await c.end()
  }
}

async function write(o: OwnedDb, k: string) {
  const c = await o.db.client()
  try {
    await c.query(`INSERT INTO encrypted_key_rings VALUES ($1, now())`, [JSON.stringify({ k })])
  } finally {
    await c.end()
  }
}

async function fresh(opts: { createdb?: boolean; tag?: string } = {}): Promise<OwnedDb> {
  owned = await ownedDb(opts.createdb)
  name = `${prefix}-${++n}`
  stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
  await startNode({ name, tag: opts.tag ?? '2.19.0', db: owned.db, layout: 'bridge' })
  // the keystore table, created by the node's role like the node's own tables
  const c = await owned.db.client()
  try {
    await c.query(`CREATE TABLE encrypted_key_rings (encrypted_keys jsonb, updated_at timestamptz)`)
  } finally {
    await c.end()
  }
  await write(owned, 'in the backup')
  return owned
}

const act = (inputs: Record<string, string>) =>
  runAction({ container: name, 'state-dir': stateDir, 'backup-dir': join(stateDir, 'backups'), ...inputs })

const errorLines = (r: ActionRun) =>
  visible(r.stdout)
    .split('\n')
    .filter((l) => l.startsWith('::error::'))

/** Restored: the backup's rows, later ones gone, the node leads again, the superuser's public as it was. */
async function expectRestored(o: OwnedDb, r: ActionRun, before: Awaited<ReturnType<typeof superusersPublic>>) {
  expect(errorLines(r)).toEqual([])
  expect(r.exitCode).toBe(0)
  expect(await keyRings(o)).toEqual(['in the backup'])
  expect(await superusersPublic(o)).toEqual(before)
  expect((await containerState(name))?.running).toBe(true)
  expect(await readyz((await nodeUrl(name))!)).toBe(200)
  expect((await writers(o.db)).interleaved).toBe(false)
}

afterEach(async () => {
  await removeContainers(name)
  await owned?.drop()
  owned = undefined
})
afterAll(async () => {
  await removeContainers(prefix)
})

describe('restore as the DB owner without superuser, public owned by the bootstrap superuser', () => {
  test('restore operation, one-file backup: the data comes back, nothing of the superuser is dropped', async () => {
    const o = await fresh()
    const before = await superusersPublic(o)
    expect(before.owner).toBe(bed.pg.user)
    const b = await act({ operation: 'backup' })
    expect(b.exitCode).toBe(0)
    await write(o, 'after the backup')
    const r = await act({ operation: 'restore', 'backup-file': b.outputs['backup-file'], 'stop-node': 'true' })
    await expectRestored(o, r, before)
    expect(visible(r.stdout)).toMatch(/schema public belongs to another role: kept/)
  })

  test('restore operation, directory backup, a role that may create databases: restored in place, not by swap', async () => {
    const o = await fresh({ createdb: true })
    const before = await superusersPublic(o)
    const set = await createBackup({
      databaseUrl: o.db.url,
      dir: join(stateDir, 'backups'),
      kind: 'scheduled',
      format: 'directory',
      log: linesLog([])
    })
    expect(set.file).toMatch(/\.dump\.d$/)
    await write(o, 'after the backup')
    const r = await act({ operation: 'restore', 'backup-file': set.file, 'stop-node': 'true' })
    await expectRestored(o, r, before)
    expect(visible(r.stdout)).toMatch(/restoring in one transaction, not in parallel: a copy made by/)
  })

  test('a failed upgrade is rolled back by restore of the pre-upgrade backup', async () => {
    const o = await fresh({ tag: '2.18.0' })
    const before = await superusersPublic(o)
    const r = await act({
      operation: 'upgrade',
      image: simImage('2.20.0-migrate-then-crash'),
      'db-rollback': 'restore',
      'stable-for': '2s'
    })
    expect(r.outputs.result).toBe('rolled-back')
    expect(r.exitCode).toBe(1)
    expect(r.summary).toMatch(/restored from the pre-upgrade backup/)
    const st = await containerState(name)
    expect(st?.image).toBe(simImage('2.18.0'))
    expect(st?.running).toBe(true)
    expect(await readyz((await nodeUrl(name))!)).toBe(200)
    expect(await keyRings(o)).toEqual(['in the backup'])
    expect(await superusersPublic(o)).toEqual(before)
    expect((await writers(o.db)).interleaved).toBe(false)
  })

  test("what truly cannot work is refused before the node is stopped, naming it: a superuser's table in public", async () => {
    const o = await fresh()
    const b = await act({ operation: 'backup' })
    expect(b.exitCode).toBe(0)
    const su = await o.admin()
    try {
      await su.query('CREATE TABLE public.audit_of_superuser (a int)')
      await su.query(`GRANT SELECT ON public.audit_of_superuser TO ${o.role}`)
    } finally {
      await su.end()
    }
    const before = await containerState(name)
    const r = await act({ operation: 'restore', 'backup-file': b.outputs['backup-file'], 'stop-node': 'true' })
    expect(r.exitCode).toBe(1)
    expect(errorLines(r)[0]).toMatch(
      new RegExp(
        `^::error::Refusing to restore: the database role ${o.role} cannot restore over what it may not drop: table public.audit_of_superuser \\(owned by ${bed.pg.user}\\)`
      )
    )
    expect(await containerState(name)).toEqual(before)
  })
})
