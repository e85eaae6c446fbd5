// restoreBackup: replaces the database's contents with a backup, atomically. The caller must
// make sure no node is using the database (see lockHolderPresent).
//
// `pg_restore --clean --if-exists` only drops objects that are in the dump: tables a newer node
// version's migrations created would survive and break the old version's next migration. So the
// restore is one psql transaction: drop every user schema (and recreate an empty public), then
// the archive's SQL (pg_restore -f -). It commits only once everything that fed it succeeded
// (restoreInOneTransaction); any error, or this process dying, rolls the whole thing back: the
// database is either the backup or untouched.
//
// A directory-format backup is restored in parallel (pg_restore -j N) into a new database that
// is then swapped in (restore-parallel.ts), when the user may create databases; otherwise in
// the one transaction above, from an uncompressed staged copy.
import { dirname, join, basename } from 'node:path'
import type pg from 'pg'
import { pipeline } from 'node:stream/promises'
import { keystoreCounts, restorePlan, cannotRestoreMessage } from './db.js'
export { cannotRestoreMessage, restorePlan } from './db.js'
import { manifestPathFor, readManifest, type Manifest } from './manifest.js'
import type { Log } from '../log.js'
import { BackupError, parseConn, pgClient, readerStopped, redact, run, type PgDumpDocker } from './pgtools.js'
import { checkSha256, FinalCommitHeld, openArchive, restoreRunner } from './archive.js'
import { checkDirectoryFiles, checkDirectoryHashes } from './dirformat.js'
import { Progress } from './progress.js'
import { dropDatabase, swapPossible, restoreBySwap, swapBackSql, withStagedDirectory } from './restore-parallel.js'

export interface RestoreOptions {
  databaseUrl: string
  /** the dump file (or its manifest) */
  file: string
  identity?: string
  pgDumpDocker?: PgDumpDocker
  /** max wait for the locks of the drop (default 60 s): fails instead of hanging behind a live session */
  lockTimeoutMs?: number
  /**
   * A restore by swap keeps the previous contents as another database instead of dropping them at
   * once; `previous.drop` of the result drops them. For a caller whose node is down during the
   * restore: the drop's checkpoint then runs once the node is back (restore-parallel.ts).
   */
  keepPrevious?: boolean
  /** a restore by swap even when the server's free space cannot be known (input db-copy-unchecked) */
  copyUnchecked?: boolean
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
  /**
   * with keepPrevious, after a restore by swap: the previous contents, their drop (never throws),
   * and the SQL that swaps them back (run on the server's maintenance database)
   */
  previous?: { database: string; drop: () => Promise<boolean>; swapBack: string }
}

