// The parallel restore of a directory-format backup: pg_restore -j N into a new database on the
// same server, checked, then swapped in for the target by two renames in one transaction.
// pg_restore -j cannot run in one transaction, so the swap is what keeps the restore atomic:
// until the renames commit the target is untouched, and a failure drops the new database.
// The swap needs the right to create databases; without it the caller uses the single-
// transaction restore instead. The old database is dropped once the swap has committed.
import { randomBytes } from 'node:crypto'
import { cpus } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { ident, keystoreCounts } from './db.js'
import { expandDirectory, removeDir, streamDirectory } from './dirformat.js'
import type { Manifest } from './manifest.js'
import { Progress } from './progress.js'
import type { Log } from '../log.js'
import { BackupError, pgClient, redact, run, type Conn, type ToolRunner } from './pgtools.js'
import { copyFits, ensureSpace, MARGIN } from './space.js'

/** -j for pg_dump/pg_restore: one per core, at least 1, at most 8. */
export function parallelJobs(): number {
  return Math.max(1, Math.min(8, cpus().length))
}

const lit = (s: string) => `'${s.replace(/'/g, "''")}'`

/** Whether a restore by swap is possible: the user may create databases and owns the target (or is
 * superuser), and no other session uses the target. */
async function canSwap(conn: Conn): Promise<{ ok: boolean; why?: string }> {
  const admin = await pgClient(conn.withDatabase('postgres'))
  try {
    const { rows } = await admin.query<{ su: boolean; cdb: boolean; owner: boolean }>(
      `SELECT r.rolsuper AS su, r.rolcreatedb AS cdb, pg_has_role(current_user, d.datdba, 'MEMBER') AS owner
       FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = $1`,
      [conn.database]
    )
    if (!rows.length) return { ok: false, why: `database ${conn.database} not found` }
    const r = rows[0]
    if (!r.su && !r.cdb) return { ok: false, why: 'the database user may not create databases (CREATEDB)' }
    if (!r.su && !r.owner) return { ok: false, why: 'the database user does not own the database' }
    // a session closed just before (the caller's own) can linger for a moment: wait up to 2 s
    let s = { rows: [{ n: '0' }] }
    for (let i = 0; i < 20; i++) {
      s = await admin.query<{ n: string }>(
        'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [conn.database]
      )
      if (Number(s.rows[0].n) === 0) break
      await new Promise((r) => setTimeout(r, 100))
    }
    if (Number(s.rows[0].n) > 0)
      return {
        ok: false,
        why: `${s.rows[0].n} other session(s) on ${conn.database} (a database is only swapped while nobody uses it)`
      }
    return { ok: true }
  } finally {
    await admin.end().catch(() => undefined)
  }
}

/** Whether a restore by swap may run: canSwap's rights and sessions, and room for the copy, which
 * lives beside the original on the server until the swap (never on a server it may fill). */
export async function swapPossible(conn: Conn, copyUnchecked = false): Promise<{ ok: boolean; why?: string }> {
  const can = await canSwap(conn)
  if (!can.ok) return can
  const c = await pgClient(conn)
  const fits = await copyFits(c, new URL(conn.safeUrl).hostname, conn.database).finally(() =>
    c.end().catch(() => undefined)
  )
  if (fits.ok || (fits.unknown && copyUnchecked)) return can
  return { ok: false, why: fits.unknown ? `${fits.why} (set 'db-copy-unchecked: true' to allow it)` : fits.why }
}

/**
 * Stages the uncompressed directory beside the backup (space checked), runs fn, removes it. fn's
 * `fed`, called once pg_restore has read the staged files, resolves when every file reached it
 * whole (decompressed on the fly, a file cut short looks like a short table to pg_restore) and
 * rejects otherwise: a restore in one transaction awaits it before its COMMIT. It is awaited
 * after fn too, so a restore by swap never swaps in a copy fed a broken stream.
 */
export async function withStagedDirectory<T>(
  dumpDir: string,
  m: Manifest,
  log: Log,
  fn: (staged: string, fed: () => Promise<void>) => Promise<T>
): Promise<T> {
  const parent = dirname(dumpDir)
  const staged = join(parent, `.clr-stage-${randomBytes(4).toString('hex')}`)
  // decompressed on the fly through named pipes when possible: no copy on disk, no wait
  const streamed = await streamDirectory(dumpDir, staged).catch(async () => {
    await removeDir(staged)
    return undefined
  })
  if (streamed) {
    // a feed can fail before anyone awaits it (fed() comes after pg_restore): never unhandled
    streamed.done.catch(() => undefined)
    let fed: Promise<void> | undefined
    // every pipe must have been read to its end; one never opened would wait forever
    const allFed = () =>
      (fed ??= (async () => {
        const grace = setTimeout(() => streamed.stop(), 10000)
        try {
          await streamed.done
        } finally {
          clearTimeout(grace)
        }
      })())
    try {
      const out = await fn(staged, allFed)
      await allFed()
      return out
    } finally {
      streamed.stop()
      await streamed.done.catch(() => undefined)
      await removeDir(staged)
    }
  }
  const raw = m.dump.rawBytes ?? m.database.bytes
  await ensureSpace(
    parent,
    raw * MARGIN,
    `the uncompressed copy of ${basename(dumpDir)} that pg_restore reads`,
    'the backup directory'
  )
  try {
    let read = 0
    const p = new Progress({
      what: `expanding ${basename(dumpDir)}`,
      log,
      bytes: () => read,
      totalBytes: m.dump.bytes
    })
    try {
      await expandDirectory(dumpDir, staged, (n) => (read += n))
    } finally {
      p.stop()
    }
    return await fn(staged, () => Promise.resolve())
  } finally {
    await removeDir(staged)
  }
}

