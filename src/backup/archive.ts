// Reading a backup's archive: its checksum against the manifest, its plaintext stream (decrypted,
// decompressed), feeding it to a tool, and the pg_restore that can read it. Verify, restore,
// create (the full read of an encrypted archive while it is written) and the rehearsal share these.
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { chain, decryptStream, Hasher, zstdDecompress } from './codec.js'
import type { Manifest } from './manifest.js'
import {
  BackupError,
  dockerRunner,
  hostRunner,
  parseToolVersion,
  readerStopped,
  run,
  toolVersion,
  type PgDumpDocker,
  type ToolRunner
} from './pgtools.js'

/** Streams a file through a sha256 and compares size and digest with the manifest. */
export async function checkSha256(
  path: string,
  expected: { bytes: number; sha256: string },
  what: string
): Promise<void> {
  let st
  try {
    st = await stat(path)
  } catch {
    throw new BackupError(`${what} is missing: ${path}`)
  }
  if (st.size !== expected.bytes) {
    throw new BackupError(
      `${what} is ${st.size} bytes but the manifest says ${expected.bytes}: the file is ${st.size < expected.bytes ? 'truncated' : 'longer than written'} (${basename(path)})`
    )
  }
  const h = new Hasher()
  await pipeline(createReadStream(path), h, async function* (src) {
    for await (const _ of src) void _
  })
  const got = h.digest()
  if (got !== expected.sha256)
    throw new BackupError(
      `${what} does not match its manifest checksum (sha256 ${got.slice(0, 16)}… ≠ ${expected.sha256.slice(0, 16)}…): the file was altered or corrupted (${basename(path)})`
    )
}

/** The plaintext custom-format archive of a backup file, as a stream. */
export async function openArchive(file: string, m: Manifest, identity: string | undefined): Promise<Readable> {
  let s: Readable = createReadStream(file)
  if (m.encrypted) {
    if (!identity)
      throw new BackupError(
        `${basename(file)} is encrypted to ${m.recipient ?? 'an age recipient'}; an identity (age secret key) is needed to read it`
      )
    s = await decryptStream(s, identity)
  }
  if (m.compression === 'zstd') s = chain(s, zstdDecompress())
  return s
}

/** Feeds a stream into a tool's stdin; reports the root cause (corrupt input before tool errors). */
export async function feed(src: Readable, r: ReturnType<typeof run>): Promise<string> {
  const [p, d] = await Promise.allSettled([pipeline(src, r.stdin!), r.done])
  if (p.status === 'rejected') {
    const e = p.reason as NodeJS.ErrnoException
    // fine when the tool succeeded (it read all it needed); otherwise its error counts
    if (!readerStopped(e)) throw new BackupError(e.message)
  }
  if (d.status === 'rejected') throw d.reason
  return d.value
}

/** The runner whose pg_restore can read an archive written by pg_dump `dumpVersion`. */
export async function restoreRunner(dumpVersion: string, docker: PgDumpDocker | undefined): Promise<ToolRunner> {
  const need = parseToolVersion(`(PostgreSQL) ${dumpVersion}`)?.major ?? 0
  const host = hostRunner()
  const hv = await toolVersion(host, 'pg_restore')
  if (hv && hv.major >= need) return host
  if (docker) return dockerRunner(docker)
  throw new BackupError(
    `the backup was written by pg_dump ${dumpVersion}; ${hv ? `pg_restore ${hv.version} on this host is older` : 'pg_restore is not installed on this host'}: install postgresql-client-${need} or set a pg_dump container image`
  )
}

const COMMIT_LINE = '\nCOMMIT;\n'
/** what pg_restore writes after its final COMMIT is a few comment lines and `\unrestrict <key>` */
const TRAILER_MAX = 4096

/**
 * pg_restore --single-transaction's SQL (`-f -`) passed on without its final COMMIT, so the caller
 * commits only once it knows pg_restore and every feed succeeded (docs/algorithm.md, "Restore").
 * With --single-transaction that COMMIT is the only transaction control pg_restore writes (a
 * plain restore would COMMIT each batch of large objects midway); it comes after the last
 * statement, followed only by the trailer. `complete`: the output ended with it, i.e. pg_restore
 * wrote its restore to the end. A "COMMIT;" line further back can only be data (a COPY row, a
 * routine's body) and passes unchanged; one at the end that is not followed by the trailer is
 * dropped all the same (then nothing is complete and nothing commits).
 */
export class FinalCommitHeld extends Transform {
  complete = false
  private held = ''

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    // latin1: one char per byte, so the bytes pass through exactly
    const s = this.held + chunk.toString('latin1')
    const i = s.lastIndexOf(COMMIT_LINE)
    const keep = i >= 0 && s.length - i <= TRAILER_MAX ? i : s.length - partialMatch(s, COMMIT_LINE)
    if (keep > 0) this.push(Buffer.from(s.slice(0, keep), 'latin1'))
    this.held = s.slice(keep)
    cb()
  }

  override _flush(cb: TransformCallback): void {
    if (this.held.startsWith(COMMIT_LINE)) {
      const rest = this.held.slice(COMMIT_LINE.length)
      this.complete = rest.split('\n').every((l) => l === '' || l.startsWith('--') || /^\\unrestrict \S+$/.test(l))
      this.push(Buffer.from(`\n${rest}`, 'latin1'))
    } else if (this.held) this.push(Buffer.from(this.held, 'latin1'))
    this.held = ''
    cb()
  }
}

/** The length of the longest end of s that begins `pattern` (a match the next chunk may complete). */
function partialMatch(s: string, pattern: string): number {
  for (let n = Math.min(pattern.length - 1, s.length); n > 0; n--) if (s.endsWith(pattern.slice(0, n))) return n
  return 0
}
