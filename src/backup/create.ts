// createBackup: pg_dump (custom format, uncompressed) -> zstd -> [age] -> sha256 -> temp file,
// fsync, rename; root-dir files in a tar beside it; a JSON manifest; then verification.
import { createWriteStream } from 'node:fs'
import { open, readFile, rename, stat, unlink } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { PassThrough, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import {
  chain,
  checkRecipient,
  encryptBytes,
  encryptStream,
  Hasher,
  tarPack,
  zstdCompress,
  zstdDecompress,
  zstdImpl,
  type TarEntry
} from './codec.js'
import { keystoreCounts, serverInfo } from './db.js'
import {
  backupBase,
  dumpName,
  filesName,
  fsyncDir,
  manifestName,
  privateDir,
  writeFileAtomic,
  writeManifest,
  type Compression,
  type Kind,
  type Manifest,
  type Verification
} from './manifest.js'
import { BackupError, chooseRunner, parseConn, pgClient, redact, run, type Log } from './pgtools.js'
import { feed, restoreRunner, verifyBackup } from './verify.js'
import { createHash } from 'node:crypto'

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

function fileEntryName(name: string, used: Set<string>): string {
  let n =
    name
      .replace(/^.*[\\/]/, '')
      .replace(/[^A-Za-z0-9._-]/g, '_')
      .replace(/^\.+$/, '_') || 'file'
  n = n.slice(0, 90)
  let k = n
  for (let i = 2; used.has(k); i++) k = `${n}.${i}`
  used.add(k)
  return k
}

export async function createBackup(opts: CreateBackupOptions): Promise<BackupResult> {
  const t0 = Date.now()
  const log = opts.log
  const conn = parseConn(opts.databaseUrl)
  const encrypted = !!opts.recipient
  if (opts.recipient) await checkRecipient(opts.recipient)

  // 1. the server, and a pg_dump that can dump it
  const c = await pgClient(conn)
  let info, keystore
  try {
    info = await serverInfo(c)
    keystore = await keystoreCounts(c)
  } finally {
    await c.end().catch(() => undefined)
  }
  const { runner, version: pgDumpVersion } = await chooseRunner(info.major, opts.pgDumpDocker, log)
  const impl = zstdImpl()
  const compression: Compression = impl ? 'zstd' : 'gzip'
  const dumpArgs = [
    '-Fc',
    compression === 'zstd' ? '-Z0' : '-Z1',
    `--lock-wait-timeout=${Math.max(1, Math.floor(opts.lockWaitTimeoutMs ?? 120000))}`
  ]

  // 2. names: sortable by time, our own prefix
  await privateDir(opts.dir)
  const at = opts.now ?? new Date()
  const base = backupBase(info.database, at, opts.kind)
  const final = join(opts.dir, dumpName(base, compression, encrypted))
  const tmp = `${final}.${process.pid}.tmp`
  log(
    `backup of ${info.database} (Postgres ${info.version}, ${(info.bytes / 1048576).toFixed(1)} MB) with pg_dump ${pgDumpVersion} (${runner.via}), ` +
      `${compression === 'zstd' ? `zstd-1 (${impl})` : 'gzip-1 in pg_dump (no zstd available)'}${encrypted ? `, encrypted to ${opts.recipient}` : ''} -> ${basename(final)}`
  )

  // 3. the dump, streamed to a temp file
  const hasher = new Hasher()
  const checks: string[] = []
  const dump = run(runner, 'pg_dump', [...dumpArgs, '-w', '-d', conn.safeUrl], conn, {
    signal: opts.signal,
    what: `pg_dump of ${info.database}`
  })
  try {
    const out = createWriteStream(tmp, { mode: 0o600, flags: 'wx' })
    const archive: Readable = compression === 'zstd' ? chain(dump.stdout, zstdCompress(1)) : dump.stdout
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
  } catch (e) {
    await unlink(tmp).catch(() => undefined)
    throw new BackupError(redact((e as Error).message, conn.password))
  }
  const dumpBytes = (await stat(final)).size
  const dumpMs = Date.now() - t0
  log(
    `dump written: ${(dumpBytes / 1048576).toFixed(1)} MB in ${dumpMs} ms (${(info.bytes / 1048576 / (dumpMs / 1000)).toFixed(1)} MB/s of database)`
  )

  // 4. root-dir files: one tar in the same set (encrypted like the dump)
  let files: Manifest['files']
  if (opts.files?.length) {
    const used = new Set<string>()
    const entries: TarEntry[] = []
    for (const f of opts.files) {
      let data: Buffer
      let mode: number
      try {
        data = await readFile(f.path)
        mode = (await stat(f.path)).mode & 0o777
      } catch (e) {
        throw new BackupError(
          `cannot read root-dir file ${f.name} (${f.path}): ${(e as NodeJS.ErrnoException).code ?? String(e)}`
        )
      }
      entries.push({ name: fileEntryName(f.name, used), data, mode })
    }
    let tar: Uint8Array = tarPack(entries)
    if (encrypted) tar = await encryptBytes(tar, opts.recipient!)
    const fname = filesName(base, encrypted)
    await writeFileAtomic(join(opts.dir, fname), tar, 0o600)
    files = {
      file: fname,
      bytes: tar.length,
      sha256: createHash('sha256').update(tar).digest('hex'),
      entries: entries.map((e) => ({ name: e.name, bytes: e.data.length }))
    }
    log(`root-dir files stored (${entries.length}): ${entries.map((e) => e.name).join(', ')}`)
  }

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
    compressor: compression === 'zstd' ? `zstd-1 ${impl}` : 'pg_dump gzip-1',
    encrypted,
    ...(opts.recipient ? { recipient: opts.recipient } : {}),
    ...(opts.node ? { node: opts.node } : {}),
    dump: { file: basename(final), bytes: dumpBytes, sha256: hasher.digest() },
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
      log(
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
  log(`backup ${basename(final)} verified (${v.checks.join(', ')}) in ${Date.now() - t0} ms total`)
  return { file: final, manifestFile, manifest, bytes, durationMs: Date.now() - t0, verified: v.checks }
}

/** Waits for all; throws the first failure in the given order (the dump's own error first). */
async function settle(ps: Promise<unknown>[]): Promise<void> {
  const rs = await Promise.allSettled(ps)
  for (const r of rs) if (r.status === 'rejected') throw r.reason
}