/**
 * Settings of pg_restore -j's sessions, all per session (no server change):
 * - max_parallel_maintenance_workers=0: with -j as many as the cores, pg_restore already builds
 *   that many indexes at once; the server's own parallel index workers then only contend for the
 *   same cores (measured on the bed: -j 2 restore of a 768 MiB node database 14.7 s with them,
 *   11.1 s without).
 * - maintenance_work_mem=256MB: index sorts of the large tables in memory, not in temp files.
 * - synchronous_commit=off: each of pg_restore's many small commits (one per table, index,
 *   constraint) no longer waits for its WAL flush. Safe here because these commits only fill a
 *   new database nobody uses; it becomes the target only by the swap, whose transaction commits
 *   from another session with the server's own synchronous_commit. WAL is flushed in order, so
 *   the swap's flushed commit carries every record of the restore before it: after a crash the
 *   server has either the whole restored copy swapped in, or the old database (and a leftover
 *   copy under its _clr_new_ name).
 */
const RESTORE_SESSION = '-c max_parallel_maintenance_workers=0 -c maintenance_work_mem=256MB -c synchronous_commit=off'

/** pg_restore -j of a staged directory into database `into` (progress from --verbose). */
export async function pgRestoreParallel(o: {
  runner: ToolRunner
  staged: string
  into: Conn
  jobs: number
  tables: number
  args: string[]
  log: Log
  signal?: AbortSignal
  what: string
}): Promise<void> {
  const p = new Progress({ what: o.what, log: o.log, tables: o.tables })
  // Session settings of pg_restore's connections (RESTORE_SESSION).
  const url = new URL(o.into.safeUrl)
  url.searchParams.delete('options')
  // encodeURIComponent, not searchParams: libpq does not read '+' as a space
  url.search = `${url.search ? `${url.search}&` : '?'}options=${encodeURIComponent(RESTORE_SESSION)}`
  try {
    const r = run(
      o.runner,
      'pg_restore',
      ['-j', String(o.jobs), '--verbose', '--exit-on-error', ...o.args, '-w', '-d', url.toString(), o.staged],
      o.into,
      { signal: o.signal, what: o.what, onLine: p.onLine }
    )
    r.stdout.resume()
    await r.done
  } finally {
    p.stop()
  }
}

/**
 * Drops a database the swap set aside, with a warning instead of an error: the restore is done.
 * DROP DATABASE makes the server take an immediate checkpoint and wait for it, which after a
 * large restore writes out all of the restored data: that is why a rollback drops the previous
 * contents only once the node is back (keepPrevious), not while the node is down.
 */