// Every schema the role may drop goes with all it holds. A schema of another role (on Postgres 14
// and older `public` belongs to the bootstrap superuser) stays, with its grants: only the objects
// this role owns in it are dropped, and the archive's SQL then runs with --no-owner, as a
// non-superuser cannot replay `ALTER SCHEMA public OWNER TO <superuser>`. The statements are
// listed first and run after: a cascade may already have taken an object later in the list
// (hence IF EXISTS), and a routine's signature must be read while it still exists.
const CLEAN_SQL = (lockTimeoutMs: number) => `
SET lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))};
DO $clr$
DECLARE stmt text; stmts text[];
BEGIN
  WITH me AS (SELECT rolsuper AS su FROM pg_roles WHERE rolname = current_user),
  ns AS (
    SELECT n.oid, n.nspname, (me.su OR pg_has_role(current_user, n.nspowner, 'USAGE')) AS mine
      FROM pg_namespace n, me
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'),
  ext AS (SELECT objid, classid FROM pg_depend WHERE deptype = 'e'),
  todo AS (
    SELECT 0 AS ord, format('DROP SCHEMA %I CASCADE', nspname) AS s FROM ns WHERE mine
    UNION ALL
    SELECT 1, format('DROP %s IF EXISTS %I.%I CASCADE',
             CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                            WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, ns.nspname, c.relname)
      FROM pg_class c JOIN ns ON ns.oid = c.relnamespace AND NOT ns.mine
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND pg_has_role(current_user, c.relowner, 'USAGE')
       AND (c.oid, 'pg_class'::regclass) NOT IN (SELECT objid, classid FROM ext)
       AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                AND d.objid = c.oid AND d.deptype = 'i'))
    UNION ALL
    SELECT 2, format('DROP ROUTINE IF EXISTS %s CASCADE', p.oid::regprocedure)
      FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace AND NOT ns.mine
     WHERE pg_has_role(current_user, p.proowner, 'USAGE')
       AND (p.oid, 'pg_proc'::regclass) NOT IN (SELECT objid, classid FROM ext)
    UNION ALL
    SELECT 3, format('DROP %s IF EXISTS %I.%I CASCADE', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
             ns.nspname, t.typname)
      FROM pg_type t JOIN ns ON ns.oid = t.typnamespace AND NOT ns.mine
     WHERE pg_has_role(current_user, t.typowner, 'USAGE') AND t.typtype IN ('b', 'c', 'd', 'e', 'r')
       AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
       AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)
       AND (t.oid, 'pg_type'::regclass) NOT IN (SELECT objid, classid FROM ext))
  SELECT array_agg(s ORDER BY ord) INTO stmts FROM todo;
  FOREACH stmt IN ARRAY coalesce(stmts, '{}') LOOP EXECUTE stmt; END LOOP;
  IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public') THEN
    CREATE SCHEMA public;
    GRANT USAGE ON SCHEMA public TO PUBLIC;
  END IF;
END $clr$;
`

async function withClient<T>(conn: ReturnType<typeof parseConn>, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await pgClient(conn)
  try {
    return await fn(c)
  } finally {
    await c.end().catch(() => undefined)
  }
}

export async function restoreBackup(opts: RestoreOptions): Promise<RestoreResult> {
  const t0 = Date.now()
  const conn = parseConn(opts.databaseUrl)
  const manifestFile = manifestPathFor(opts.file)
  const m = await readManifest(manifestFile)
  const dumpFile = join(dirname(manifestFile), m.dump.file)
  // A directory's checksums are read beside its parallel restore: that restore fills a copy, swapped
  // in only once they match (restoreBySwap awaits them first), so reading them before would only add
  // their time to the restore's (the rollback's downtime). Every other way awaits them before
  // touching the database.
  let checksums: Promise<void> | undefined
  if (m.layout === 'directory') {
    await checkDirectoryFiles(dumpFile, m.dump.files ?? [], `the dump ${m.dump.file}`)
    checksums = checkDirectoryHashes(dumpFile, m.dump.files ?? [], `the dump ${m.dump.file}`)
    checksums.catch(() => undefined)
  } else await checkSha256(dumpFile, m.dump, 'the dump')
  try {
    return await restoreChecked(opts, conn, dumpFile, m, t0, checksums)
  } finally {
    await checksums?.catch(() => undefined)
  }
}

