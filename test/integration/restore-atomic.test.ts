// A restore commits only what it restored whole (docs/algorithm.md, "Restore"): the action's
// `restore` with stop-node on a simulated node, each run broken a different way while the SQL
// streams into the database: pg_restore dying part-way or before its first byte (a wrapper first
// on PATH), an encrypted backup whose decryption fails mid-stream, a decompression feed of a
// directory backup that breaks, and the action's own process SIGKILLed mid-restore. After each:
// the database exactly as it was (tables, row counts and row hashes), the node back on its own
// data, the exit code and the message true.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals'
import { execFileSync, spawn } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import type pg from 'pg'
import { generateIdentity, identityToRecipient } from 'age-encryption'
import { createDb, loadBed, removeContainers, uniqueName, waitFor, docker, type TestDb } from '../support/bed.js'
import { runAction, visible } from '../support/action.js'
import { linesLog } from '../support/log.js'
import { createBackup } from '../../src/backup/create.js'
import { nodeUrl, readyz, startNode, waitReady, writers } from '../support/node.js'

jest.setTimeout(240000)

const prefix = uniqueName('clr-ra')
const name = `${prefix}-node`
let db: TestDb
let stateDir: string
let bin: string
const PATH = process.env.PATH ?? '/usr/bin:/bin'

/** What a user would compare: every table, and for the data tables their row count and a hash of their rows. */
async function fingerprint(c: pg.Client, heartbeatsUpTo: number): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const { rows } = await c.query<{ t: string }>(
    `SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables
      WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`
  )
  out.tables = rows.map((r) => r.t).join(',')
  for (const t of ['public.encrypted_key_rings', 'public.evm_logs']) {
    const r = await c.query(`SELECT count(*) AS n, coalesce(sum(hashtext(x::text)::bigint), 0) AS h FROM ${t} x`)
    out[t] = `${r.rows[0].n} rows, hash ${r.rows[0].h}`
  }
  // the node's own rows written before the restore: none may be lost
  const h = await c.query(
    `SELECT count(*) AS n, coalesce(sum(hashtext(x::text)::bigint), 0) AS h FROM sim_heartbeats x WHERE id <= $1`,
    [heartbeatsUpTo]
  )
  out.heartbeats = `${h.rows[0].n} rows, hash ${h.rows[0].h}`
  return out
}

async function snapshot(): Promise<{ fp: Record<string, string>; upTo: number }> {
  const c = await db.client()
  try {
    const upTo = Number((await c.query('SELECT coalesce(max(id), 0) AS m FROM sim_heartbeats')).rows[0].m)
    return { fp: await fingerprint(c, upTo), upTo }
  } finally {
    await c.end()
  }
}

async function fingerprintNow(upTo: number): Promise<Record<string, string>> {
  const c = await db.client()
  try {
    return await fingerprint(c, upTo)
  } finally {
    await c.end()
  }
}

/** A directory of wrappers put first on the action's PATH. */
function wrapperDir(tool: string, script: string): string {
  const d = join(bin, `${tool}-${Math.random().toString(36).slice(2, 8)}`)
  mkdirSync(d)
  writeFileSync(join(d, tool), `#!/bin/sh\n${script}\n`)
  chmodSync(join(d, tool), 0o755)
  return d
}

const real = (tool: string) => execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim()

const act = (inputs: Record<string, string>, opts: Parameters<typeof runAction>[1] = {}) =>
  runAction({ container: name, 'state-dir': stateDir, 'backup-dir': join(stateDir, 'backups'), ...inputs }, opts)

/** The live database differs from every backup: a row written after them. */
async function writeAfterBackup(what: string): Promise<void> {
  const c = await db.client()
  await c.query(`INSERT INTO encrypted_key_rings VALUES ($1, now())`, [JSON.stringify({ k: what })])
  await c.end()
}

/** A directory backup, a row written after it, and a zstd first on PATH whose every -d feeds
 * part of its file, then fails. */
