// The byte streams of a backup: zstd (de)compression, age (de)encryption, sha256 while
// streaming, and a minimal ustar writer/reader for the root-dir files.
//
// Compression choice (measured on the bed, 2 vCPU, a 178 MB Chainlink-like DB, host pg_dump 15):
//   pg_dump -Fc (default gzip-6)       4.35 s   70.8 MB   <- CPU-bound in pg_dump's own process
//   pg_dump -Fc -Z1                    1.80 s   78.8 MB
//   pg_dump -Fc -Z0 (no compression)   1.10 s  226.8 MB
//   pg_dump -Fc -Z0 | zstd -T0 -1      0.82 s   60.4 MB   (zstd CLI, multi-threaded)
//   pg_dump -Fc -Z0 | Node zlib zstd-1 1.08 s   60.4 MB   (in-process, libuv thread pool)
//   pg_dump -Fc -Z0 | Node zlib zstd-3 2.44 s   66.8 MB   (level 3 is slower AND larger on hex bytea)
// So: pg_dump writes an uncompressed custom archive (-Z0) and we compress it outside pg_dump
// with zstd level 1 (content checksum on), on another core: as fast as the uncompressed dump,
// 4x faster than the default and 15% smaller. Node's built-in zstd (Node >= 22.15, so always in
// the node24 action runtime) needs no binary; the zstd CLI is the fallback on older Node
// (same format). pg_dump >= 16 could do `-Z zstd` itself, but single-threaded inside pg_dump,
// which is exactly the CPU-bound shape we avoid, so we do not use it. With neither available we
// fall back to pg_dump's own `-Z1` gzip (a plain .dump file).
// Node zlib's ZSTD_c_nbWorkers crashed in Node 24.21 (ERR_STREAM_PUSH_AFTER_EOF), so it is not set.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { Duplex, Readable, Transform, type TransformCallback } from 'node:stream'
import * as zlib from 'node:zlib'

type ZstdZlib = {
  createZstdCompress?: (o?: { params?: Record<number, number> }) => Transform
  createZstdDecompress?: () => Transform
  constants: Record<string, number>
}
const z = zlib as unknown as ZstdZlib

let zstdCli: boolean | undefined
export function hasZstdCli(): boolean {
  if (zstdCli === undefined) {
    try {
      zstdCli = spawnSync('zstd', ['--version'], { stdio: 'ignore' }).status === 0
    } catch {
      zstdCli = false
    }
  }
  return zstdCli
}

/** Which zstd implementation is available: 'node-zlib', 'zstd-cli', or undefined. */
export function zstdImpl(): 'node-zlib' | 'zstd-cli' | undefined {
  if (typeof z.createZstdCompress === 'function' && typeof z.createZstdDecompress === 'function') return 'node-zlib'
  return hasZstdCli() ? 'zstd-cli' : undefined
}

/** A zstd CLI process as a Duplex with backpressure both ways; a non-zero exit is an error. */
class CliDuplex extends Duplex {
  private child: ChildProcess
  constructor(args: string[], what: string) {
    super()
    const child = (this.child = spawn('zstd', args, { stdio: ['pipe', 'pipe', 'pipe'] }))
    let err = ''
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d))
    child.stdin!.on('error', () => undefined)
    child.stdout!.on('data', (d: Buffer) => {
      if (!this.push(d)) child.stdout!.pause()
    })
    child.on('error', (e) => this.destroy(new Error(`${what} failed: ${e.message}`)))
    child.on('close', (code, sig) => {
      if (code === 0) this.push(null)
      else if (!this.destroyed)
        this.destroy(
          new Error(`${what} failed (zstd ${sig ? `killed by ${sig}` : `exited with ${code}`}): ${err.trim()}`)
        )
    })
  }
  _read() {
    this.child.stdout!.resume()
  }
  _write(chunk: Buffer, _e: BufferEncoding, cb: (e?: Error | null) => void) {
    if (this.child.stdin!.write(chunk)) cb()
    else this.child.stdin!.once('drain', () => cb())
  }
  _final(cb: (e?: Error | null) => void) {
    this.child.stdin!.end(cb)
  }
  _destroy(e: Error | null, cb: (e?: Error | null) => void) {
    if (this.child.exitCode === null) this.child.kill()
    cb(e)
  }
}

export function zstdCompress(level = 1): Duplex {
  if (zstdImpl() === 'node-zlib') {
    const c = z.constants
    return z.createZstdCompress!({ params: { [c.ZSTD_c_compressionLevel]: level, [c.ZSTD_c_checksumFlag]: 1 } })
  }
  return new CliDuplex([`-${level}`, '-q', '-c', '-T0'], 'zstd compression')
}

export function zstdDecompress(): Duplex {
  if (zstdImpl() === 'node-zlib') {
    const d = z.createZstdDecompress!()
    // zlib's messages are terse ("Unknown frame descriptor"); say what failed
    return d.on(
      'error',
      (e: Error) => (e.message = `zstd decompression failed: ${e.message} (the file is corrupt or truncated)`)
    )
  }
  return new CliDuplex(['-d', '-q', '-c'], 'zstd decompression')
}

