// operation: backup and operation: restore against a running simulated node, run as the runner
// runs the action: a verified (optionally encrypted) backup, a restore refused while the node
// leads, and a restore with stop-node that brings the old rows back and the node up again.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateIdentity, identityToRecipient } from 'age-encryption'
import { createDb, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { runAction, visible } from '../support/action.js'
import { linesLog } from '../support/log.js'
import { createBackup } from '../../src/backup/create.js'
import { containerState, nodeUrl, readyz, startNode, writers } from '../support/node.js'

const prefix = uniqueName('clr-bk')
const name = `${prefix}-node`
let db: TestDb
let stateDir: string

beforeAll(async () => {
  db = await createDb('bkops')
  stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
  await startNode({ name, tag: '2.19.0', db, layout: 'ports' })
  const c = await db.client()
  await c.query(`CREATE TABLE encrypted_key_rings (encrypted_keys jsonb, updated_at timestamptz)`)
  await c.query(`INSERT INTO encrypted_key_rings VALUES ('{"k":"v"}', now())`)
  await c.end()
})
afterAll(async () => {
  await removeContainers(prefix)
  await db.drop()
})

const act = (inputs: Record<string, string>) =>
  runAction({ container: name, 'state-dir': stateDir, 'backup-dir': join(stateDir, 'backups'), ...inputs })

describe('backup and restore operations', () => {
  let file: string

  test('backup: a verified dump of the running node, with its manifest', async () => {
    const r = await act({ operation: 'backup', 'backup-verify': 'restore' })
    expect(r.exitCode).toBe(0)
    expect(r.outputs.result).toBe('ok')
    file = r.outputs['backup-file']
    expect(existsSync(file)).toBe(true)
    const manifest = JSON.parse(readFileSync(file.replace(/\.dump(\.\w+)*$/, '.json'), 'utf8'))
    expect(manifest.node.version).toBe('2.19.0')
    expect(r.summary).toMatch(/Verified \| .*trial-restore/)
    expect(visible(r.stdout) + r.summary).not.toContain('bed-test-password')
  })

  test('backup refused for lack of space in backup-dir, before any work, nothing written', async () => {
    const mnt = mkdtempSync(join(tmpdir(), 'clr-tmpfs-'))
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt])
    try {
      const r = await act({ operation: 'backup', 'backup-dir': mnt })
      expect(r.exitCode).toBe(1)
      expect(visible(r.stdout)).toMatch(
        new RegExp(
          `::error::.*not enough free space in backup-dir ${mnt}: the backup of .* needs about \\d+ MB .* free; nothing was written`
        )
      )
      expect(readdirSync(mnt)).toEqual([])
    } finally {
      execFileSync('umount', [mnt])
      rmSync(mnt, { recursive: true, force: true })
    }
  })

  test('an upgrade refused for space: the result stays failed after the post step tidies up', async () => {
    const mnt = mkdtempSync(join(tmpdir(), 'clr-tmpfs-'))
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt])
    try {
      const r = await act({ operation: 'upgrade', image: simImage('2.20.0'), 'backup-dir': mnt })
      // what the workflow reads: the step failed, and its result says so, whatever post did after
      expect({ exit: r.exitCode, main: r.mainResult, result: r.outputs.result }).toEqual({
        exit: 1,
        main: 'failed',
        result: 'failed'
      })
      expect(await containerState(name)).toMatchObject({ image: simImage('2.19.0'), running: true })
    } finally {
      execFileSync('umount', [mnt])
      rmSync(mnt, { recursive: true, force: true })
    }
  })

  test('restore is refused while the node holds the lock; nothing changed', async () => {
    const before = await containerState(name)
    const r = await act({ operation: 'restore', 'backup-file': file })
    expect(r.exitCode).toBe(1)
    expect(visible(r.stdout)).toMatch(/::error::Refusing to restore while the node is up .*stop-node/)
    expect(await containerState(name)).toEqual(before)
  })

  test('restore with stop-node: the rows of the backup are back, later writes gone, the node leads again', async () => {
    const c = await db.client()
    await c.query(`INSERT INTO encrypted_key_rings VALUES ('{"k":"written after the backup"}', now())`)
    await c.end()
    const r = await act({ operation: 'restore', 'backup-file': file, 'stop-node': 'true' })
    expect(r.exitCode).toBe(0)
    expect(r.outputs.leader).toBe(name)
    expect(await readyz((await nodeUrl(name))!)).toBe(200)
    const c2 = await db.client()
    const rows = (await c2.query(`SELECT encrypted_keys->>'k' AS k FROM encrypted_key_rings`)).rows.map((x) => x.k)
    await c2.end()
    expect(rows).toEqual(['v'])
    expect(r.summary).toMatch(/encrypted_key_rings: 1/)
    expect((await writers(db)).interleaved).toBe(false)
  })

  test('restore with stop-node of a directory backup: swapped in, the contents it replaced dropped once the node leads', async () => {
    // Dropping a database makes the server take an immediate checkpoint, which after a large
    // restore writes out the whole restored database: done before the node starts, downtime.
    const set = await createBackup({
      databaseUrl: db.url,
      dir: join(stateDir, 'backups'),
      kind: 'scheduled',
      format: 'directory',
      log: linesLog()
    })
    const r = await act({ operation: 'restore', 'backup-file': set.file, 'stop-node': 'true' })
    expect(r.exitCode).toBe(0)
    expect(r.outputs.leader).toBe(name)
    expect(await readyz((await nodeUrl(name))!)).toBe(200)
    const out = visible(r.stdout)
    expect(out).toMatch(new RegExp(`the previous contents stay as ${db.name}_clr_old_\\w+ until the node is back`))
    // the drop comes after the node's takeover gates, and is the run's last step
    const lastGate = out.lastIndexOf('gate ')
    expect(lastGate).toBeGreaterThan(0)
    expect(out.indexOf('previous contents dropped')).toBeGreaterThan(lastGate)
    const steps = r.summary
      .split('### Timeline')[1]
      .split('\n')
      .filter((l) => l.startsWith('| +'))
    expect(steps.at(-1)).toMatch(new RegExp(`\\| previous contents dropped \\| ${db.name}_clr_old_`))
    const c = await db.client()
    const left = await c.query("SELECT datname FROM pg_database WHERE datname LIKE $1 || '\\_clr\\_%'", [db.name])
    await c.end()
    expect(left.rows).toEqual([])
    expect((await writers(db)).interleaved).toBe(false)
  })

  test('encrypted backup (age recipient) restored with the identity', async () => {
    const identity = await generateIdentity()
    const recipient = await identityToRecipient(identity)
    const b = await act({ operation: 'backup', 'backup-recipient': recipient })
    expect(b.exitCode).toBe(0)
    expect(b.outputs['backup-file']).toMatch(/\.age$/)
    const before = await containerState(name)
    const withoutKey = await act({ operation: 'restore', 'backup-file': b.outputs['backup-file'], 'stop-node': 'true' })
    expect(withoutKey.exitCode).toBe(1)
    expect(visible(withoutKey.stdout)).toMatch(/Input 'backup-identity' is required/)
    expect(await containerState(name)).toEqual(before)
    const r = await act({
      operation: 'restore',
      'backup-file': b.outputs['backup-file'],
      'stop-node': 'true',
      'backup-identity': identity
    })
    expect(r.exitCode).toBe(0)
    expect(visible(r.stdout) + r.summary).not.toContain(identity)
    expect(await readyz((await nodeUrl(name))!)).toBe(200)
  })
})
