// The backup module against the bed's real Postgres 15 and the host's pg_dump/pg_restore 15:
// backup + verify, tampering, restore after more writes, encryption, retention, lock check.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals'
import { copyFile, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile, open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { execFileSync } from 'node:child_process'
import { basename, join } from 'node:path'
import { generateIdentity, identityToRecipient, Decrypter } from 'age-encryption'
import {
  createBackup,
  listBackups,
  lockHolderPresent,
  pruneBackups,
  readManifest,
  restoreBackup,
  verifyBackup,
  type BackupResult
} from '../../src/backup/index.js'
import { tarUnpack } from '../../src/backup/codec.js'
import { createDb, loadBed, type TestDb } from '../support/bed.js'
import { linesLog } from '../support/log.js'

jest.setTimeout(120000)
const PASSWORD = loadBed().pg.password
const SECRET = 'keystore-password-S3cr3t-do-not-print'

/** Chainlink-like schema: the keystore tables, and a few MB of bytea-heavy chain data. */
async function fillChainlinkLike(db: TestDb, logs: number): Promise<void> {
  const c = await db.client()
  try {
    await c.query(`
      CREATE SCHEMA evm;
      CREATE TABLE encrypted_key_rings (encrypted_keys jsonb, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
      INSERT INTO encrypted_key_rings (encrypted_keys) VALUES ('{"crypto":{"cipher":"aes-128-ctr","ciphertext":"00ff"},"version":3}');
      CREATE TABLE evm.key_states (id serial PRIMARY KEY, address bytea NOT NULL, evm_chain_id numeric(78) NOT NULL, disabled boolean NOT NULL DEFAULT false);
      INSERT INTO evm.key_states (address, evm_chain_id) VALUES (decode(repeat('ab', 20), 'hex'), 1), (decode(repeat('cd', 20), 'hex'), 1);
      CREATE TABLE evm.logs (evm_chain_id numeric(78) NOT NULL, log_index bigint, block_hash bytea, block_number bigint, address bytea, topics bytea[], tx_hash bytea, data bytea, created_at timestamptz DEFAULT now());
      CREATE TABLE pipeline_runs (id bigserial PRIMARY KEY, pipeline_spec_id int, inputs jsonb, outputs jsonb, created_at timestamptz DEFAULT now(), state text);
    `)
    await c.query(
      `INSERT INTO evm.logs SELECT 1, g % 50, decode(md5(g::text || 'b') || md5(g::text || 'c'), 'hex'), 1000000 + g / 20,
         decode(md5((g % 37)::text), 'hex') || '\\x00000000'::bytea,
         ARRAY[decode(md5((g % 11)::text) || md5('x'), 'hex'), decode(md5(random()::text) || md5(random()::text), 'hex')],
         decode(md5(random()::text) || md5(random()::text), 'hex'),
         decode(repeat('00', 28) || md5(random()::text) || md5(random()::text) || md5(random()::text), 'hex'), now()
       FROM generate_series(1, $1::int) g`,
      [logs]
    )
    await c.query(
      `INSERT INTO pipeline_runs (pipeline_spec_id, inputs, outputs, state) SELECT 1, jsonb_build_object('ds1', random()), jsonb_build_array(random() * 3000), 'completed' FROM generate_series(1, $1::int / 5)`,
      [logs]
    )
    await c.query('CREATE INDEX evm_logs_block ON evm.logs (evm_chain_id, block_number)')
  } finally {
    await c.end()
  }
}

async function count(db: TestDb, table: string): Promise<number> {
  const c = await db.client()
  try {
    return Number((await c.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n)
  } finally {
    await c.end()
  }
}

const lines: string[] = []
const log = linesLog(lines)

let db: TestDb
let dir: string
let rootDir: string
let first: BackupResult
const cleanup: (() => Promise<void>)[] = []

beforeAll(async () => {
  db = await createDb('bk')
  cleanup.push(() => db.drop())
  dir = await mkdtemp(join(tmpdir(), 'clr-backup-'))
  rootDir = await mkdtemp(join(tmpdir(), 'clr-root-'))
  cleanup.push(
    () => rm(dir, { recursive: true, force: true }),
    () => rm(rootDir, { recursive: true, force: true })
  )
  await fillChainlinkLike(db, 40000)
  await writeFile(join(rootDir, 'config.toml'), '[Log]\nLevel = "info"\n')
  await writeFile(join(rootDir, 'secrets.toml'), `[Password]\nKeystore = "${SECRET}"\n`, { mode: 0o600 })
}, 60000)

afterAll(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined)
  // nothing we log may carry the DB password or a secret file's contents
  const all = lines.join('\n')
  expect(all).not.toContain(PASSWORD)
  expect(all).not.toContain(SECRET)
})