/** Passes bytes through, computing sha256 and the byte count. */
export class Hasher extends Transform {
  private h = createHash('sha256')
  bytes = 0
  _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback) {
    this.h.update(chunk)
    this.bytes += chunk.length
    cb(null, chunk)
  }
  digest(): string {
    return this.h.digest('hex')
  }
}

type Age = typeof import('age-encryption')
let agePromise: Promise<Age> | undefined
const age = () => (agePromise ??= import('age-encryption'))

export async function checkRecipient(recipient: string): Promise<void> {
  const { Encrypter } = await age()
  try {
    new Encrypter().addRecipient(recipient)
  } catch (e) {
    throw new Error(`the backup recipient is not a valid age public key (age1...): ${(e as Error).message}`)
  }
}

/**
 * Whether an identity (one AGE-SECRET-KEY-1... per line, comments allowed) holds the key of
 * a recipient: checked before a restore stops anything, as decryption fails only once it runs.
 */
export async function identityOpens(identity: string, recipient: string): Promise<boolean> {
  const { identityToRecipient } = await age()
  for (const line of identity.split('\n')) {
    const key = line.trim()
    if (!key.startsWith('AGE-SECRET-KEY-')) continue
    try {
      if ((await identityToRecipient(key)) === recipient.trim()) return true
    } catch {
      // not a valid key: the others may still match
    }
  }
  return false
}

/** age-encrypts a stream to a recipient (streaming, 64 KiB chunks, constant memory). */
export async function encryptStream(src: Readable, recipient: string): Promise<Readable> {
  const { Encrypter } = await age()
  const e = new Encrypter()
  e.addRecipient(recipient)
  const out = await e.encrypt(Readable.toWeb(src) as unknown as ReadableStream<Uint8Array>)
  return Readable.fromWeb(out as unknown as import('node:stream/web').ReadableStream<Uint8Array>)
}

export async function decryptStream(src: Readable, identity: string): Promise<Readable> {
  const { Decrypter } = await age()
  const d = new Decrypter()
  try {
    d.addIdentity(identity.trim())
  } catch {
    throw new Error('the backup identity is not a valid age secret key (AGE-SECRET-KEY-1...)')
  }
  let out: ReadableStream<Uint8Array>
  try {
    out = await d.decrypt(Readable.toWeb(src) as unknown as ReadableStream<Uint8Array>)
  } catch (e) {
    throw new Error(`cannot decrypt the backup with this identity: ${(e as Error).message}`)
  }
  return Readable.fromWeb(out as unknown as import('node:stream/web').ReadableStream<Uint8Array>)
}

export async function encryptBytes(data: Uint8Array, recipient: string): Promise<Uint8Array> {
  const { Encrypter } = await age()
  const e = new Encrypter()
  e.addRecipient(recipient)
  return e.encrypt(data)
}

// --- ustar ---------------------------------------------------------------------------------

export interface TarEntry {
  name: string
  data: Uint8Array
  mode?: number
  mtime?: number
}

function octal(n: number, len: number): string {
  return n.toString(8).padStart(len - 1, '0') + '\0'
}

/** A minimal POSIX ustar archive of regular files (names up to 100 bytes). */
export function tarPack(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = []
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8')
    if (name.length > 100) throw new Error(`file name too long for the backup archive: ${e.name}`)
    const h = Buffer.alloc(512)
    name.copy(h, 0)
    h.write(octal(e.mode ?? 0o600, 8), 100, 'ascii')
    h.write(octal(0, 8), 108, 'ascii')
    h.write(octal(0, 8), 116, 'ascii')
    h.write(octal(e.data.length, 12), 124, 'ascii')
    h.write(octal(Math.floor((e.mtime ?? Date.now()) / 1000), 12), 136, 'ascii')
    h.write('        ', 148, 'ascii')
    h.write('0', 156, 'ascii')
    h.write('ustar\0', 257, 'ascii')
    h.write('00', 263, 'ascii')
    let sum = 0
    for (const b of h) sum += b
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii')
    parts.push(h, Buffer.from(e.data), Buffer.alloc((512 - (e.data.length % 512)) % 512))
  }
  parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}

export function tarUnpack(buf: Uint8Array): TarEntry[] {
  const b = Buffer.from(buf)
  const out: TarEntry[] = []
  let off = 0
  while (off + 512 <= b.length) {
    const h = b.subarray(off, off + 512)
    if (h.every((x) => x === 0)) break
    let sum = 0
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]
    if (sum !== parseInt(h.toString('ascii', 148, 156).replace(/\0.*$/, '').trim(), 8))
      throw new Error(`corrupt archive header at byte ${off}`)
    const name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '')
    const size = parseInt(h.toString('ascii', 124, 136).replace(/\0.*$/, '').trim(), 8)
    const mode = parseInt(h.toString('ascii', 100, 108).replace(/\0.*$/, '').trim(), 8)
    if (off + 512 + size > b.length) throw new Error(`archive truncated in ${name}`)
    out.push({ name, mode, data: b.subarray(off + 512, off + 512 + size) })
    off += 512 + size + ((512 - (size % 512)) % 512)
  }
  return out
}

/** src piped into t, with src's errors passed on to t (so one pipeline sees them). */
export function chain(src: Readable, t: Duplex): Readable {
  src.on('error', (e) => t.destroy(e))
  return src.pipe(t)
}