async function directoryBackupWithBrokenZstd(after: string) {
  const set = await createBackup({
    databaseUrl: db.url,
    dir: join(stateDir, 'backups'),
    kind: 'scheduled',
    format: 'directory',
    log: linesLog()
  })
  await writeAfterBackup(after)
  const before = await snapshot()
  const dir = wrapperDir(
    'zstd',
    `case " $* " in *" -d "*) ${real('zstd')} "$@" | head -c 1000000; exit 1;; esac\nexec ${real('zstd')} "$@"`
  )
  return { set, before, dir }
}

/** After a failed restore: the node runs again, leads and serves, on its own data. */
async function expectNodeBackOnItsData(upTo: number): Promise<void> {
  await waitReady({ name }, 60000)
  expect(await readyz((await nodeUrl(name))!)).toBe(200)
  // it writes on after the rows it wrote before the restore
  await waitFor('a heartbeat after the restore', async () => {
    const c = await db.client()
    try {
      return Number((await c.query('SELECT count(*) AS n FROM sim_heartbeats WHERE id > $1', [upTo])).rows[0].n) > 0
    } finally {
      await c.end()
    }
  })
  expect((await writers(db)).interleaved).toBe(false)
}

let fileBackup: string
let encrypted: { file: string; identity: string }

beforeAll(async () => {
  db = await createDb('ratomic')
  stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
  bin = mkdtempSync(join(tmpdir(), 'clr-bin-'))
  await startNode({ name, tag: '2.19.0', db, layout: 'ports' })
  const c = await db.client()
  await c.query(`CREATE TABLE encrypted_key_rings (encrypted_keys jsonb, updated_at timestamptz)`)
  await c.query(`INSERT INTO encrypted_key_rings VALUES ('{"k":"v"}', now())`)
  // large enough that a restore takes a few seconds on the bed (its COPY alone over a second)
  await c.query(`CREATE TABLE evm_logs (id bigint PRIMARY KEY, block_hash bytea, data text)`)
  await c.query(
    `INSERT INTO evm_logs SELECT g, decode(md5(g::text) || md5((g * 7)::text), 'hex'), repeat(md5(g::text), 3)
       FROM generate_series(1, 600000) g`
  )
  await c.end()
  const b = await act({ operation: 'backup' })
  expect(b.exitCode).toBe(0)
  fileBackup = b.outputs['backup-file']
  const identity = await generateIdentity()
  const e = await act({ operation: 'backup', 'backup-recipient': await identityToRecipient(identity) })
  expect(e.exitCode).toBe(0)
  encrypted = { file: e.outputs['backup-file'], identity }
  await writeAfterBackup('written after the backups')
}, 240000)

afterAll(async () => {
  await removeContainers(prefix)
  await db.drop()
  rmSync(bin, { recursive: true, force: true })
})

describe('psql, as the restore runs it', () => {
  test('a script that opened a transaction and ends without COMMIT is rolled back', async () => {
    const bed = loadBed()
    const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-w', '-h', bed.pg.host, '-p', String(bed.pg.port)]
    const p = spawn('psql', [...args, '-U', bed.pg.user, '-d', db.name, '-f', '-'], {
      env: { ...process.env, PGPASSWORD: bed.pg.password },
      stdio: ['pipe', 'ignore', 'ignore']
    })
    p.stdin.end('BEGIN;\nCREATE TABLE eof_probe (x int);\nINSERT INTO eof_probe VALUES (1);\n')
    const code = await new Promise((r) => p.on('close', r))
    expect(code).toBe(0)
    const c = await db.client()
    const t = await c.query("SELECT to_regclass('public.eof_probe') AS t")
    await c.end()
    expect(t.rows[0].t).toBeNull()
  })
})