describe('createBackup + verifyBackup', () => {
  test('writes a verified, sortable, manifest-described backup set with the root-dir files', async () => {
    first = await createBackup({
      databaseUrl: db.url,
      dir,
      kind: 'scheduled',
      files: [
        { name: 'config.toml', path: join(rootDir, 'config.toml') },
        { name: 'secrets.toml', path: join(rootDir, 'secrets.toml') }
      ],
      node: { version: '2.20.0', image: 'smartcontract/chainlink:2.20.0', digest: 'sha256:' + 'a'.repeat(64) },
      log
    })
    expect(basename(first.file)).toMatch(
      new RegExp(`^chainlink-rollout-${db.name}-\\d{8}T\\d{9}Z-scheduled\\.dump\\.(zst)$|\\.dump$`)
    )
    expect(first.verified).toEqual(['sha256', 'archive-read'])
    const m = await readManifest(first.manifestFile)
    expect(m).toMatchObject({
      kind: 'scheduled',
      encrypted: false,
      database: { name: db.name, keystore: { encrypted_key_rings: 1, 'evm.key_states': 2 } },
      node: { version: '2.20.0', digest: 'sha256:' + 'a'.repeat(64) },
      dump: { file: basename(first.file), bytes: (await stat(first.file)).size }
    })
    expect(m.database.serverVersion).toMatch(/^15\./)
    expect(m.pgDump.version).toMatch(/^15\./)
    expect(m.dump.sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(m.files!.entries.map((e) => e.name)).toEqual(['config.toml', 'secrets.toml'])
    expect(m.verifications.at(-1)).toMatchObject({ ok: true, mode: 'archive' })
    expect((await stat(first.file)).mode & 0o777).toBe(0o600)
    // the files are restorable with nothing but tar (ustar), contents intact
    const tar = tarUnpack(await readFile(join(dir, m.files!.file)))
    expect(tar.find((e) => e.name === 'secrets.toml')!.data.toString()).toContain(SECRET)
    expect(tar.find((e) => e.name === 'secrets.toml')!.mode).toBe(0o600)
    const x = await mkdtemp(join(tmpdir(), 'clr-untar-'))
    cleanup.push(() => rm(x, { recursive: true, force: true }))
    execFileSync('tar', ['-xf', join(dir, m.files!.file), '-C', x])
    expect(await readFile(join(x, 'config.toml'), 'utf8')).toBe('[Log]\nLevel = "info"\n')
    // no temp files left behind
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([])
    const list = await listBackups(dir)
    expect(list).toHaveLength(1)
    expect(list[0]).toMatchObject({ file: first.file, verified: true, kind: 'scheduled' })
  })

  test('a trial restore checks the keystore and drops its scratch database', async () => {
    const v = await verifyBackup(first.file, { mode: 'restore', databaseUrl: db.url, log })
    expect(v.checks).toEqual(['sha256', 'archive-read', 'trial-restore', 'keystore'])
    expect(v.keystore).toEqual({ encrypted_key_rings: 1, 'evm.key_states': 2 })
    const c = await db.client()
    const left = await c.query("SELECT datname FROM pg_database WHERE datname LIKE 'clr_verify_%'")
    await c.end()
    expect(left.rows).toEqual([])
  })

  test('a database without the keystore table verifies with a warning', async () => {
    const plain = await createDb('bkplain')
    cleanup.push(() => plain.drop())
    const c = await plain.client()
    await c.query('CREATE TABLE t (x int); INSERT INTO t VALUES (1)')
    await c.end()
    const d = await mkdtemp(join(tmpdir(), 'clr-backup-plain-'))
    cleanup.push(() => rm(d, { recursive: true, force: true }))
    const r = await createBackup({ databaseUrl: plain.url, dir: d, kind: 'pre-upgrade', verify: 'restore', log })
    expect(r.verified).toEqual(['sha256', 'archive-read', 'trial-restore'])
    expect(r.manifest.verifications.at(-1)!.warnings!.join()).toMatch(/no encrypted_key_rings table/)
  })
})

describe('tampering is caught', () => {
  async function copySet(tag: string): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), `clr-tamper-${tag}-`))
    cleanup.push(() => rm(d, { recursive: true, force: true }))
    for (const f of await readdir(dir))
      if (f.startsWith(basename(first.manifestFile, '.json'))) await copyFile(join(dir, f), join(d, f))
    return join(d, basename(first.file))
  }

  test('a truncated dump fails with a clear message and is no longer listed as verified', async () => {
    const f = await copySet('trunc')
    await truncate(f, Math.floor((await stat(f)).size / 2))
    await expect(verifyBackup(f, { mode: 'archive', log })).rejects.toThrow(
      /is \d+ bytes but the manifest says \d+: the file is truncated/
    )
    expect((await listBackups(join(f, '..')))[0].verified).toBe(false)
  })

  test('a flipped byte fails the checksum', async () => {
    const f = await copySet('flip')
    const fh = await open(f, 'r+')
    const pos = Math.floor((await fh.stat()).size / 2)
    const b = Buffer.alloc(1)
    await fh.read(b, 0, 1, pos)
    b[0] ^= 0x20
    await fh.write(b, 0, 1, pos)
    await fh.close()
    await expect(verifyBackup(f, { mode: 'archive', log })).rejects.toThrow(
      /does not match its manifest checksum .* altered or corrupted/
    )
  })

  test('corruption that the manifest agrees with is still caught by the full read', async () => {
    // e.g. a bit flipped before the checksum was taken: only reading all data finds it
    const f = await copySet('deep')
    const data = await readFile(f)
    data[Math.floor(data.length / 2)] ^= 0xff
    await writeFile(f, data)
    const mf = f.replace(/\.dump.*$/, '.json')
    const m = JSON.parse(await readFile(mf, 'utf8'))
    m.dump.sha256 = (await import('node:crypto')).createHash('sha256').update(data).digest('hex')
    await writeFile(mf, JSON.stringify(m))
    await expect(verifyBackup(f, { mode: 'archive', log })).rejects.toThrow(
      /verification of .* failed: .*(zstd|pg_restore|uncompress|input file)/i
    )
  })
})

