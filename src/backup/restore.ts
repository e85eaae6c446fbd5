// restoreBackup: replaces the database's contents with a backup, atomically. The caller must
// make sure no node is using the database (see lockHolderPresent).
//
// `pg_restore --clean --if-exists` only drops objects that are in the dump: tables a newer node
// version's migrations created would survive and break the old version's next migration. So the
// restore is one psql transaction: drop every user schema (and recreate an empty public), then
// the archive's SQL (pg_restore -f -). Any error rolls the whole thing back; the database is
// either the backup or untouched.
//
// A directory-format backup is restored in parallel (pg_restore -j N) into a new database that
// is then swapped in (restore-parallel.ts), when the user may create databases; otherwise in
// the one transaction above, from an uncompressed staged copy.
import { dirname, join, basename } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { keystoreCounts } from './db.js'
import { manifestPathFor, readManifest } from './manifest.js'
import type { Log } from '../log.js'
import { BackupError, parseConn, pgClient, redact, run, type PgDumpDocker } from './pgtools.js'
import { checkSha256, openArchive, restoreRunner } from './verify.js'
import { checkDirectory } from './dirformat.js'
import { Progress } from './progress.js'
import { canSwap, restoreBySwap, withStagedDirectory } from './restore-parallel.js'

export interface RestoreOptions {
  databaseUrl: string
  /** the dump file (or its manifest) */
  file: string
  identity?: string
  pgDumpDocker?: PgDumpDocker
  /** max wait for the locks of the drop (default 60 s): fails instead of hanging behind a live session */
  lockTimeoutMs?: number
  log: Log
  signal?: AbortSignal
}

export interface RestoreResult {
  file: string
  database: string
  backupCreatedAt: string
  kind: string
  durationMs: number
  /** schema -> table count after the restore */
  tables: Record<string, number>
  keystore: Record<string, number>
  warnings: string[]
}

const CLEAN_SQL = (lockTimeoutMs: number) => `
SET lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))};
DO $clr$ DECLARE s text; BEGIN
  FOR s IN SELECT nspname FROM pg_namespace
           WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
  LOOP EXECUTE format('DROP SCHEMA %I CASCADE', s); END LOOP;
END $clr$;
CREATE SCHEMA public;
GRANT USAGE ON SCHEMA public TO PUBLIC;
`

export async function restoreBackup(opts: RestoreOptions): Promise<RestoreResult> {
  const t0 = Date.now()
  const log = opts.log
  const conn = parseConn(opts.databaseUrl)
  const manifestFile = manifestPathFor(opts.file)
  const m = await readManifest(manifestFile)
  const dumpFile = join(dirname(manifestFile), m.dump.file)
  if (m.layout === 'directory') await checkDirectory(dumpFile, m.dump.files ?? [], `the dump ${m.dump.file}`)
  else await checkSha256(dumpFile, m.dump, 'the dump')
  const warnings: string[] = []
  if (m.database.name !== conn.database) {
    warnings.push(`the backup is of database ${m.database.name}, restoring into ${conn.database}`)
    log.warning(`${warnings.at(-1)}`)
  }
  log.info(
    `restoring ${basename(dumpFile)} (${m.kind}, taken ${m.createdAt}) into ${conn.database}: every change since then is lost`
  )
  const runner = await restoreRunner(m.pgDump.version, opts.pgDumpDocker)
  if (m.layout === 'directory') {
    const swap = await canSwap(conn)
    if (swap.ok) {
      try {
        await restoreBySwap({
          conn,
          dumpDir: dumpFile,
          m,
          runner,
          lockTimeoutMs: opts.lockTimeoutMs ?? 60000,
          log,
          signal: opts.signal
        })
      } catch (e) {
        throw new BackupError(
          `restore of ${basename(dumpFile)} failed, the database was left as it was (restored into a copy, never swapped in): ${redact((e as Error).message, conn.password)}`
        )
      }
    } else {
      log.info(`restoring in one transaction, not in parallel: ${swap.why}`)
      await withStagedDirectory(dumpFile, m, log, (staged) =>
        restoreInOneTransaction(opts, conn, runner, dumpFile, m, staged)
      )
    }
  } else await restoreInOneTransaction(opts, conn, runner, dumpFile, m)
  return summarize(conn, dumpFile, m, t0, warnings, log)
}

