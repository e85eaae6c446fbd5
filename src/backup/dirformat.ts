// The directory layout of a backup: `pg_dump -Fd -j N -Z0` (one uncompressed file per table,
// written by N workers in parallel), each data file zstd-1-compressed by us as soon as pg_dump
// reports it finished (so compression overlaps the dump), then every file checksummed into the
// manifest. pg_restore 15 cannot read zstd data files and gzip-1 in pg_dump is slower and larger
// than zstd-1 (measured in docs/backups.md), so a restore or a full check first stages an
// uncompressed copy (zstd's frame checksums verify every byte on the way) and pg_restore -j
// reads that.
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { chmod, copyFile, mkdir, open, readdir, rm, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { spawn, spawnSync } from 'node:child_process'
import { hasZstdCli, Hasher, zstdCompress, zstdDecompress } from './codec.js'
import { BackupError, run, type Conn, type ToolRunner } from './pgtools.js'
import type { Progress } from './progress.js'

interface DirFile {
  name: string
  bytes: number
  sha256: string
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/**
 * Compresses dir/name to dir/name.zst and removes the original; returns the raw size and the
 * compressed file's size and sha256, taken on the way to the disk (no second read). With the zstd
 * CLI, zstd reads the file itself (C buffers, no 1.8 GB through Node streams; measured on the bed
 * at 2 GiB: the dump phase 24.7 s with Node's zlib, see docs/backups.md); -T0 lets the largest table, usually compressed last and alone, use every core.
 * The fsync is left to the caller (`synced`), so a compression slot never waits on the disk.
 */
async function compressFile(dir: string, name: string): Promise<{ raw: number; file: DirFile; synced: Promise<void> }> {
  const src = join(dir, name)
  const raw = (await stat(src)).size
  const h = new Hasher()
  const out = createWriteStream(`${src}.zst`, { mode: 0o600 })
  if (hasZstdCli()) {
    const child = spawn('zstd', ['-1', '-T0', '-q', '-c', '--', src], { stdio: ['ignore', 'pipe', 'pipe'] })
    let err = ''
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d))
    const exit = new Promise<void>((resolve, reject) => {
      child.on('error', reject)
      child.on('close', (code, sig) =>
        code === 0
          ? resolve()
          : reject(new BackupError(`zstd compression of ${name} failed (${sig ?? code}): ${err.trim()}`))
      )
    })
    await Promise.all([pipeline(child.stdout!, h, out), exit])
  } else await pipeline(createReadStream(src), zstdCompress(1), h, out)
  await unlink(src)
  return { raw, file: { name: `${name}.zst`, bytes: h.bytes, sha256: h.digest() }, synced: fsyncPath(`${src}.zst`) }
}

/** A small queue: at most `n` compressions at once (zlib's thread pool does the work). */
function queue(n: number) {
  let active = 0
  let failed: unknown
  const waiting: (() => void)[] = []
  const all: Promise<void>[] = []
  return {
    push(job: () => Promise<void>) {
      const p = (async () => {
        while (active >= n) await new Promise<void>((r) => waiting.push(r))
        active++
        try {
          if (!failed) await job()
        } catch (e) {
          failed ??= e
        } finally {
          active--
          waiting.shift()?.()
        }
      })()
      all.push(p)
    },
    async drain() {
      await Promise.all(all)
      if (failed) throw failed
    }
  }
}