describe('restoreBackup', () => {
  test('brings back the old rows and removes what was created since (a migration)', async () => {
    const before = await count(db, 'evm.logs')
    const c = await db.client()
    await c.query('INSERT INTO evm.logs (evm_chain_id, block_number) SELECT 1, g FROM generate_series(1, 5000) g')
    await c.query('DELETE FROM encrypted_key_rings')
    await c.query('CREATE TABLE evm.new_migration_table (x int); CREATE SCHEMA extra')
    await c.end()
    expect(await count(db, 'evm.logs')).toBe(before + 5000)
    const r = await restoreBackup({ databaseUrl: db.url, file: first.file, log })
    expect(await count(db, 'evm.logs')).toBe(before)
    expect(await count(db, 'encrypted_key_rings')).toBe(1)
    expect(r.keystore).toEqual({ encrypted_key_rings: 1, 'evm.key_states': 2 })
    expect(r.tables).toEqual({ evm: 2, public: 2 })
    const c2 = await db.client()
    const t = await c2.query(
      "SELECT to_regclass('evm.new_migration_table') AS t, (SELECT count(*) FROM pg_namespace WHERE nspname = 'extra') AS s"
    )
    await c2.end()
    expect(t.rows[0]).toEqual({ t: null, s: '0' })
  })

  test('a failed restore leaves the database as it was', async () => {
    const before = await count(db, 'evm.logs')
    const c = await db.client()
    // a session holding a lock the restore needs: the restore must time out, not hang, and roll back
    await c.query('BEGIN; LOCK TABLE evm.logs IN ACCESS SHARE MODE')
    const err = await restoreBackup({ databaseUrl: db.url, file: first.file, log, lockTimeoutMs: 500 }).catch(
      (e: Error) => e
    )
    await c.query('ROLLBACK')
    await c.end()
    expect((err as Error).message).toMatch(/left as it was.*lock timeout/s)
    expect(await count(db, 'evm.logs')).toBe(before)
  })
})

