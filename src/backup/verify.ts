// Verification of a backup set: checksums against the manifest, a full read of the archive
// (pg_restore of all data to /dev/null: `pg_restore -l` only reads the table of contents), and
// optionally a trial restore into a scratch database with a keystore check.
import { randomBytes } from 'node:crypto'
import { basename, dirname, join } from 'node:path'
import { checkSha256, feed, openArchive, restoreRunner } from './archive.js'
import { checkDirectory, expandDirectory } from './dirformat.js'
import { Progress } from './progress.js'
import { parallelJobs, pgRestoreParallel, withStagedDirectory } from './restore-parallel.js'
import { ident, keystoreCounts } from './db.js'
import {
  isVerified,
  manifestPathFor,
  readManifest,
  writeManifest,
  type Manifest,
  type Verification
} from './manifest.js'
import type { Log } from '../log.js'
import {
  BackupError,
  parseConn,
  pgClient,
  redact,
  run,
  type Conn,
  type PgDumpDocker,
  type ToolRunner
} from './pgtools.js'

export interface VerifyOptions {
  mode: 'archive' | 'restore'
  /** age secret key (AGE-SECRET-KEY-1...) for encrypted backups */
  identity?: string
  /** server for the trial restore's scratch database (mode 'restore') */
  databaseUrl?: string
  pgDumpDocker?: PgDumpDocker
  log: Log
  signal?: AbortSignal
  /** record the result in the manifest (default true) */
  record?: boolean
}

export async function verifyBackup(file: string, opts: VerifyOptions): Promise<Verification> {
  const log = opts.log
  const manifestFile = manifestPathFor(file)
  const m = await readManifest(manifestFile)
  const dumpFile = join(dirname(manifestFile), m.dump.file)
  const v: Verification = { at: new Date().toISOString(), mode: opts.mode, ok: false, checks: [], warnings: [] }
  const conn = opts.databaseUrl ? parseConn(opts.databaseUrl) : undefined
  try {
    if (m.layout === 'directory') await checkDirectory(dumpFile, m.dump.files ?? [], `the dump ${m.dump.file}`)
    else await checkSha256(dumpFile, m.dump, 'the dump')
    if (m.files) await checkSha256(join(dirname(manifestFile), m.files.file), m.files, 'the root-dir files archive')
    v.checks.push('sha256')
    log.info(`checksums match the manifest (${m.dump.file}${m.files ? ` and ${m.files.file}` : ''})`)
    if (m.encrypted && !opts.identity) {
      if (opts.mode === 'restore')
        throw new BackupError(`a trial restore of an encrypted backup needs the identity (age secret key)`)
      v.warnings!.push(
        'encrypted and no identity given: only the checksums were verified (the archive was read in full when it was written)'
      )
      log.warning(`${v.warnings!.at(-1)}`)
    } else if (opts.mode === 'archive' && m.layout === 'directory') {
      // every file decompressed in full (zstd frame checksums), and the table of contents read
      const runner = await restoreRunner(m.pgDump.version, opts.pgDumpDocker)
      const t0 = Date.now()
      let read = 0
      const p = new Progress({ what: `reading ${m.dump.file}`, log, bytes: () => read, totalBytes: m.dump.bytes })
      try {
        await expandDirectory(dumpFile, undefined, (n) => (read += n))
      } finally {
        p.stop()
      }
      const r = run(runner, 'pg_restore', ['-l', dumpFile], undefined, {
        signal: opts.signal,
        what: `read the table of contents of ${m.dump.file}`
      })
      r.stdout.resume()
      await r.done
      v.checks.push('archive-read')
      log.info(`archive read in full (every file decompressed, table of contents read) in ${Date.now() - t0} ms`)
    } else if (opts.mode === 'archive') {
      const runner = await restoreRunner(m.pgDump.version, opts.pgDumpDocker)
      const t0 = Date.now()
      const r = run(runner, 'pg_restore', ['-f', '/dev/null'], undefined, {
        stdin: true,
        signal: opts.signal,
        what: `read the archive ${m.dump.file}`
      })
      const src = await openArchive(dumpFile, m, opts.identity)
      let read = 0
      src.on('data', (c: Buffer) => (read += c.length))
      const p = new Progress({
        what: `reading ${m.dump.file}`,
        log,
        bytes: () => read,
        totalBytes: m.dump.rawBytes
      })
      try {
        await feed(src, r)
      } finally {
        p.stop()
      }
      v.checks.push('archive-read')
      log.info(`archive read in full by pg_restore in ${Date.now() - t0} ms`)
    } else {
      if (!conn)
        throw new BackupError('a trial restore needs the database URL (a scratch database is created on that server)')
      const runner = await restoreRunner(m.pgDump.version, opts.pgDumpDocker)
      const res = await trialRestore(dumpFile, m, conn, runner, opts)
      v.checks.push('archive-read', 'trial-restore', ...(res.keystoreChecked ? ['keystore'] : []))
      v.keystore = res.keystore
      v.warnings!.push(...res.warnings)
    }
    v.ok = true
  } catch (e) {
    v.error = redact((e as Error).message, conn?.password)
  }
  if (!v.warnings!.length) delete v.warnings
  if (opts.record !== false) {
    try {
      const fresh = await readManifest(manifestFile)
      fresh.verifications.push(v)
      await writeManifest(manifestFile, fresh)
    } catch (e) {
      log.warning(`could not record the verification in ${basename(manifestFile)}: ${(e as Error).message}`)
    }
  }
  if (!v.ok) throw new BackupError(`verification of ${basename(dumpFile)} failed: ${v.error}`)
  return v
}