/** pg_dump -Fd -j jobs into `out` (must not exist), with each data file compressed as it completes. */
export async function dumpDirectory(o: {
  runner: ToolRunner
  conn: Conn
  out: string
  jobs: number
  extraArgs: string[]
  progress?: Progress
  signal?: AbortSignal
  what: string
}): Promise<{ rawBytes: number; files: DirFile[] }> {
  let rawBytes = 0
  const q = queue(2)
  const files: DirFile[] = []
  const synced: Promise<void>[] = []
  const done = new Set<string>()
  const compress = (name: string) => {
    if (done.has(name)) return
    done.add(name)
    q.push(async () => {
      const c = await compressFile(o.out, name)
      c.synced.catch(() => undefined)
      synced.push(c.synced)
      rawBytes += c.raw
      files.push(c.file)
    })
  }
  const r = run(
    o.runner,
    'pg_dump',
    ['-Fd', '-j', String(o.jobs), '-Z0', '--verbose', ...o.extraArgs, '-w', '-f', o.out, '-d', o.conn.safeUrl],
    o.conn,
    {
      signal: o.signal,
      what: o.what,
      onLine: (line) => {
        const m = /^pg_dump: finished item (\d+) TABLE DATA /.exec(line)
        if (m) compress(`${m[1]}.dat`)
        return o.progress ? o.progress.onLine(line) : /^pg_dump: (?!error|warning)/.test(line)
      }
    }
  )
  r.stdout.resume()
  try {
    await r.done
  } finally {
    // whatever happens, the queued compressions end before the caller cleans the directory up
    await q.drain().catch(() => undefined)
    await Promise.allSettled(synced)
  }
  // data files pg_dump did not announce (large objects, a single job's output)
  for (const f of await readdir(o.out)) if (/^\d+\.dat$/.test(f) || /^blob_\d+\.dat$/.test(f)) compress(f)
  await q.drain()
  await Promise.all(synced)
  rawBytes += (await stat(join(o.out, 'toc.dat'))).size
  // owner-only, like the single-file dump (pg_dump creates them with the umask)
  await chmod(o.out, 0o700)
  for (const f of await readdir(o.out)) await chmod(join(o.out, f), 0o600)
  // the files pg_dump wrote itself (toc.dat, any not compressed) are hashed here
  const hashed = new Set(files.map((f) => f.name))
  for (const name of await readdir(o.out))
    if (!hashed.has(name)) {
      const h = new Hasher()
      await pipeline(createReadStream(join(o.out, name)), h, sink())
      await fsyncPath(join(o.out, name))
      files.push({ name, bytes: h.bytes, sha256: h.digest() })
    }
  files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  return { rawBytes, files }
}

/** The digest of a listing (sha256sum's format: "<hex>  <name>\n" per file). */
export function listingDigest(files: DirFile[]): string {
  const h = createHash('sha256')
  for (const f of files) h.update(`${f.sha256}  ${f.name}\n`)
  return h.digest('hex')
}

function sink(): Writable {
  return new Writable({ write: (_c, _e, cb) => cb() })
}

/** Compares the directory with the manifest's list: no file missing, none added, none altered. */
export async function checkDirectory(dir: string, expected: DirFile[], what: string): Promise<void> {
  await checkDirectoryFiles(dir, expected, what)
  await checkDirectoryHashes(dir, expected, what)
}

/** The cheap half of checkDirectory: the names and sizes of the files against the manifest's list. */
export async function checkDirectoryFiles(dir: string, expected: DirFile[], what: string): Promise<void> {
  let names: string[]
  try {
    names = (await readdir(dir)).sort()
  } catch {
    throw new BackupError(`${what} is missing: ${dir}`)
  }
  const want = new Map(expected.map((f) => [f.name, f]))
  const extra = names.filter((n) => !want.has(n))
  if (extra.length) throw new BackupError(`${what} holds files its manifest does not list: ${extra.join(', ')}`)
  const missing = expected.filter((f) => !names.includes(f.name)).map((f) => f.name)
  if (missing.length) throw new BackupError(`${what} is missing files its manifest lists: ${missing.join(', ')}`)
  for (const f of expected) {
    const size = (await stat(join(dir, f.name))).size
    if (size !== f.bytes)
      throw new BackupError(
        `${what}: ${f.name} is ${size} bytes but the manifest says ${f.bytes}: the file is ${size < f.bytes ? 'truncated' : 'longer than written'}`
      )
  }
}

/** The costly half of checkDirectory: every file's sha256 against the manifest's. */
export async function checkDirectoryHashes(dir: string, expected: DirFile[], what: string): Promise<void> {
  // two files hashed at once: sha256 is one core's work per file
  const q = queue(2)
  for (const f of expected)
    q.push(async () => {
      const h = new Hasher()
      await pipeline(createReadStream(join(dir, f.name)), h, sink())
      const got = h.digest()
      if (got !== f.sha256)
        throw new BackupError(
          `${what}: ${f.name} does not match its manifest checksum (sha256 ${got.slice(0, 16)}… ≠ ${f.sha256.slice(0, 16)}…): the file was altered or corrupted`
        )
    })
  await q.drain()
}

/**
 * Reads every compressed file in full (zstd frame checksums) and, with `to`, writes the
 * uncompressed directory pg_restore reads; `onBytes` counts compressed bytes read.
 */