describe('encryption', () => {
  test('an age-encrypted backup: host cannot read it, the identity restores it', async () => {
    const identity = await generateIdentity()
    const recipient = await identityToRecipient(identity)
    const d = await mkdtemp(join(tmpdir(), 'clr-backup-age-'))
    cleanup.push(() => rm(d, { recursive: true, force: true }))
    const r = await createBackup({
      databaseUrl: db.url,
      dir: d,
      kind: 'pre-upgrade',
      recipient,
      files: [{ name: 'secrets.toml', path: join(rootDir, 'secrets.toml') }],
      log
    })
    expect(r.file).toMatch(/-pre-upgrade\.dump(\.zst)?\.age$/)
    expect(r.verified).toEqual(['sha256', 'archive-read'])
    expect(r.manifest).toMatchObject({ encrypted: true, recipient })
    const raw = await readFile(r.file)
    expect(raw.subarray(0, 21).toString()).toBe('age-encryption.org/v1')
    expect(raw.includes(Buffer.from('PGDMP'))).toBe(false)
    const tarEnc = await readFile(join(d, r.manifest.files!.file))
    expect(tarEnc.includes(Buffer.from(SECRET))).toBe(false)
    const dec = new Decrypter()
    dec.addIdentity(identity)
    expect(Buffer.from(tarUnpack(await dec.decrypt(tarEnc))[0].data).toString()).toContain(SECRET)

    // without the identity: checksum only, with a warning; a trial restore needs the identity
    const v0 = await verifyBackup(r.file, { mode: 'archive', log })
    expect(v0.checks).toEqual(['sha256'])
    await expect(verifyBackup(r.file, { mode: 'restore', databaseUrl: db.url, log })).rejects.toThrow(
      /needs the identity/
    )
    // a wrong identity is refused clearly
    await expect(verifyBackup(r.file, { mode: 'archive', identity: await generateIdentity(), log })).rejects.toThrow(
      /cannot decrypt/
    )
    const v = await verifyBackup(r.file, { mode: 'restore', identity, databaseUrl: db.url, log })
    expect(v.keystore).toEqual({ encrypted_key_rings: 1, 'evm.key_states': 2 })

    const target = await createDb('bkage')
    cleanup.push(() => target.drop())
    await restoreBackup({ databaseUrl: target.url, file: r.file, identity, log })
    expect(await count(target, 'evm.logs')).toBe(await count(db, 'evm.logs'))
    expect(await count(target, 'encrypted_key_rings')).toBe(1)
  })
})

describe('retention', () => {
  test('over a dozen backups: keeps the newest verified per kind, never touches foreign files', async () => {
    const small = await createDb('bkret')
    cleanup.push(() => small.drop())
    const c = await small.client()
    await c.query(
      "CREATE TABLE encrypted_key_rings (encrypted_keys jsonb); INSERT INTO encrypted_key_rings VALUES ('{}')"
    )
    await c.end()
    const d = await mkdtemp(join(tmpdir(), 'clr-backup-ret-'))
    cleanup.push(() => rm(d, { recursive: true, force: true }))
    const foreign = [
      'cl_backup_2.20.0.dump',
      'chainlink-rollout-notes.txt',
      'backup-2026-01-01.dump',
      'chainlink-rollout-x-20260101T000000000Z-scheduled.dump.zst.partial'
    ]
    for (const f of foreign) await writeFile(join(d, f), 'not ours')
    const kinds = [
      'scheduled',
      'scheduled',
      'pre-upgrade',
      'scheduled',
      'scheduled',
      'pre-upgrade',
      'scheduled',
      'scheduled',
      'pre-upgrade',
      'scheduled',
      'scheduled',
      'pre-upgrade',
      'scheduled'
    ] as const
    const made: BackupResult[] = []
    const t0 = Date.UTC(2026, 0, 1)
    for (const [i, kind] of kinds.entries())
      made.push(await createBackup({ databaseUrl: small.url, dir: d, kind, now: new Date(t0 + i * 3600_000), log }))
    // the newest backup (scheduled) failed verification; #10 (scheduled) too
    for (const i of [12, 9]) {
      const m = JSON.parse(await readFile(made[i].manifestFile, 'utf8'))
      m.verifications.push({ at: new Date().toISOString(), mode: 'archive', ok: false, checks: [], error: 'test' })
      await writeFile(made[i].manifestFile, JSON.stringify(m))
    }
    const list = await listBackups(d)
    expect(list.map((e) => e.file)).toEqual(made.map((m) => m.file).reverse())
    expect(list.filter((e) => !e.verified).map((e) => e.file)).toEqual([made[12].file, made[9].file])

    const res = await pruneBackups(d, { keep: 3, keepPreUpgrade: 2, log })
    const left = (await listBackups(d)).map((e) => made.findIndex((m) => m.file === e.file))
    // scheduled verified newest 3: 10, 7, 6; pre-upgrade newest 2: 11, 8; 12 unverified but newest: kept; 9 unverified, superseded: deleted
    expect(left).toEqual([12, 11, 10, 8, 7, 6])
    expect(res.deleted).toHaveLength(7)
    const files = await readdir(d)
    for (const f of foreign) expect(files).toContain(f)
    // every file left is either foreign or belongs to a kept set
    const keptBases = left.map((i) => basename(made[i].manifestFile, '.json'))
    expect(files.filter((f) => !foreign.includes(f) && !keptBases.some((b) => f.startsWith(b)))).toEqual([])

    // keep 0 never deletes the newest verified backup
    await pruneBackups(d, { keep: 0, keepPreUpgrade: 0, log })
    expect((await listBackups(d)).map((e) => made.findIndex((m) => m.file === e.file))).toEqual([12, 11])
  })
})