export async function dropDatabase(conn: Conn, name: string, log: Log): Promise<boolean> {
  const warn = (e: Error) =>
    log.warning(`could not drop the previous database, now named ${name}: ${redact(e.message, conn.password)}`)
  const admin = await pgClient(conn.withDatabase('postgres')).catch((e: Error) => e)
  if (admin instanceof Error) {
    warn(admin)
    return false
  }
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${ident(name)}`)
    return true
  } catch (e) {
    warn(e as Error)
    return false
  } finally {
    await admin.end().catch(() => undefined)
  }
}

/**
 * The SQL that puts the contents a swap set aside (`old`) back as `target`, the restored copy
 * renamed aside in its turn (nothing dropped): for a restore whose node did not come back.
 */
export function swapBackSql(target: string, old: string): string {
  const restored = old.replace(/_clr_old_/, '_clr_restored_')
  return `ALTER DATABASE ${ident(target)} RENAME TO ${ident(restored)}; ALTER DATABASE ${ident(old)} RENAME TO ${ident(target)};`
}

/**
 * Restores a directory-format backup into conn's database by swap. Returns the name the previous
 * contents were kept under (keepPrevious), else nothing. Refuses before any work while other
 * sessions use the database.
 */
export async function restoreBySwap(o: {
  conn: Conn
  dumpDir: string
  m: Manifest
  runner: ToolRunner
  lockTimeoutMs: number
  log: Log
  signal?: AbortSignal
  /** the backup's checksums, read meanwhile: awaited before the swap, and first when the restore fails */
  checksums?: Promise<void>
  /** keep the previous contents (under the name returned) for the caller to drop with dropDatabase */
  keepPrevious?: boolean
}): Promise<string | undefined> {
  const { conn, log } = o
  const target = conn.database
  const staging = `${target.slice(0, 40)}_clr_new_${randomBytes(3).toString('hex')}`
  const old = `${target.slice(0, 40)}_clr_old_${randomBytes(3).toString('hex')}`
  const admin = await pgClient(conn.withDatabase('postgres'))
  let created = false
  try {
    const sessions = await admin.query<{ n: string }>(
      'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [target]
    )
    if (Number(sessions.rows[0].n) > 0)
      throw new BackupError(
        `${sessions.rows[0].n} session(s) still use database ${target}: stop every node (and client) using it before a restore`
      )
    const { rows } = await admin.query<{
      owner: string
      enc: string
      coll: string
      ctype: string
      acl: string | null
    }>(
      `SELECT pg_get_userbyid(datdba) AS owner, pg_encoding_to_char(encoding) AS enc, datcollate AS coll,
              datctype AS ctype, datacl::text AS acl FROM pg_database WHERE datname = $1`,
      [target]
    )
    const d = rows[0]
    await admin.query(
      `CREATE DATABASE ${ident(staging)} OWNER ${ident(d.owner)} TEMPLATE template0 ENCODING ${lit(d.enc)} LC_COLLATE ${lit(d.coll)} LC_CTYPE ${lit(d.ctype)}`
    )
    created = true
    // the database's own settings and grants are not in a pg_dump archive: copied over
    const settings = await admin.query<{ c: string[] }>(
      `SELECT s.setconfig AS c FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
       WHERE d.datname = $1 AND s.setrole = 0`,
      [target]
    )
    for (const kv of settings.rows[0]?.c ?? []) {
      const i = kv.indexOf('=')
      await admin.query(`ALTER DATABASE ${ident(staging)} SET ${ident(kv.slice(0, i))} = ${lit(kv.slice(i + 1))}`)
    }
    if (d.acl) {
      await admin.query(`REVOKE ALL ON DATABASE ${ident(staging)} FROM PUBLIC`)
      const grants = await admin.query<{ g: string | null; p: string }>(
        `SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END AS g, a.privilege_type AS p
         FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = $1`,
        [target]
      )
      for (const g of grants.rows)
        await admin.query(`GRANT ${g.p} ON DATABASE ${ident(staging)} TO ${g.g === null ? 'PUBLIC' : ident(g.g)}`)
    }
    log.info(`parallel restore into new database ${staging}; ${target} stays untouched until the swap`)
    const into = conn.withDatabase(staging)
    const tables = (o.m.dump.files ?? []).filter((f) => /^\d+\.dat/.test(f.name)).length
    try {
      await withStagedDirectory(o.dumpDir, o.m, log, (staged) =>
        pgRestoreParallel({
          runner: o.runner,
          staged,
          into,
          jobs: parallelJobs(),
          tables,
          args: [],
          log,
          signal: o.signal,
          what: `restore of ${basename(o.dumpDir)}`
        })
      )
    } catch (e) {
      // an altered file is the cause, whatever pg_restore or zstd made of it
      await o.checksums
      throw e
    }
    await o.checksums
    const c = await pgClient(into)
    try {
      const ks = await keystoreCounts(c)
      const expected = o.m.database.keystore ?? {}
      const diff = Object.keys({ ...expected, ...ks }).filter((k) => expected[k] !== ks[k])
      if (diff.length)
        throw new BackupError(
          `the restored keystore differs from the backup's: ${diff.map((k) => `${k} ${ks[k] ?? 'missing'} (backup ${expected[k] ?? 'missing'})`).join(', ')}`
        )
    } finally {
      await c.end().catch(() => undefined)
    }
    // the swap: both renames or neither; a session that appeared meanwhile makes it fail
    await admin.query('BEGIN')
    try {
      await admin.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(o.lockTimeoutMs))}`)
      await admin.query(`ALTER DATABASE ${ident(target)} RENAME TO ${ident(old)}`)
      await admin.query(`ALTER DATABASE ${ident(staging)} RENAME TO ${ident(target)}`)
      await admin.query('COMMIT')
    } catch (e) {
      await admin.query('ROLLBACK').catch(() => undefined)
      throw e
    }
    created = false
    if (o.keepPrevious) {
      log.info(
        `swapped: ${target} is now the restored copy; the previous contents stay as ${old} until the node is back`
      )
      return old
    }
    log.info(`swapped: ${target} is now the restored copy; dropping the previous contents (${old})`)
    await dropDatabase(conn, old, log)
    return undefined
  } finally {
    if (created)
      await admin
        .query(`DROP DATABASE IF EXISTS ${ident(staging)} WITH (FORCE)`)
        .catch((e: Error) =>
          log.warning(`could not drop the unfinished copy ${staging}: ${redact(e.message, conn.password)}`)
        )
    await admin.end().catch(() => undefined)
  }
}