async function restoreChecked(
  opts: RestoreOptions,
  conn: ReturnType<typeof parseConn>,
  dumpFile: string,
  m: Manifest,
  t0: number,
  checksums: Promise<void> | undefined
): Promise<RestoreResult> {
  const log = opts.log
  const warnings: string[] = []
  if (m.database.name !== conn.database) {
    warnings.push(`the backup is of database ${m.database.name}, restoring into ${conn.database}`)
    log.warning(`${warnings.at(-1)}`)
  }
  log.info(
    `restoring ${basename(dumpFile)} (${m.kind}, taken ${m.createdAt}) into ${conn.database}: every change since then is lost`
  )
  const runner = await restoreRunner(m.pgDump.version, opts.pgDumpDocker)
  const plan = await withClient(conn, (c) => restorePlan(async (sql) => (await c.query(sql)).rows))
  if (plan.blockers.length) throw new BackupError(cannotRestoreMessage(plan))
  // a kept schema (public of the superuser) cannot be reproduced in a copy made by this role
  const noOwner = plan.keptSchemas.length > 0
  if (noOwner)
    log.info(
      `schema ${plan.keptSchemas.join(', ')} belongs to another role: kept, with only the objects of ${plan.role} in it replaced`
    )
  let previous: string | undefined
  if (m.layout === 'directory') {
    const swap = noOwner
      ? { ok: false, why: `a copy made by ${plan.role} cannot keep schema ${plan.keptSchemas.join(', ')} of its owner` }
      : await swapPossible(conn, opts.copyUnchecked)
    if (swap.ok) {
      try {
        previous = await restoreBySwap({
          conn,
          dumpDir: dumpFile,
          m,
          runner,
          lockTimeoutMs: opts.lockTimeoutMs ?? 60000,
          log,
          signal: opts.signal,
          checksums,
          keepPrevious: opts.keepPrevious
        })
      } catch (e) {
        throw new BackupError(
          `restore of ${basename(dumpFile)} failed, the database was left as it was (restored into a copy, never swapped in): ${redact((e as Error).message, conn.password)}`
        )
      }
    } else {
      log.info(`restoring in one transaction, not in parallel: ${swap.why}`)
      await checksums
      await withStagedDirectory(dumpFile, m, log, (dir, fed) =>
        restoreInOneTransaction(opts, conn, runner, dumpFile, m, noOwner, { dir, fed })
      )
    }
  } else await restoreInOneTransaction(opts, conn, runner, dumpFile, m, noOwner)
  // the restore has committed: a failure to read its result must not read as a failed restore
  const r = await summarize(conn, dumpFile, m, t0, warnings, log).catch((e: Error) => {
    warnings.push(`restored; its tables could not be counted: ${redact(e.message, conn.password)}`)
    log.warning(warnings.at(-1)!)
    const none = {}
    return {
      file: dumpFile,
      database: conn.database,
      backupCreatedAt: m.createdAt,
      kind: m.kind,
      durationMs: Date.now() - t0,
      tables: none,
      keystore: none,
      warnings
    } as RestoreResult
  })
  if (previous) {
    const database = previous
    r.previous = {
      database,
      drop: () => dropDatabase(conn, database, log),
      swapBack: swapBackSql(conn.database, database)
    }
  }
  return r
}

/**
 * What a one-transaction restore failed of, from its parts (the archive fed to pg_restore,
 * pg_restore, its SQL piped to psql, psql when it ended on its own, and the staged directory's
 * decompression feeds), root cause first: an unreadable backup (decompression, decryption), then
 * psql's own error (a lock timeout, a failing statement), then pg_restore's (EPIPE after psql
 * stopped). The feed ending because pg_restore stopped reading is no failure when pg_restore and
 * psql both succeeded. `complete`: pg_restore's SQL ended with its final COMMIT (FinalCommitHeld);
 * without it the restore is not whole even when every part exited 0.
 */
export function restoreFailure(rs: PromiseSettledResult<unknown>[], complete = true): { reason: unknown } | undefined {
  const [feed, toSql, pipe, psql, staged] = rs
  if (staged?.status === 'rejected') return staged
  if (feed.status === 'rejected' && !readerStopped(feed.reason as NodeJS.ErrnoException)) return feed
  if (psql?.status === 'rejected') return psql
  if (toSql.status === 'rejected') return toSql
  if (pipe.status === 'rejected') return pipe
  if (!complete) return { reason: new BackupError("pg_restore's output ended before the end of the archive") }
  return undefined
}

/** p's rejection if it comes within a second, else nothing (a feed a failed pg_restore never read waits) */
const brokeAlready = (p: Promise<void>) => Promise.race([p, new Promise<void>((r) => setTimeout(r, 1000).unref())])

const settled = <T>(p: Promise<T>): Promise<PromiseSettledResult<T>> =>
  p.then(
    (value) => ({ status: 'fulfilled', value }),
    (reason: unknown) => ({ status: 'rejected', reason })
  )