export async function expandDirectory(
  dir: string,
  to: string | undefined,
  onBytes?: (n: number) => void
): Promise<void> {
  if (!to && hasZstdCli()) return testDirectory(dir)
  if (to) await mkdir(to, { recursive: false, mode: 0o700 })
  const q = queue(2)
  for (const name of (await readdir(dir)).sort()) {
    q.push(async () => {
      const src = createReadStream(join(dir, name))
      if (onBytes) src.on('data', (c) => onBytes((c as Buffer).length))
      if (!name.endsWith('.zst')) {
        if (to) await copyFile(join(dir, name), join(to, name))
        else await pipeline(src, sink())
        return
      }
      const target = to ? createWriteStream(join(to, name.slice(0, -4)), { mode: 0o600 }) : sink()
      try {
        await pipeline(src, zstdDecompress(), target)
      } catch (e) {
        throw new BackupError(`${name}: ${(e as Error).message}`)
      }
    })
  }
  await q.drain()
}

/** `zstd -t` over every compressed file (frame checksums), in two processes for two cores. */
async function testDirectory(dir: string): Promise<void> {
  const files = (await readdir(dir)).filter((n) => n.endsWith('.zst')).map((n) => join(dir, n))
  const sized = await Promise.all(files.map(async (f) => ({ f, b: (await stat(f)).size })))
  sized.sort((a, b) => b.b - a.b)
  const groups: { fs: string[]; b: number }[] = [
    { fs: [], b: 0 },
    { fs: [], b: 0 }
  ]
  for (const x of sized) {
    const g = groups[0].b <= groups[1].b ? groups[0] : groups[1]
    g.fs.push(x.f)
    g.b += x.b
  }
  await Promise.all(
    groups
      .filter((g) => g.fs.length)
      .map(
        (g) =>
          new Promise<void>((resolve, reject) => {
            const c = spawn('zstd', ['-t', '-q', '--', ...g.fs], { stdio: ['ignore', 'ignore', 'pipe'] })
            let err = ''
            c.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d))
            c.on('error', reject)
            c.on('close', (code) =>
              code === 0
                ? resolve()
                : reject(new BackupError(`zstd check failed: ${err.trim().replace(new RegExp(dir + '/', 'g'), '')}`))
            )
          })
      )
  )
}

interface Streamed {
  /** resolves when every data file was decompressed in full to its reader; rejects naming a failed one */
  done: Promise<void>
  /** ends the writers a failed pg_restore never read */
  stop(): void
}

/**
 * A directory pg_restore reads while the data is decompressed: toc.dat copied, and each data
 * file a named pipe fed by its own `zstd -d` (which waits until pg_restore opens it). Nothing
 * uncompressed touches the disk and pg_restore -j starts at once. Needs the zstd CLI and mkfifo
 * (undefined otherwise, or for an archive with large objects, whose files are read differently).
 * A data stream cut short would look like a short table to pg_restore, so the caller must
 * await `done` before it trusts the result.
 */
export async function streamDirectory(dir: string, to: string): Promise<Streamed | undefined> {
  const names = (await readdir(dir)).sort()
  if (!hasZstdCli() || names.some((n) => n.startsWith('blob')) || !names.includes('toc.dat')) return undefined
  if (spawnSync('mkfifo', ['--version'], { stdio: 'ignore' }).status !== 0) return undefined
  await mkdir(to, { mode: 0o700 })
  const writers: { name: string; child: ReturnType<typeof spawn>; exit: Promise<void> }[] = []
  for (const name of names) {
    if (!name.endsWith('.zst')) {
      await copyFile(join(dir, name), join(to, name))
      continue
    }
    const fifo = join(to, name.slice(0, -4))
    if (spawnSync('mkfifo', ['-m', '600', fifo], { stdio: 'ignore' }).status !== 0) {
      for (const w of writers) w.child.kill()
      return undefined
    }
    const child = spawn('sh', ['-c', 'exec zstd -d -q -c -- "$1" > "$2"', 'sh', join(dir, name), fifo], {
      stdio: ['ignore', 'ignore', 'pipe']
    })
    let err = ''
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d))
    const exit = new Promise<void>((resolve, reject) => {
      child.on('error', (e) => reject(new BackupError(`${name}: ${e.message}`)))
      child.on('close', (code, sig) =>
        code === 0
          ? resolve()
          : reject(
              new BackupError(
                `${name}: zstd decompression ${sig ? `stopped by ${sig}` : `failed (${code})`}${err ? `: ${err.trim()}` : ''} (the file is corrupt or truncated)`
              )
            )
      )
    })
    exit.catch(() => undefined)
    writers.push({ name, child, exit })
  }
  return {
    done: Promise.all(writers.map((w) => w.exit)).then(() => undefined),
    stop() {
      for (const w of writers) if (w.child.exitCode === null) w.child.kill('SIGKILL')
    }
  }
}

export async function removeDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true })
}