/** Restores the archive into a scratch database on the same server, checks it, drops it. */
async function trialRestore(
  dumpFile: string,
  m: Manifest,
  conn: Conn,
  runner: ToolRunner,
  opts: VerifyOptions
): Promise<{ keystore: Record<string, number>; keystoreChecked: boolean; warnings: string[] }> {
  const log = opts.log
  const scratchName = `clr_verify_${randomBytes(4).toString('hex')}`
  const admin = await pgClient(conn)
  const warnings: string[] = []
  const t0 = Date.now()
  try {
    await admin.query(`CREATE DATABASE ${ident(scratchName)}`)
    log.info(`trial restore into scratch database ${scratchName}`)
    const scratch = conn.withDatabase(scratchName)
    if (m.layout === 'directory') {
      await withStagedDirectory(dumpFile, m, log, (staged) =>
        pgRestoreParallel({
          runner,
          staged,
          into: scratch,
          jobs: parallelJobs(),
          tables: (m.dump.files ?? []).filter((f) => /^\d+\.dat/.test(f.name)).length,
          args: ['--no-owner', '--no-acl'],
          log,
          signal: opts.signal,
          what: 'trial restore'
        })
      )
    } else {
      const r = run(
        runner,
        'pg_restore',
        ['--no-owner', '--no-acl', '--exit-on-error', '-w', '-d', scratch.safeUrl],
        scratch,
        { stdin: true, signal: opts.signal, what: 'trial restore' }
      )
      await feed(await openArchive(dumpFile, m, opts.identity), r)
    }
    const c = await pgClient(scratch)
    let keystore: Record<string, number>
    let tables: number
    try {
      keystore = await keystoreCounts(c)
      tables = Number(
        (
          await c.query(
            "SELECT count(*) AS n FROM pg_tables WHERE schemaname NOT IN ('pg_catalog','information_schema')"
          )
        ).rows[0].n
      )
    } finally {
      await c.end().catch(() => undefined)
    }
    log.info(`trial restore done in ${Date.now() - t0} ms: ${tables} tables`)
    let keystoreChecked = false
    if (!('encrypted_key_rings' in keystore)) {
      warnings.push(
        'no encrypted_key_rings table: not a Chainlink node database (or never started), keystore not checked'
      )
      log.warning(`${warnings.at(-1)}`)
    } else {
      log.info(
        `keystore: ${Object.entries(keystore)
          .map(([k, n]) => `${k}=${n}`)
          .join(', ')}`
      )
      const expected = m.database.keystore ?? {}
      const diff = Object.keys({ ...expected, ...keystore }).filter((k) => expected[k] !== keystore[k])
      if (diff.length)
        throw new BackupError(
          `keystore in the restored copy differs from the source at backup time: ${diff.map((k) => `${k} ${keystore[k] ?? 'missing'} (source ${expected[k] ?? 'missing'})`).join(', ')}`
        )
      if (keystore.encrypted_key_rings === 0) {
        warnings.push('encrypted_key_rings is empty: the node has no keys yet')
        log.warning(`${warnings.at(-1)}`)
      }
      keystoreChecked = true
    }
    return { keystore, keystoreChecked, warnings }
  } finally {
    await admin
      .query(`DROP DATABASE IF EXISTS ${ident(scratchName)} WITH (FORCE)`)
      .catch((e: Error) =>
        log.warning(`could not drop scratch database ${scratchName}: ${redact(e.message, conn.password)}`)
      )
    await admin.end().catch(() => undefined)
  }
}

export { isVerified }