describe('secrets and the lock', () => {
  test('a wrong password fails clearly without printing it', async () => {
    const bad = db.url.replace(encodeURIComponent(PASSWORD), 'Wr0ng-Passw0rd-xyz')
    const d = await mkdtemp(join(tmpdir(), 'clr-backup-bad-'))
    cleanup.push(() => rm(d, { recursive: true, force: true }))
    const err = await createBackup({ databaseUrl: bad, dir: d, kind: 'scheduled', log }).catch((e: Error) => e)
    expect(String((err as Error).message)).toMatch(/cannot connect to database .*password authentication failed/)
    expect(String((err as Error).message)).not.toContain('Wr0ng-Passw0rd-xyz')
    expect(lines.join('\n')).not.toContain('Wr0ng-Passw0rd-xyz')
  })

  test('pg_dump failure leaves no file behind and says why', async () => {
    const d = await mkdtemp(join(tmpdir(), 'clr-backup-fail-'))
    cleanup.push(() => rm(d, { recursive: true, force: true }))
    const c = await db.client()
    // a lock pg_dump cannot get within its lock wait: it fails instead of queueing forever
    await c.query('BEGIN; LOCK TABLE pipeline_runs IN ACCESS EXCLUSIVE MODE')
    const err = await createBackup({
      databaseUrl: db.url,
      dir: d,
      kind: 'scheduled',
      lockWaitTimeoutMs: 300,
      log
    }).catch((e: Error) => e)
    await c.query('ROLLBACK')
    await c.end()
    expect((err as Error).message).toMatch(/pg_dump of .* exited with 1: .*LOCK TABLE public.pipeline_runs/)
    expect(await readdir(d)).toEqual([])
  })

  test('lockHolderPresent sees an unexpired lease and ignores an expired one', async () => {
    expect(await lockHolderPresent(db.url)).toEqual({ held: false })
    const c = await db.client()
    await c.query('CREATE TABLE lease_lock (client_id uuid NOT NULL, expires_at timestamptz NOT NULL)')
    await c.query(
      "INSERT INTO lease_lock VALUES ('11111111-2222-3333-4444-555555555555', now() + interval '10 seconds')"
    )
    expect(await lockHolderPresent(db.url)).toMatchObject({
      held: true,
      detail: expect.stringContaining('11111111-2222-3333-4444-555555555555')
    })
    await c.query("UPDATE lease_lock SET expires_at = now() - interval '1 second'")
    expect((await lockHolderPresent(db.url)).held).toBe(false)
    await c.query('SELECT pg_advisory_lock(1027321974924625846)')
    expect(await lockHolderPresent(db.url)).toMatchObject({ held: true, detail: expect.stringContaining('advisory') })
    await c.query('DROP TABLE lease_lock')
    await c.end()
  })
})

