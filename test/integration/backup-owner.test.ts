// Backups belong to their node: two simulated nodes on two databases share one backup-dir (the
// default, as two nodes on one host have it). Each database holds its node's keys as a real node
// does (evm.key_states: the node's public EVM addresses). A restore without backup-file takes the
// node's own newest backup, not the other node's newer one; naming the other node's backup is
// refused before anything stops; retention counts each node's backups on their own; a wrong age
// identity is refused before the node is stopped.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateIdentity, identityToRecipient } from 'age-encryption'
import { createDb, docker, removeContainers, uniqueName, type TestDb } from '../support/bed.js'
import { runAction, visible } from '../support/action.js'
import { linesLog } from '../support/log.js'
import { nodeUrl, readyz, startNode, writers } from '../support/node.js'
import { createBackup } from '../../src/backup/create.js'

const prefix = uniqueName('clr-bown')
const A = `${prefix}-a`
const B = `${prefix}-b`
const KEY_A = 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1'
const KEY_B = 'b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2'
let dbA: TestDb
let dbB: TestDb
let stateDir: string
let backupDir: string

/** The node's key table as a real node has it (public addresses, bytea), and a row to find. */
async function seed(db: TestDb, key: string, row: string) {
  const c = await db.client()
  try {
    await c.query('CREATE SCHEMA evm')
    await c.query(
      `CREATE TABLE evm.key_states (id serial PRIMARY KEY, address bytea NOT NULL, evm_chain_id numeric(78,0) NOT NULL,
         disabled boolean NOT NULL DEFAULT false, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`
    )
    await c.query(`INSERT INTO evm.key_states (address, evm_chain_id) VALUES (decode($1, 'hex'), 1337)`, [key])
    await c.query('CREATE TABLE marks (note text)')
    await c.query('INSERT INTO marks VALUES ($1)', [row])
  } finally {
    await c.end()
  }
}

async function rows(db: TestDb): Promise<{ marks: string[]; keys: string[] }> {
  const c = await db.client()
  try {
    const marks = (await c.query('SELECT note FROM marks ORDER BY 1')).rows.map((r) => r.note)
    const keys = (await c.query(`SELECT encode(address, 'hex') AS a FROM evm.key_states`)).rows.map((r) => r.a)
    return { marks, keys }
  } finally {
    await c.end()
  }
}

async function mark(db: TestDb, note: string) {
  const c = await db.client()
  await c.query('INSERT INTO marks VALUES ($1)', [note])
  await c.end()
}

const startedAt = async (name: string) => {
  const i = await docker.getContainer(name).inspect()
  return { running: i.State.Running, startedAt: i.State.StartedAt, id: i.Id }
}

const act = (container: string, inputs: Record<string, string>) =>
  runAction({ container, 'state-dir': join(stateDir, container), 'backup-dir': backupDir, ...inputs })

const manifestOf = (file: string) => JSON.parse(readFileSync(file.replace(/\.dump(\.\w+)*$/, '.json'), 'utf8'))

beforeAll(async () => {
  dbA = await createDb('bowna')
  dbB = await createDb('bownb')
  stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
  backupDir = join(stateDir, 'backups')
  await Promise.all([
    startNode({ name: A, tag: '2.19.0', db: dbA, layout: 'bridge' }),
    startNode({ name: B, tag: '2.19.0', db: dbB, layout: 'bridge' })
  ])
  await seed(dbA, KEY_A, 'A in the backup')
  await seed(dbB, KEY_B, 'B in the backup')
})
afterAll(async () => {
  await removeContainers(prefix)
  await dbA.drop()
  await dbB.drop()
})