describe('restore with stop-node, broken while it streams: the database as it was, the node back on it', () => {
  test('pg_restore exits 1 after some statements', async () => {
    const before = await snapshot()
    const dir = wrapperDir(
      'pg_restore',
      `case " $* " in *" --version "*) exec ${real('pg_restore')} "$@";; esac\n${real('pg_restore')} "$@" | head -c 3000000\nexit 1`
    )
    const r = await act(
      { operation: 'restore', 'backup-file': fileBackup, 'stop-node': 'true' },
      { env: { PATH: `${dir}:${PATH}` } }
    )
    expect(r.exitCode).toBe(1)
    expect(visible(r.stdout)).toMatch(
      /::error::restore of .* failed, the database is unchanged and the node was started again: .*pg_restore exited with 1/
    )
    expect(await fingerprintNow(before.upTo)).toEqual(before.fp)
    await expectNodeBackOnItsData(before.upTo)
  })

  test('pg_restore exits 1 before its first byte', async () => {
    const before = await snapshot()
    const dir = wrapperDir(
      'pg_restore',
      `case " $* " in *" --version "*) exec ${real('pg_restore')} "$@";; esac\necho "pg_restore: error: out of memory" >&2\nexit 1`
    )
    const r = await act(
      { operation: 'restore', 'backup-file': fileBackup, 'stop-node': 'true' },
      { env: { PATH: `${dir}:${PATH}` } }
    )
    expect(r.exitCode).toBe(1)
    expect(visible(r.stdout)).toMatch(/::error::restore of .* failed, the database is unchanged .*out of memory/)
    expect(await fingerprintNow(before.upTo)).toEqual(before.fp)
    await expectNodeBackOnItsData(before.upTo)
  })

  test('an encrypted backup whose decryption fails mid-stream (damaged after its checksum was taken)', async () => {
    const before = await snapshot()
    // a copy whose manifest matches the damaged file: only the age stream itself can tell
    const d = mkdtempSync(join(stateDir, 'backups', 'damaged-'))
    const file = join(d, basename(encrypted.file))
    copyFileSync(encrypted.file, file)
    const bytes = readFileSync(file)
    bytes[Math.floor(bytes.length * 0.6)] ^= 0xff
    writeFileSync(file, bytes)
    const mfile = encrypted.file.replace(/\.dump(\.\w+)*$/, '.json')
    const m = JSON.parse(readFileSync(mfile, 'utf8'))
    m.dump.sha256 = createHash('sha256').update(bytes).digest('hex')
    delete m.files
    writeFileSync(join(d, basename(mfile)), JSON.stringify(m))
    try {
      const r = await act({
        operation: 'restore',
        'backup-file': file,
        'stop-node': 'true',
        'backup-identity': encrypted.identity
      })
      expect(r.exitCode).toBe(1)
      expect(visible(r.stdout)).toMatch(
        /::error::restore of .* failed, the database is unchanged and the node was started again/
      )
      expect(await fingerprintNow(before.upTo)).toEqual(before.fp)
      await expectNodeBackOnItsData(before.upTo)
    } finally {
      rmSync(d, { recursive: true, force: true })
    }
  })

  test("a directory backup's decompression breaks, restored in one transaction (another session on the database)", async () => {
    const { set, before, dir } = await directoryBackupWithBrokenZstd('written after the directory backup')
    // a session that is no node's: the swap is not possible, the one-transaction fallback runs
    const other = await db.client()
    try {
      const r = await act(
        { operation: 'restore', 'backup-file': set.file, 'stop-node': 'true' },
        { env: { PATH: `${dir}:${PATH}` } }
      )
      expect(visible(r.stdout)).toMatch(/restoring in one transaction, not in parallel/)
      expect(r.exitCode).toBe(1)
      expect(visible(r.stdout)).toMatch(/::error::restore of .* failed, the database is unchanged .*zstd decompression/)
    } finally {
      await other.end()
    }
    expect(await fingerprintNow(before.upTo)).toEqual(before.fp)
    await expectNodeBackOnItsData(before.upTo)
  })

  test("a directory backup's decompression breaks during a restore by swap: never swapped in", async () => {
    const { set, before, dir } = await directoryBackupWithBrokenZstd('written after the second directory backup')
    const r = await act(
      { operation: 'restore', 'backup-file': set.file, 'stop-node': 'true' },
      { env: { PATH: `${dir}:${PATH}` } }
    )
    expect(visible(r.stdout)).toMatch(/parallel restore into new database/)
    expect(r.exitCode).toBe(1)
    expect(visible(r.stdout)).toMatch(/::error::restore of .* failed, the database is unchanged .*never swapped in/)
    expect(await fingerprintNow(before.upTo)).toEqual(before.fp)
    const c = await db.client()
    const left = await c.query("SELECT datname FROM pg_database WHERE datname LIKE $1 || '\\_clr\\_%'", [db.name])
    await c.end()
    expect(left.rows).toEqual([])
    await expectNodeBackOnItsData(before.upTo)
  })

  test("the action's process SIGKILLed mid-restore: rolled back; `repair` starts the node, which leads on its own data", async () => {
    const before = await snapshot()
    const psqlCopying = async () => {
      const c = await db.client()
      try {
        const q = await c.query(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'psql' AND query ILIKE 'COPY%'`,
          [db.name]
        )
        return Number(q.rows[0].n) > 0
      } finally {
        await c.end()
      }
    }
    const r = await act(
      { operation: 'restore', 'backup-file': fileBackup, 'stop-node': 'true' },
      {
        post: false,
        hooks: [
          {
            when: (out) => /restoring .* into /.test(out),
            do: async (child) => {
              // the SQL is streaming: the data of the large table is being copied in
              await waitFor('the restore copying rows', psqlCopying, 60000, 20)
              child.kill('SIGKILL')
            }
          }
        ]
      }
    )
    await r.faultsDone
    expect(r.mainExitCode).toBeNull()
    // the restore's tools outlive the action for a moment; then nothing of it is left on the DB
    await waitFor(
      'the restore session gone',
      async () => {
        const c = await db.client()
        try {
          const q = await c.query(
            `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'psql'`,
            [db.name]
          )
          return Number(q.rows[0].n) === 0
        } finally {
          await c.end()
        }
      },
      60000
    )
    expect(await fingerprintNow(before.upTo)).toEqual(before.fp)
    // the operator's next run is `repair`: the restore is journaled, so it starts the node it
    // stopped and proves it leads (review N11), and says the database is as it was
    expect((await docker.getContainer(name).inspect()).State.Running).toBe(false)
    const status = await act({ operation: 'status' })
    expect(status.summary).toMatch(/Open journal \| restore run /)
    const rep = await act({ operation: 'repair' })
    expect({ exit: rep.exitCode, result: rep.outputs.result }).toEqual({ exit: 0, result: 'ok' })
    expect(rep.outputs.leader).toBe(name)
    expect(visible(rep.stdout)).toMatch(/did not commit: the database is as it was/)
    await expectNodeBackOnItsData(before.upTo)
    expect(await fingerprintNow(before.upTo)).toEqual(before.fp)
  })

  test('the job cancelled mid-restore: the post step starts the node and says truly what the database is', async () => {
    const before = await snapshot()
    const r = await act(
      { operation: 'restore', 'backup-file': fileBackup, 'stop-node': 'true' },
      { cancelWhen: (out) => /restoring .* into /.test(out) }
    )
    // the post step (the runner runs it after a cancel) finished what the restore began (review N11):
    // the restore committed whole before the cancel reached it, or not at all
    const m =
      /finished the interrupted restore: the restore of \S+ (committed|did not commit: the database is as it was)/.exec(
        visible(r.stdout)
      )
    expect(m).not.toBeNull()
    expect(r.outputs.result).toBe('ok')
    if (m![1] === 'committed') {
      await waitReady({ name }, 60000)
      expect(await readyz((await nodeUrl(name))!)).toBe(200)
    } else {
      await expectNodeBackOnItsData(before.upTo)
      expect(await fingerprintNow(before.upTo)).toEqual(before.fp)
    }
    const status = await act({ operation: 'status' })
    expect(status.summary).not.toMatch(/Open journal/)
  })
})