/**
 * pg_restore's SQL (from the archive stream, or from a staged directory) through psql in one
 * transaction that this function opens and commits itself (docs/algorithm.md, "Restore"): BEGIN,
 * the drop, pg_restore's SQL without its own COMMIT, and COMMIT only after pg_restore exited 0
 * having written all of it and every feed (the archive's decryption and decompression, the staged
 * directory's) ended cleanly. Anything else ends psql without a COMMIT, and the server rolls the
 * transaction back when psql's session ends. psql never runs with --single-transaction, which
 * commits at the end of its input however early that comes: when this process dies mid-stream,
 * psql's input ends without a COMMIT too, so a killed action leaves the database as it was.
 */
async function restoreInOneTransaction(
  opts: RestoreOptions,
  conn: ReturnType<typeof parseConn>,
  runner: Awaited<ReturnType<typeof restoreRunner>>,
  dumpFile: string,
  m: Awaited<ReturnType<typeof readManifest>>,
  noOwner: boolean,
  staged?: { dir: string; fed: () => Promise<void> }
): Promise<void> {
  const src = staged ? undefined : await openArchive(dumpFile, m, opts.identity)
  let fed = 0
  src?.on('data', (c: Buffer) => (fed += c.length))
  const progress = new Progress({
    what: `restore of ${basename(dumpFile)}`,
    log: opts.log,
    ...(src ? { bytes: () => fed, totalBytes: m.dump.rawBytes } : {})
  })
  const toSql = run(
    runner,
    'pg_restore',
    [
      '-f',
      '-',
      '--verbose',
      '--single-transaction',
      ...(noOwner ? ['--no-owner'] : []),
      ...(staged ? [staged.dir] : [])
    ],
    undefined,
    { stdin: !staged, signal: opts.signal, what: 'read the archive', onLine: progress.onLine }
  )
  const psql = run(runner, 'psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-w', '-d', conn.safeUrl, '-f', '-'], conn, {
    stdin: true,
    signal: opts.signal,
    what: `restore into ${conn.database}`
  })
  psql.stdout.resume()
  let psqlEnded: PromiseSettledResult<string> | undefined
  const psqlDone = settled(psql.done).then((r) => (psqlEnded = r))
  const held = new FinalCommitHeld()
  try {
    psql.stdin!.write(`BEGIN;
${CLEAN_SQL(opts.lockTimeoutMs ?? 60000)}`)
    const toSqlDone = settled(toSql.done)
    const rs = await Promise.all([
      settled(src ? pipeline(src, toSql.stdin!) : Promise.resolve()),
      toSqlDone,
      settled(pipeline(toSql.stdout, held, psql.stdin!, { end: false })),
      // a staged directory's pipes are all read once pg_restore exited 0; when it failed, a feed
      // that broke already (a file cut short makes a malformed COPY) is the cause to name
      settled(toSqlDone.then((r) => (r.status === 'fulfilled' ? staged?.fed() : staged && brokeAlready(staged.fed()))))
    ])
    // psql ending before its COMMIT was sent is a failure whatever its exit code
    const early: PromiseSettledResult<unknown> | undefined =
      psqlEnded?.status === 'fulfilled'
        ? { status: 'rejected', reason: new BackupError('psql ended before the restore was complete') }
        : psqlEnded
    const failure = restoreFailure(
      [rs[0], rs[1], rs[2], early ?? { status: 'fulfilled', value: '' }, rs[3]],
      held.complete
    )
    if (failure) {
      // no COMMIT: the end of psql's input (and SIGINT, which cancels a running statement) ends
      // its session, and the server rolls the transaction back
      psql.stdin!.end()
      psql.child.kill('SIGINT')
      await psqlDone
      throw failure.reason
    }
    psql.stdin!.end('COMMIT;\n')
    await psql.done
  } catch (e) {
    throw new BackupError(
      `restore of ${basename(dumpFile)} failed, the database was left as it was (one transaction, not committed): ${redact((e as Error).message, conn.password)}`
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
