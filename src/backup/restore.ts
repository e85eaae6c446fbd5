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
import type pg from 'pg'
import { pipeline } from 'node:stream/promises'
import { keystoreCounts } from './db.js'
import { manifestPathFor, readManifest, type Manifest } from './manifest.js'
import type { Log } from '../log.js'
import { BackupError, parseConn, pgClient, readerStopped, redact, run, type PgDumpDocker } from './pgtools.js'
import { checkSha256, openArchive, restoreRunner } from './archive.js'
import { checkDirectoryFiles, checkDirectoryHashes } from './dirformat.js'
import { Progress } from './progress.js'
import { canSwap, dropDatabase, restoreBySwap, withStagedDirectory } from './restore-parallel.js'

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
  /** with keepPrevious, after a restore by swap: the previous contents, and their drop (never throws) */
  previous?: { database: string; drop: () => Promise<boolean> }
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

/** The one message for a restore that cannot work, naming what stands in its way. */
export function cannotRestoreMessage(plan: Pick<RestorePlan, 'role' | 'blockers'>): string {
  return `the database role ${plan.role} cannot restore over what it may not drop: ${plan.blockers.join(', ')}; the archive would create these again. Give them to ${plan.role} ('ALTER ... OWNER TO ${plan.role}' as a superuser), or restore as a superuser`
}

/** What a restore as this role needs to know before it starts. */
interface RestorePlan {
  superuser: boolean
  role: string
  /** user schemas the role may not drop (kept, only the role's objects in them are replaced) */
  keptSchemas: string[]
  /** what the role cannot replace, so a restore cannot work: empty when it can */
  blockers: string[]
}

type Query = <R extends Record<string, unknown>>(sql: string) => Promise<R[]>

/**
 * Whether a restore as the connected role can replace the database's contents, read from the
 * catalog. It cannot where the archive would create again what the role may not drop: a schema
 * of another role other than `public` (its CREATE SCHEMA fails), an object of another role in
 * such a schema (already exists), or `public` kept without the right to create in it.
 */
export async function restorePlan(query: Query): Promise<RestorePlan> {
  const [me] = await query<{ role: string; su: boolean }>(
    'SELECT current_user AS role, rolsuper AS su FROM pg_roles WHERE rolname = current_user'
  )
  const kept = await query<{ nspname: string; owner: string; can_create: boolean; comment: string | null }>(
    `SELECT nspname, pg_get_userbyid(nspowner) AS owner, has_schema_privilege(oid, 'CREATE') AS can_create,
            obj_description(oid, 'pg_namespace') AS comment
       FROM pg_namespace
      WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
        AND NOT pg_has_role(current_user, nspowner, 'USAGE') ORDER BY 1`
  )
  const plan: RestorePlan = { superuser: me.su, role: me.role, keptSchemas: [], blockers: [] }
  if (me.su) return plan
  plan.keptSchemas = kept.map((k) => k.nspname)
  for (const k of kept) {
    if (k.nspname !== 'public') plan.blockers.push(`schema ${k.nspname} (owned by ${k.owner})`)
    else if (!k.can_create)
      plan.blockers.push(`schema public (owned by ${k.owner}, no CREATE privilege for ${me.role})`)
    // pg_dump writes a comment on public other than the default, and only its owner may set it
    else if (k.comment !== null && k.comment !== 'standard public schema')
      plan.blockers.push(`the comment on schema public (set by its owner ${k.owner})`)
  }
  // what the archive would create again in a kept schema: an object of another role there stays
  // (extension members and the sequences of identity or serial columns come with their owners)
  const foreign = await query<{ what: string }>(
    `WITH kept AS (SELECT oid, nspname FROM pg_namespace
                    WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
                      AND NOT pg_has_role(current_user, nspowner, 'USAGE')),
     o AS (
       SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                             WHEN 'f' THEN 'foreign table' ELSE 'table' END AS kind,
              format('%I.%I', k.nspname, c.relname) AS name, c.relowner AS owner, c.oid, 'pg_class'::regclass AS cls
         FROM pg_class c JOIN kept k ON k.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                   AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
       UNION ALL
       SELECT 'routine', p.oid::regprocedure::text, p.proowner, p.oid, 'pg_proc'::regclass
         FROM pg_proc p JOIN kept k ON k.oid = p.pronamespace
       UNION ALL
       SELECT 'type', format('%I.%I', k.nspname, t.typname), t.typowner, t.oid, 'pg_type'::regclass
         FROM pg_type t JOIN kept k ON k.oid = t.typnamespace
        WHERE t.typtype IN ('b', 'c', 'd', 'e', 'r')
          AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
          AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid))
     SELECT kind || ' ' || name || ' (owned by ' || pg_get_userbyid(owner) || ')' AS what FROM o
      WHERE NOT pg_has_role(current_user, owner, 'USAGE')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = o.cls AND d.objid = o.oid AND d.deptype = 'e')
      ORDER BY 1 LIMIT 6`
  )
  for (const f of foreign) plan.blockers.push(f.what)
  return plan
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
      : await canSwap(conn)
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
      await withStagedDirectory(dumpFile, m, log, (staged) =>
        restoreInOneTransaction(opts, conn, runner, dumpFile, m, noOwner, staged)
      )
    }
  } else await restoreInOneTransaction(opts, conn, runner, dumpFile, m, noOwner)
  const r = await summarize(conn, dumpFile, m, t0, warnings, log)
  if (previous) {
    const database = previous
    r.previous = { database, drop: () => dropDatabase(conn, database, log) }
  }
  return r
}

/**
 * What a one-transaction restore failed of, from its four parts (the archive fed to pg_restore,
 * pg_restore, its SQL piped to psql, psql), root cause first: an unreadable backup (decryption,
 * decompression), then psql's own error (a lock timeout, a failing statement), then pg_restore's
 * (EPIPE after psql stopped). The feed ending because pg_restore stopped reading is no failure
 * when pg_restore and psql both succeeded.
 */
export function restoreFailure(rs: PromiseSettledResult<unknown>[]): { reason: unknown } | undefined {
  const [feed, toSql, pipe, psql] = rs
  if (feed.status === 'rejected' && !readerStopped(feed.reason as NodeJS.ErrnoException)) return feed
  if (psql.status === 'rejected') return psql
  if (toSql.status === 'rejected') return toSql
  if (pipe.status === 'rejected') return pipe
  return undefined
}

/** pg_restore's SQL (from the archive stream, or from a staged directory) through psql in one transaction. */
async function restoreInOneTransaction(
  opts: RestoreOptions,
  conn: ReturnType<typeof parseConn>,
  runner: Awaited<ReturnType<typeof restoreRunner>>,
  dumpFile: string,
  m: Awaited<ReturnType<typeof readManifest>>,
  noOwner: boolean,
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
  const toSql = run(
    runner,
    'pg_restore',
    ['-f', '-', '--verbose', ...(noOwner ? ['--no-owner'] : []), ...(staged ? [staged] : [])],
    undefined,
    {
      stdin: !staged,
      signal: opts.signal,
      what: 'read the archive',
      onLine: progress.onLine
    }
  )
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
    const failure = restoreFailure(rs)
    if (failure) throw failure.reason
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
