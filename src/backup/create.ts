// createBackup: pg_dump (custom format, uncompressed) -> zstd -> [age] -> sha256 -> temp file,
// fsync, rename; or, for a large database, the directory layout (pg_dump -Fd -j N, each file
// zstd-compressed, see dirformat.ts); root-dir files in a tar beside it; a JSON manifest; then
// verification. Free space is checked before anything is written.
//
// Layout choice (measured on the bed, 2 vCPU, the node-shaped bench database, docs/backups.md):
// one file when encrypted (age to one file), when pg_dump runs in a container (it cannot write
// into the host's backup-dir), and below DIRECTORY_MIN_BYTES, where the start-up of parallel
// workers costs more than it saves; the directory layout above it, where pg_dump -j N and
// pg_restore -j N win on dump and even more on restore.
import { createWriteStream } from 'node:fs'
import { open, rename, stat, unlink } from 'node:fs/promises'
import { removeStaleTemps } from './leftovers.js'
import { basename, join } from 'node:path'
import { Transform } from 'node:stream'
import { dumpDirectory, listingDigest, removeDir } from './dirformat.js'
import { Progress } from './progress.js'
import { parallelJobs } from './restore-parallel.js'
import { ensureSpace, freeBytes, MARGIN, measuredRatios, serverDataDir } from './space.js'
import { PassThrough, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import {
  chain,
  checkRecipient,
  encryptStream,
  Hasher,
  zstdCompress,
  zstdDecompress,
  zstdImpl,
  hasZstdCli
} from './codec.js'
import { keystoreCounts, serverInfo } from './db.js'
import { readOwner, serverAddress, type BackupOwner } from './owner.js'
import {
  backupBase,
  dumpName,
  listBackups,
  fsyncDir,
  manifestName,
  privateDir,
  writeManifest,
  type Compression,
  type Kind,
  type Layout,
  type Manifest,
  type Verification
} from './manifest.js'
import type { Log } from '../log.js'
import { BackupError, chooseRunner, parseConn, pgClient, redact, run } from './pgtools.js'
import { feed, restoreRunner } from './archive.js'
import { verifyBackup } from './verify.js'
import { storeRootFiles } from './root-files.js'

export interface CreateBackupOptions {
  databaseUrl: string
  dir: string
  kind: Kind
  /** age public key (age1...): the backup is encrypted to it; the host cannot read it back */
  recipient?: string
  /** node root-dir files (config, secrets, TLS) stored in the same set, never printed */
  files?: { name: string; path: string }[]
  node?: { version?: string; image?: string; digest?: string }
  /** run pg_dump in this image when the host's is older than the server (or missing) */
  pgDumpDocker?: { image: string; network?: string }
  /** default 'archive' (checksum + full read); 'restore' adds a trial restore + keystore check */
  verify?: 'archive' | 'restore'
  /** pg_dump gives up when a table lock is not granted within this (default 120 s), rather than
   * queueing behind (and blocking everything queued behind) e.g. a migration's exclusive lock */
  lockWaitTimeoutMs?: number
  log: Log
  signal?: AbortSignal
  /** for tests: the timestamp in the name */
  now?: Date
  /** 'auto' (default): directory layout for large unencrypted databases, one file otherwise */
  format?: 'auto' | Layout
  /** auto picks the directory layout from this database size on (default DIRECTORY_MIN_BYTES) */
  directoryMinBytes?: number
}

/** From this database size on, the directory layout is faster for the backup and for the restore
 * (the rollback's downtime): measured on the bed at 134 MiB, backup 2.6 s vs 3.6 s one file,
 * restore 3.3 s vs 4.3 s; at 511 MiB 5.1 s vs 8.1 s and 10.3 s vs 15.3 s (README.md, "Backups
 * and restores at node sizes"). Smaller sizes were not measured: one file there. */
const DIRECTORY_MIN_BYTES = 128 * 1048576

/** Counts the bytes passing through (the uncompressed archive's size). */
class Counter extends Transform {
  bytes = 0
  _transform(c: Buffer, _e: BufferEncoding, cb: (e?: Error | null, d?: Buffer) => void) {
    this.bytes += c.length
    cb(null, c)
  }
}

/** Tables with data: the denominator of the progress lines. From the catalog only: a size
 * function would wait behind a lock that pg_dump itself gives up on (lock-wait-timeout). */
async function tableStats(c: import('pg').Client): Promise<{ tables: number }> {
  const { rows } = await c.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'`
  )
  return { tables: Number(rows[0].n) }
}

