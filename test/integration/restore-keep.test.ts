// The database's previous contents are kept until the node leads again and passes its gate
// (docs/algorithm.md, "Restore"): a directory backup restored by swap with stop-node, onto which
// the node cannot come back (the backup is of a newer node: its version gate refuses the restored
// database, as a wrong backup would make it). The contents the swap set aside are the live data:
// they stay, the message names them and the SQL that swaps them back, and that SQL works.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { createDb, docker, loadBed, removeContainers, uniqueName, type TestDb } from '../support/bed.js'
import { runAction, visible } from '../support/action.js'
import { linesLog } from '../support/log.js'
import { createBackup } from '../../src/backup/create.js'
import { nodeUrl, readyz, startNode, waitReady } from '../support/node.js'

jest.setTimeout(240000)

const prefix = uniqueName('clr-rk')
const name = `${prefix}-node`
let db: TestDb
let stateDir: string

function admin(): pg.Client {
  const b = loadBed()
  return new pg.Client({
    host: b.pg.host,
    port: b.pg.port,
    user: b.pg.user,
    password: b.pg.password,
    database: 'postgres'
  })
}

async function liveRows(database: string): Promise<string[]> {
  const u = new URL(db.url)
  u.pathname = `/${database}`
  const c = new pg.Client({ connectionString: u.toString() })
  await c.connect()
  try {
    return (await c.query(`SELECT encrypted_keys->>'k' AS k FROM encrypted_key_rings ORDER BY 1`)).rows.map((r) => r.k)
  } finally {
    await c.end()
  }
}

beforeAll(async () => {
  db = await createDb('rkeep')
  stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
  await startNode({ name, tag: '2.19.0', db, layout: 'ports' })
  const c = await db.client()
  await c.query(`CREATE TABLE encrypted_key_rings (encrypted_keys jsonb, updated_at timestamptz)`)
  await c.query(`INSERT INTO encrypted_key_rings VALUES ('{"k":"in the backup"}', now())`)
  await c.end()
}, 120000)

afterAll(async () => {
  await removeContainers(prefix)
  const a = admin()
  await a.connect()
  const left = await a.query("SELECT datname FROM pg_database WHERE datname LIKE $1 || '\\_clr\\_%'", [db.name])
  for (const r of left.rows) await a.query(`DROP DATABASE IF EXISTS "${r.datname}" WITH (FORCE)`)
  await a.end()
  await db.drop()
  rmSync(stateDir, { recursive: true, force: true })
})

describe('a restore by swap whose node does not come back', () => {
  test('keeps the contents it set aside, names them and how to swap them back; swapped back, the node leads on its live data', async () => {
    // a backup of a newer node's database: 2.19.0 refuses it at its version gate (docs/node-facts.md §9)
    const c = await db.client()
    await c.query(`UPDATE node_versions SET version = '2.20.0'`)
    const set = await createBackup({
      databaseUrl: db.url,
      dir: join(stateDir, 'backups'),
      kind: 'scheduled',
      format: 'directory',
      log: linesLog()
    })
    await c.query(`UPDATE node_versions SET version = '2.19.0'`)
    await c.query(`INSERT INTO encrypted_key_rings VALUES ('{"k":"live, after the backup"}', now())`)
    await c.end()
    const r = await runAction({
      container: name,
      'state-dir': stateDir,
      'backup-dir': join(stateDir, 'backups'),
      operation: 'restore',
      'backup-file': set.file,
      'stop-node': 'true',
      'ready-timeout': '40s'
    })
    const out = visible(r.stdout)
    expect(out).toMatch(/parallel restore into new database/)
    expect(r.exitCode).toBe(1)
    // the set-aside database is still there
    const a0 = admin()
    await a0.connect()
    const aside = await a0.query("SELECT datname FROM pg_database WHERE datname LIKE $1 || '\\_clr\\_old\\_%'", [
      db.name
    ])
    await a0.end()
    expect(aside.rows.length).toBe(1)
    const m = new RegExp(
      `::error::.*the database's contents before the restore are kept as database (${db.name}_clr_old_\\w+); to put them back, .*: (ALTER DATABASE .* RENAME TO .*;)`
    ).exec(out)
    expect(m).not.toBeNull()
    const [, kept, sql] = m!
    expect(out).not.toMatch(/previous contents dropped/)
    // the set-aside database holds the live data, the row written after the backup included
    expect(await liveRows(kept)).toEqual(['in the backup', 'live, after the backup'])
    expect(await liveRows(db.name)).toEqual(['in the backup'])
    // what the message says to do works: stop the node, swap back, start it: it leads on its data
    await docker
      .getContainer(name)
      .stop({ t: 5 })
      .catch(() => undefined)
    const a = admin()
    await a.connect()
    try {
      await a.query(sql)
    } finally {
      await a.end()
    }
    expect(await liveRows(db.name)).toEqual(['in the backup', 'live, after the backup'])
    await docker.getContainer(name).start()
    await waitReady({ name }, 60000)
    expect(await readyz((await nodeUrl(name))!)).toBe(200)
  })
})