/** pg_restore's SQL (from the archive stream, or from a staged directory) through psql in one transaction. */
async function restoreInOneTransaction(
  opts: RestoreOptions,
  conn: ReturnType<typeof parseConn>,
  runner: Awaited<ReturnType<typeof restoreRunner>>,
  dumpFile: string,
  m: Awaited<ReturnType<typeof readManifest>>,
  staged?: string
): Promise<void> {
  const src = staged ? undefined : await openArchive(dumpFile, m, opts.identity)
  let fed = 0
  src?.on('data', (c: Buffer) => (fed += c.length))
  const progress = new Progress({
    what: `restore of ${basename(dumpFile)}`,
    log: opts.log,
    ...(src ? { bytes: () => fed, totalBytes: m.dump.rawBytes } : {})
  })
  const toSql = run(runner, 'pg_restore', ['-f', '-', '--verbose', ...(staged ? [staged] : [])], undefined, {
    stdin: !staged,
    signal: opts.signal,
    what: 'read the archive',
    onLine: progress.onLine
  })
  const psql = run(
    runner,
    'psql',
    ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', '-w', '-d', conn.safeUrl, '-f', '-'],
    conn,
    { stdin: true, signal: opts.signal, what: `restore into ${conn.database}` }
  )
  psql.stdout.resume()
  try {
    psql.stdin!.write(CLEAN_SQL(opts.lockTimeoutMs ?? 60000))
    const rs = await Promise.allSettled([
      src ? pipeline(src, toSql.stdin!) : Promise.resolve(),
      toSql.done,
      pipeline(toSql.stdout, psql.stdin!),
      psql.done
    ])
    // the root cause first: an unreadable backup (decryption, decompression), then psql's own
    // error (a lock timeout, a failing statement), then pg_restore's (EPIPE after psql stopped)
    const benign = (e: NodeJS.ErrnoException) =>
      ['EPIPE', 'ECANCELED', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED'].includes(e.code ?? '') ||
      /\bECANCELED\b|\bEPIPE\b/.test(e.message ?? '')
    if (rs[0].status === 'rejected' && !benign(rs[0].reason)) throw rs[0].reason
    if (rs[3].status === 'rejected') throw rs[3].reason
    if (rs[1].status === 'rejected') throw rs[1].reason
    for (const r of rs) if (r.status === 'rejected') throw r.reason
  } catch (e) {
    throw new BackupError(
      `restore of ${basename(dumpFile)} failed, the database was left as it was (one transaction): ${redact((e as Error).message, conn.password)}`
    )
  } finally {
    progress.stop()
  }
}

async function summarize(
  conn: ReturnType<typeof parseConn>,
  dumpFile: string,
  m: Awaited<ReturnType<typeof readManifest>>,
  t0: number,
  warnings: string[],
  log: Log
): Promise<RestoreResult> {
  const c = await pgClient(conn)
  try {
    const { rows } = await c.query<{ s: string; n: string }>(
      "SELECT schemaname AS s, count(*) AS n FROM pg_tables WHERE schemaname NOT IN ('pg_catalog','information_schema') GROUP BY 1 ORDER BY 1"
    )
    const tables = Object.fromEntries(rows.map((r) => [r.s, Number(r.n)]))
    const keystore = await keystoreCounts(c)
    const durationMs = Date.now() - t0
    log.info(
      `restored ${Object.values(tables).reduce((a, b) => a + b, 0)} tables (${rows.map((r) => `${r.s} ${r.n}`).join(', ')}) in ${durationMs} ms; keystore: ${
        Object.keys(keystore).length
          ? Object.entries(keystore)
              .map(([k, n]) => `${k}=${n}`)
              .join(', ')
          : 'no keystore tables'
      }`
    )
    return {
      file: dumpFile,
      database: conn.database,
      backupCreatedAt: m.createdAt,
      kind: m.kind,
      durationMs,
      tables,
      keystore,
      warnings
    }
  } finally {
    await c.end().catch(() => undefined)
  }
}