describe('directory layout', () => {
  let d2: TestDb
  let dd: string
  let set: BackupResult
  beforeAll(async () => {
    d2 = await createDb('bkdir')
    cleanup.push(() => d2.drop())
    await fillChainlinkLike(d2, 20000)
    dd = await mkdtemp(join(tmpdir(), 'clr-backup-dir-'))
    cleanup.push(() => rm(dd, { recursive: true, force: true }))
    set = await createBackup({ databaseUrl: d2.url, dir: dd, kind: 'pre-upgrade', format: 'directory', log })
  })

  test('a directory-format backup: one checksum per file in the manifest, verified in full', async () => {
    expect(basename(set.file)).toMatch(/-pre-upgrade\.dump\.d$/)
    expect(set.verified).toEqual(['sha256', 'archive-read'])
    const m = await readManifest(set.manifestFile)
    expect(m.layout).toBe('directory')
    const names = (await readdir(set.file)).sort()
    expect(m.dump.files!.map((f) => f.name)).toEqual(names)
    expect(names).toContain('toc.dat')
    expect(names.filter((n) => n.endsWith('.dat.zst')).length).toBeGreaterThanOrEqual(4)
    for (const f of m.dump.files!) expect(f.sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(m.dump.rawBytes).toBeGreaterThan(m.dump.bytes)
    expect((await stat(set.file)).mode & 0o777).toBe(0o700)
    // the set is listed like any other and a trial restore (pg_restore -j) checks the keystore
    expect((await listBackups(dd))[0]).toMatchObject({ file: set.file, verified: true })
    const v = await verifyBackup(set.file, { mode: 'restore', databaseUrl: d2.url, log })
    expect(v.checks).toEqual(['sha256', 'archive-read', 'trial-restore', 'keystore'])
  })

  test('restored in parallel into the database: old rows back, later changes gone, nothing left over', async () => {
    const before = await count(d2, 'evm.logs')
    const c = await d2.client()
    await c.query('INSERT INTO evm.logs (evm_chain_id, block_number) SELECT 1, g FROM generate_series(1, 100) g')
    await c.query('CREATE TABLE evm.new_migration_table (x int)')
    await c.end()
    const r = await restoreBackup({ databaseUrl: d2.url, file: set.file, log })
    expect(await count(d2, 'evm.logs')).toBe(before)
    expect(r.keystore).toEqual({ encrypted_key_rings: 1, 'evm.key_states': 2 })
    expect(r.tables).toEqual({ evm: 2, public: 2 })
    const admin = await d2.client()
    const left = await admin.query("SELECT datname FROM pg_database WHERE datname LIKE $1 || '\\_clr\\_%'", [d2.name])
    await admin.end()
    expect(left.rows).toEqual([])
    expect(lines.join('\n')).toMatch(/parallel restore into new database/)
    // no staging directory left beside the backup
    expect((await readdir(dd)).filter((f) => f.startsWith('.clr-'))).toEqual([])
  })

  test('tampered with: a changed, a removed or an added file is refused on verify and restore, database untouched', async () => {
    const m = await readManifest(set.manifestFile)
    const big = [...m.dump.files!].sort((a, b) => b.bytes - a.bytes)[0].name
    const c = await d2.client()
    await c.query('INSERT INTO evm.logs (evm_chain_id, block_number) VALUES (1, 424242)')
    await c.end()
    const marker = await count(d2, 'evm.logs')
    const copy = async (tag: string) => {
      const t = await mkdtemp(join(tmpdir(), `clr-dir-${tag}-`))
      cleanup.push(() => rm(t, { recursive: true, force: true }))
      execFileSync('cp', ['-a', set.file, set.manifestFile, t])
      return join(t, basename(set.file))
    }
    const flipped = await copy('flip')
    const fh = await open(join(flipped, big), 'r+')
    const b = Buffer.alloc(1)
    await fh.read(b, 0, 1, 100)
    b[0] ^= 0x01
    await fh.write(b, 0, 1, 100)
    await fh.close()
    await expect(verifyBackup(flipped, { mode: 'archive', log })).rejects.toThrow(
      new RegExp(`${big} does not match its manifest checksum .* altered or corrupted`)
    )
    await expect(restoreBackup({ databaseUrl: d2.url, file: flipped, log })).rejects.toThrow(
      new RegExp(`${big} does not match its manifest checksum`)
    )
    const removed = await copy('rm')
    await rm(join(removed, big))
    await expect(restoreBackup({ databaseUrl: d2.url, file: removed, log })).rejects.toThrow(
      new RegExp(`missing files its manifest lists: ${big}`)
    )
    const added = await copy('add')
    await writeFile(join(added, '9999.dat'), 'COPY injected\n')
    await expect(restoreBackup({ databaseUrl: d2.url, file: added, log })).rejects.toThrow(
      /holds files its manifest does not list: 9999\.dat/
    )
    expect(await count(d2, 'evm.logs')).toBe(marker)
  })

  test('a file that still restores but is not the one written is refused before the swap, database untouched', async () => {
    // The checksums are read beside the parallel restore. A data file with half its rows, compressed
    // again and padded to its old size with a zstd skippable frame, is a valid archive file that
    // restores into the copy: it must still never be swapped in.
    const m = await readManifest(set.manifestFile)
    const big = [...m.dump.files!].filter((f) => f.name.endsWith('.zst')).sort((a, b) => b.bytes - a.bytes)[0]
    const t = await mkdtemp(join(tmpdir(), 'clr-dir-rezst-'))
    cleanup.push(() => rm(t, { recursive: true, force: true }))
    execFileSync('cp', ['-a', set.file, set.manifestFile, t])
    const f = join(t, basename(set.file), big.name)
    const rows = execFileSync('zstd', ['-d', '-q', '-c', f], { maxBuffer: 1 << 28 })
      .toString('utf8')
      .split('\n')
    const again = execFileSync('zstd', ['-3', '-q', '-c'], {
      input: rows.slice(rows.length >> 1).join('\n'),
      maxBuffer: 1 << 28
    })
    expect(big.bytes - again.length).toBeGreaterThanOrEqual(8)
    const skippable = Buffer.alloc(big.bytes - again.length)
    skippable.writeUInt32LE(0x184d2a50, 0)
    skippable.writeUInt32LE(skippable.length - 8, 4)
    await writeFile(f, Buffer.concat([again, skippable]))
    const c = await d2.client()
    await c.query('INSERT INTO evm.logs (evm_chain_id, block_number) VALUES (1, 434343)')
    await c.end()
    const marker = await count(d2, 'evm.logs')
    const n = lines.length
    await expect(restoreBackup({ databaseUrl: d2.url, file: join(t, basename(set.file)), log })).rejects.toThrow(
      new RegExp(`the database was left as it was .*${big.name} does not match its manifest checksum`)
    )
    // it did restore into the copy first: the refusal is the checksum's, not pg_restore's
    expect(lines.slice(n).join('\n')).toMatch(/parallel restore into new database/)
    expect(await count(d2, 'evm.logs')).toBe(marker)
    const admin = await d2.client()
    const left = await admin.query("SELECT datname FROM pg_database WHERE datname LIKE $1 || '\\_clr\\_%'", [d2.name])
    // the next test counts on the rows as the test before left them
    await admin.query('DELETE FROM evm.logs WHERE block_number = 434343')
    await admin.end()
    expect(left.rows).toEqual([])
  })

  test('with another session on the database: no swap, restored in one transaction from the directory', async () => {
    const before = await count(d2, 'evm.logs')
    const c = await d2.client()
    await c.query('DELETE FROM encrypted_key_rings')
    const n = lines.length
    try {
      await restoreBackup({ databaseUrl: d2.url, file: set.file, log })
    } finally {
      await c.end()
    }
    // this test's session at least; one just closed by a test before may still be counted on a busy host
    expect(lines.slice(n).join('\n')).toMatch(/restoring in one transaction, not in parallel: \d+ other session\(s\)/)
    expect(await count(d2, 'encrypted_key_rings')).toBe(1)
    expect(await count(d2, 'evm.logs')).toBe(before - 1)
  })
})

describe('free space', () => {
  test('a backup refused for lack of space in backup-dir, naming it, with nothing written', async () => {
    const mnt = await mkdtemp(join(tmpdir(), 'clr-tmpfs-'))
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt])
    try {
      const err = await createBackup({ databaseUrl: db.url, dir: join(mnt, 'backups'), kind: 'scheduled', log }).catch(
        (e: Error) => e
      )
      expect(err).toBeInstanceOf(Error)
      expect((err as Error).message).toMatch(
        new RegExp(
          `not enough free space in backup-dir ${join(mnt, 'backups')}: the backup of ${db.name} .* needs about \\d+ MB .*, [01] MB free; nothing was written`
        )
      )
      expect(await readdir(mnt)).toEqual([])
    } finally {
      execFileSync('umount', [mnt])
      await rm(mnt, { recursive: true, force: true })
    }
  })
})