describe('backups belong to their node', () => {
  let fileA: string
  let fileB: string

  test('A then B backed up into one backup-dir with backup-keep 1: each keeps its own newest', async () => {
    const a = await act(A, { operation: 'backup', 'backup-keep': '1' })
    expect(a.exitCode).toBe(0)
    fileA = a.outputs['backup-file']
    const b = await act(B, { operation: 'backup', 'backup-keep': '1' })
    expect(b.exitCode).toBe(0)
    fileB = b.outputs['backup-file']
    // B's retention counted B's backups only: A's one backup is still there
    expect(existsSync(fileA)).toBe(true)
    expect(existsSync(fileB)).toBe(true)
    const m = manifestOf(fileA)
    expect(m.owner.database).toBe(dbA.name)
    expect(m.owner.keys).toEqual([`evm:0x${KEY_A}`])
    expect(m.owner.server.address).toBeTruthy()
    expect(JSON.stringify(m)).not.toContain('bed-test-password')
    // a second backup of A with backup-keep 1 replaces A's first, and leaves B's alone
    const a2 = await act(A, { operation: 'backup', 'backup-keep': '1' })
    expect(a2.exitCode).toBe(0)
    expect(existsSync(fileA)).toBe(false)
    expect(existsSync(fileB)).toBe(true)
    fileA = a2.outputs['backup-file']
    // B's backup is the newest in the directory from here on
    const b2 = await act(B, { operation: 'backup', 'backup-keep': '1' })
    expect(b2.exitCode).toBe(0)
    fileB = b2.outputs['backup-file']
    expect(existsSync(fileA)).toBe(true)
  })

  test("restore of A without backup-file restores A's own backup, not B's newer one", async () => {
    await mark(dbA, 'A after the backup')
    const r = await act(A, { operation: 'restore', 'stop-node': 'true' })
    expect(visible(r.stdout)).not.toMatch(/::error::/)
    expect(r.exitCode).toBe(0)
    expect(r.outputs['backup-file']).toBe(fileA)
    expect(await rows(dbA)).toEqual({ marks: ['A in the backup'], keys: [KEY_A] })
    expect(await readyz((await nodeUrl(A))!)).toBe(200)
    expect((await writers(dbA)).interleaved).toBe(false)
  })

  test("naming B's backup for A is refused before anything stops, naming both nodes", async () => {
    await mark(dbA, 'A live')
    const before = await startedAt(A)
    const r = await act(A, { operation: 'restore', 'stop-node': 'true', 'backup-file': fileB })
    expect(r.exitCode).toBe(1)
    const out = visible(r.stdout)
    expect(out).toMatch(/::error::.*belongs to another node/)
    expect(out).toContain(dbB.name)
    expect(out).toContain(dbA.name)
    expect(out).toContain(`0x${KEY_B}`)
    expect(out).toContain(`0x${KEY_A}`)
    expect(out).toContain('restore-other-node')
    expect(await startedAt(A)).toEqual(before)
    expect(await rows(dbA)).toEqual({ marks: ['A in the backup', 'A live'], keys: [KEY_A] })
  })

  test('a wrong backup-identity for an encrypted backup is refused before the node is stopped', async () => {
    const recipient = await identityToRecipient(await generateIdentity())
    const b = await act(A, { operation: 'backup', 'backup-recipient': recipient, 'backup-keep': '5' })
    expect(b.exitCode).toBe(0)
    const wrong = await generateIdentity()
    const before = await startedAt(A)
    const r = await act(A, {
      operation: 'restore',
      'stop-node': 'true',
      'backup-file': b.outputs['backup-file'],
      'backup-identity': wrong
    })
    expect(r.exitCode).toBe(1)
    const out = visible(r.stdout)
    expect(out).toMatch(/::error::Input 'backup-identity'.* not the identity of .*age1/)
    expect(out + r.summary).not.toContain(wrong)
    expect(await startedAt(A)).toEqual(before)
    expect((await rows(dbA)).marks).toEqual(['A in the backup', 'A live'])
  })

  test('a backup from before owners were recorded: never picked by default; named, it restores with a note', async () => {
    const dir = join(stateDir, 'legacy')
    const set = await createBackup({ databaseUrl: dbA.url, dir, kind: 'scheduled', log: linesLog() })
    const m = JSON.parse(readFileSync(set.manifestFile, 'utf8'))
    delete m.owner
    writeFileSync(set.manifestFile, JSON.stringify(m, null, 2))
    const before = await startedAt(A)
    const r = await act(A, { operation: 'restore', 'stop-node': 'true', 'backup-dir': dir })
    expect(r.exitCode).toBe(1)
    expect(visible(r.stdout)).toMatch(
      /::error::.*holds no verified backup of .*1 were written before backups recorded their node/
    )
    expect(await startedAt(A)).toEqual(before)
    await mark(dbA, 'A after the legacy backup')
    const named = await act(A, {
      operation: 'restore',
      'stop-node': 'true',
      'backup-dir': dir,
      'backup-file': set.file
    })
    expect(named.exitCode).toBe(0)
    expect(named.summary).toMatch(/written before backups recorded their node: it could not be checked/)
    expect((await rows(dbA)).marks).toEqual(['A in the backup', 'A live'])
  })

  test("restore-other-node: true loads the other node's backup, and says so", async () => {
    const r = await act(A, {
      operation: 'restore',
      'stop-node': 'true',
      'backup-file': fileB,
      'restore-other-node': 'true'
    })
    expect(r.exitCode).toBe(0)
    expect(r.summary).toMatch(/restore-other-node: true: .* belongs to another node/)
    expect(await rows(dbA)).toEqual({ marks: ['B in the backup'], keys: [KEY_B] })
    expect(await readyz((await nodeUrl(A))!)).toBe(200)
  })
})