export interface BackupResult {
  file: string
  manifestFile: string
  manifest: Manifest
  /** size of the dump file (plus the files archive, if any) */
  bytes: number
  /** whole call: dump, write and verification */
  durationMs: number
  /** checks that passed: sha256, archive-read, trial-restore, keystore */
  verified: string[]
}

async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

export async function createBackup(opts: CreateBackupOptions): Promise<BackupResult> {
  const t0 = Date.now()
  const log = opts.log
  const conn = parseConn(opts.databaseUrl)
  const encrypted = !!opts.recipient
  if (opts.recipient) await checkRecipient(opts.recipient)

  // 1. the server, and a pg_dump that can dump it
  const c = await pgClient(conn)
  let info, keystore, stats, dataDir
  let owner: BackupOwner
  try {
    info = await serverInfo(c)
    owner = await readOwner(c, serverAddress(opts.databaseUrl))
    keystore = await keystoreCounts(c)
    stats = await tableStats(c)
    if ((opts.verify ?? 'archive') === 'restore') dataDir = await serverDataDir(c, new URL(conn.safeUrl).hostname)
  } finally {
    await c.end().catch(() => undefined)
  }
  const { runner, version: pgDumpVersion } = await chooseRunner(info.major, opts.pgDumpDocker, log)
  const impl = zstdImpl()
  const compression: Compression = impl ? 'zstd' : 'gzip'
  const lockWait = `--lock-wait-timeout=${Math.max(1, Math.floor(opts.lockWaitTimeoutMs ?? 120000))}`
  const jobs = parallelJobs()
  // the directory's files are compressed by the zstd CLI when present (dirformat.ts)
  const dirImpl = hasZstdCli() ? 'zstd-cli' : impl

  // 2. the layout, and the space it needs, checked before anything is written
  const format = opts.format ?? 'auto'
  if (format === 'directory' && encrypted)
    throw new BackupError('the directory layout cannot be encrypted: an encrypted backup is one file')
  if (format === 'directory' && (runner.via !== 'host' || !impl))
    throw new BackupError(
      `the directory layout needs the host's pg_dump and zstd (pg_dump runs ${runner.via === 'host' ? 'here but zstd is missing' : `in ${runner.via}`})`
    )
  const stale = await removeStaleTemps(opts.dir)
  if (stale.length) log.info(`removed ${stale.length} temp file(s) of killed backups: ${stale.join(', ')}`)
  const ratios = measuredRatios(await listBackups(opts.dir))
  const needFile = info.bytes * ratios.ratio * MARGIN
  // the directory's peak: uncompressed files waiting for compression, at worst all of them
  const needDir = info.bytes * Math.max(ratios.ratio, ratios.rawRatio) * MARGIN
  let layout: Layout = format === 'directory' ? 'directory' : 'file'
  if (
    format === 'auto' &&
    !encrypted &&
    runner.via === 'host' &&
    impl &&
    jobs > 1 &&
    info.bytes >= (opts.directoryMinBytes ?? DIRECTORY_MIN_BYTES)
  ) {
    layout = 'directory'
    if ((await freeBytes(opts.dir)).free < needDir && (await freeBytes(opts.dir)).free >= needFile) {
      layout = 'file'
      log.info('not enough free space for the directory layout (uncompressed files until compressed): one file instead')
    }
  }
  const dbMB = (info.bytes / 1048576).toFixed(0)
  await ensureSpace(
    opts.dir,
    layout === 'directory' ? needDir : needFile,
    `the backup of ${info.database} (${dbMB} MB database, ${layout === 'directory' ? `uncompressed files ${ratios.rawRatio.toFixed(2)}` : `compressed ${ratios.ratio.toFixed(2)}`} of it, ${ratios.source})`
  )
  if (dataDir)
    await ensureSpace(
      dataDir,
      info.bytes * MARGIN,
      `the trial restore's scratch copy of ${info.database} (${dbMB} MB)`,
      "the database server's data directory"
    )
  const dumpArgs =
    layout === 'directory'
      ? ['-Fd', '-j', String(jobs), '-Z0', lockWait]
      : ['-Fc', compression === 'zstd' ? '-Z0' : '-Z1', lockWait]

  // 3. names: sortable by time, our own prefix
  await privateDir(opts.dir)
  const at = opts.now ?? new Date()
  const base = backupBase(info.database, at, opts.kind)
  const final = join(opts.dir, dumpName(base, compression, encrypted, layout))
  const tmp = `${final}.${process.pid}.tmp`
  log.info(
    `backup of ${info.database} (Postgres ${info.version}, ${(info.bytes / 1048576).toFixed(1)} MB, ${stats.tables} tables) with pg_dump ${pgDumpVersion} (${runner.via}), ` +
      (layout === 'directory'
        ? `directory layout, ${jobs} jobs, zstd-1 per file (${dirImpl})`
        : `${compression === 'zstd' ? `zstd-1 (${impl})` : 'gzip-1 in pg_dump (no zstd available)'}${encrypted ? `, encrypted to ${opts.recipient}` : ''}`) +
      ` -> ${basename(final)}`
  )

  // 4. the dump, to a temp name, then renamed
  const hasher = new Hasher()
  const checks: string[] = []
  let rawBytes = 0
  let dirFiles: { name: string; bytes: number; sha256: string }[] | undefined
  const estRaw = info.bytes * ratios.rawRatio
  if (layout === 'directory') {
    const progress = new Progress({ what: `pg_dump of ${info.database}`, log, tables: stats.tables })
    try {
      const d = await dumpDirectory({
        runner,
        conn,
        out: tmp,
        jobs,
        extraArgs: [lockWait],
        progress,
        signal: opts.signal,
        what: `pg_dump of ${info.database}`
      })
      rawBytes = d.rawBytes
      dirFiles = d.files
      await fsyncDir(join(tmp, 'toc.dat'))
      await rename(tmp, final)
      await fsyncDir(final)
    } catch (e) {
      await removeDir(tmp)
      throw new BackupError(redact((e as Error).message, conn.password))
    } finally {
      progress.stop()
    }
  }
  const counter = new Counter()
  const progress =
    layout === 'file'
      ? new Progress({
          what: `pg_dump of ${info.database}`,
          log,
          tables: stats.tables,
          bytes: () => counter.bytes,
          totalBytes: estRaw
        })
      : undefined
  const dump =
    layout === 'file'
      ? run(runner, 'pg_dump', [...dumpArgs, '--verbose', '-w', '-d', conn.safeUrl], conn, {
          signal: opts.signal,
          what: `pg_dump of ${info.database}`,
          onLine: progress!.onLine
        })
      : undefined
  if (dump)
    try {
      const out = createWriteStream(tmp, { mode: 0o600, flags: 'wx' })
      const counted = chain(dump.stdout, counter)
      const archive: Readable = compression === 'zstd' ? chain(counted, zstdCompress(1)) : counted
      if (!encrypted) {
        await settle([dump.done, pipeline(archive, hasher, out)])
      } else {
        // The host cannot decrypt what it writes, so the full read of the archive happens here,
        // on the plaintext stream, while it is written (pg_restore -f /dev/null on a tee).
        const toFile = new PassThrough({ highWaterMark: 1 << 20 })
        const toCheck = new PassThrough({ highWaterMark: 1 << 20 })
        archive.on('error', (e) => {
          toFile.destroy(e)
          toCheck.destroy(e)
        })
        archive.pipe(toFile)
        archive.pipe(toCheck)
        const rr = await restoreRunner(pgDumpVersion, opts.pgDumpDocker)
        const check = run(rr, 'pg_restore', ['-f', '/dev/null'], undefined, {
          stdin: true,
          signal: opts.signal,
          what: 'read the archive while writing it'
        })
        const plain: Readable = compression === 'zstd' ? chain(toCheck, zstdDecompress()) : toCheck
        const enc = await encryptStream(toFile, opts.recipient!)
        await settle([dump.done, pipeline(enc, hasher, out), feed(plain, check)])
        checks.push('archive-read')
      }
      await fsyncFile(tmp)
      await rename(tmp, final)
      await fsyncDir(final)
      rawBytes = counter.bytes
    } catch (e) {
      await unlink(tmp).catch(() => undefined)
      throw new BackupError(redact((e as Error).message, conn.password))
    } finally {
      progress!.stop()
    }
  const dumpBytes = dirFiles ? dirFiles.reduce((a, f) => a + f.bytes, 0) : (await stat(final)).size
  const dumpMs = Date.now() - t0
  log.info(
    `dump written: ${(dumpBytes / 1048576).toFixed(1)} MB in ${dumpMs} ms (${(info.bytes / 1048576 / (dumpMs / 1000)).toFixed(1)} MB/s of database)`
  )

  // 4. root-dir files: one tar in the same set (encrypted like the dump)
  const files = opts.files?.length ? await storeRootFiles(opts.files, opts.dir, base, opts.recipient, log) : undefined

  // 5. the manifest
  const manifest: Manifest = {
    format: 'chainlink-rollout-backup',
    formatVersion: 1,
    kind: opts.kind,
    createdAt: at.toISOString(),
    durationMs: dumpMs,
    database: { name: info.database, serverVersion: info.version, bytes: info.bytes, keystore },
    pgDump: { version: pgDumpVersion, via: runner.via, args: dumpArgs },
    compression,
    compressor:
      layout === 'directory'
        ? `zstd-1 per file ${dirImpl}`
        : compression === 'zstd'
          ? `zstd-1 ${impl}`
          : 'pg_dump gzip-1',
    encrypted,
    ...(opts.recipient ? { recipient: opts.recipient } : {}),
    ...(opts.node ? { node: opts.node } : {}),
    owner,
    layout,
    dump: {
      file: basename(final),
      bytes: dumpBytes,
      sha256: dirFiles ? listingDigest(dirFiles) : hasher.digest(),
      rawBytes,
      ...(dirFiles ? { files: dirFiles } : {})
    },
    ...(files ? { files } : {}),
    verifications: []
  }
  const manifestFile = join(opts.dir, manifestName(base))
  await writeManifest(manifestFile, manifest)

  // 6. verification (recorded in the manifest)
  const mode = opts.verify ?? 'archive'
  let v: Verification
  if (encrypted) {
    // checksum of what is on disk; the archive was read in full above
    v = await verifyBackup(final, { mode: 'archive', log, record: false })
    v.checks.push(...checks)
    v.warnings = undefined
    if (mode === 'restore')
      log.info(
        'warning: encrypted backup: a trial restore needs the identity; run verifyBackup with it (mode restore) elsewhere'
      )
    manifest.verifications.push(v)
    await writeManifest(manifestFile, manifest)
  } else {
    v = await verifyBackup(final, {
      mode,
      log,
      databaseUrl: opts.databaseUrl,
      pgDumpDocker: opts.pgDumpDocker,
      signal: opts.signal
    })
    manifest.verifications.push(v)
  }
  const bytes = dumpBytes + (files?.bytes ?? 0)
  log.info(`backup ${basename(final)} verified (${v.checks.join(', ')}) in ${Date.now() - t0} ms total`)
  return { file: final, manifestFile, manifest, bytes, durationMs: Date.now() - t0, verified: v.checks }
}

/** Waits for all; throws the first failure in the given order (the dump's own error first). */
async function settle(ps: Promise<unknown>[]): Promise<void> {
  const rs = await Promise.allSettled(ps)
  for (const r of rs) if (r.status === 'rejected') throw r.reason
}
