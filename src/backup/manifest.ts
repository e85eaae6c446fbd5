// Backup set names, the JSON manifest beside each dump, and reading a backup directory.
// A set is <base>.dump[.zst][.age] (one file) or <base>.dump.d/ (directory format: pg_dump -Fd
// with each data file zstd-compressed, checksummed one by one in the manifest)
// + <base>.files.tar[.age] (optional) + <base>.json, where
// base = chainlink-rollout-<db>-<UTC yyyymmddThhmmssSSSZ>-<kind>: sortable by time, and only
// names matching this pattern are ever listed, verified or pruned.
import { chmod, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'

export const PREFIX = 'chainlink-rollout-'
export type Kind = 'scheduled' | 'pre-upgrade'
export type Compression = 'zstd' | 'gzip'
export type Layout = 'file' | 'directory'

/** Whose backup a set is (read and compared in owner.ts); nothing in it is a secret. */
export interface BackupOwner {
  server: {
    /** host:port as the action reached the server (or the socket directory) */
    address: string
    /** pg_control_system().system_identifier, when the role may read it */
    systemIdentifier?: string
  }
  database: string
  /** the node's public key ids, e.g. `evm:0x<address>`, sorted; empty when the node has none */
  keys: string[]
}

export interface Verification {
  at: string
  mode: 'archive' | 'restore'
  ok: boolean
  /** checks that passed, e.g. sha256, archive-read, trial-restore, keystore */
  checks: string[]
  error?: string
  warnings?: string[]
  keystore?: Record<string, number>
}

export interface Manifest {
  format: 'chainlink-rollout-backup'
  formatVersion: 1
  kind: Kind
  createdAt: string
  durationMs: number
  database: { name: string; serverVersion: string; bytes: number; keystore: Record<string, number> }
  pgDump: { version: string; via: string; args: string[] }
  compression: Compression
  compressor: string
  encrypted: boolean
  recipient?: string
  node?: { version?: string; image?: string; digest?: string }
  /** whose backup this is (src/backup/owner.ts); absent in manifests written before it was recorded */
  owner?: BackupOwner
  /** 'file' (absent in older manifests) or 'directory' */
  layout?: Layout
  dump: {
    file: string
    bytes: number
    /** of the file; for a directory, of its sha256sum-style listing of `files` */
    sha256: string
    /** the uncompressed archive's size (what a restore's staging copy needs) */
    rawBytes?: number
    /** directory layout: every file in it, with its own checksum */
    files?: { name: string; bytes: number; sha256: string }[]
  }
  files?: { file: string; bytes: number; sha256: string; entries: { name: string; bytes: number }[] }
  verifications: Verification[]
}

const NAME_RE = /^chainlink-rollout-(.+)-(\d{8}T\d{9}Z)-(scheduled|pre-upgrade)\.dump(\.zst|\.d)?(\.age)?$/

interface ParsedName {
  base: string
  db: string
  stamp: string
  kind: Kind
  compression: Compression
  encrypted: boolean
  layout: Layout
}

export function parseDumpName(file: string): ParsedName | undefined {
  const m = NAME_RE.exec(file)
  if (!m) return undefined
  return {
    base: file.replace(/\.dump(\.zst|\.d)?(\.age)?$/, ''),
    db: m[1],
    stamp: m[2],
    kind: m[3] as Kind,
    compression: m[4] ? 'zstd' : 'gzip',
    encrypted: !!m[5],
    layout: m[4] === '.d' ? 'directory' : 'file'
  }
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:.]/g, '')
}

export function stampToIso(s: string): string {
  return `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}.${s.slice(15, 18)}Z`
}

/** The database name as a set's name carries it. */
export const safeDbName = (db: string) => db.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 63) || 'db'

export function backupBase(db: string, at: Date, kind: Kind): string {
  return `${PREFIX}${safeDbName(db)}-${stamp(at)}-${kind}`
}

export function dumpName(base: string, compression: Compression, encrypted: boolean, layout: Layout = 'file'): string {
  if (layout === 'directory') return `${base}.dump.d`
  return `${base}.dump${compression === 'zstd' ? '.zst' : ''}${encrypted ? '.age' : ''}`
}

export const manifestName = (base: string) => `${base}.json`
export const filesName = (base: string, encrypted: boolean) => `${base}.files.tar${encrypted ? '.age' : ''}`

/** The manifest path for a dump path (or a manifest path given directly). */
export function manifestPathFor(file: string): string {
  if (file.endsWith('.json')) return file
  return file.replace(/\/+$/, '').replace(/\.dump(\.zst|\.d)?(\.age)?$/, '') + '.json'
}

export async function readManifest(path: string): Promise<Manifest> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    throw new Error(`no manifest for this backup (${path}): ${(e as NodeJS.ErrnoException).code ?? String(e)}`)
  }
  const m = JSON.parse(text) as Manifest
  if (m.format !== 'chainlink-rollout-backup') throw new Error(`${path} is not a chainlink-rollout backup manifest`)
  m.verifications ??= []
  return m
}

/** Writes a file atomically: temp file, fsync, rename, fsync of the directory. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`
  const fh = await open(tmp, 'w', mode)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(tmp, path)
  } catch (e) {
    await unlink(tmp).catch(() => undefined)
    throw e
  }
  await fsyncDir(path)
}

export async function fsyncDir(path: string): Promise<void> {
  const dir = path.replace(/\/[^/]*$/, '') || '/'
  const d = await open(dir, 'r').catch(() => undefined)
  if (!d) return
  await d.sync().catch(() => undefined)
  await d.close()
}

// 0600 like the dump: the manifest names the database, its size and the node's image.
export const writeManifest = (path: string, m: Manifest) =>
  writeFileAtomic(path, JSON.stringify(m, null, 2) + '\n', 0o600)

/**
 * Creates a directory only its owner can enter (0700), and narrows an existing one: a backup
 * holds the encrypted keystore, and the state dir the journal of what runs on the node.
 */
export async function privateDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 })
  if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o700)
}

/** A backup is verified when its latest verification passed. */
export function isVerified(m: Manifest | undefined): boolean {
  const last = m?.verifications.at(-1)
  return !!last && last.ok
}

export interface BackupEntry {
  file: string
  manifestFile: string
  name: ParsedName
  createdAt: string
  kind: Kind
  /** undefined when the manifest is missing or unreadable (an incomplete or foreign set) */
  manifest?: Manifest
  manifestError?: string
  verified: boolean
}

/** Our own backups in dir, newest first (by the UTC stamp in the name). */
export async function listBackups(dir: string): Promise<BackupEntry[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw e
  }
  const out: BackupEntry[] = []
  for (const n of names) {
    const p = parseDumpName(n)
    if (!p) continue
    const manifestFile = join(dir, manifestName(p.base))
    let manifest: Manifest | undefined
    let manifestError: string | undefined
    try {
      manifest = await readManifest(manifestFile)
    } catch (e) {
      manifestError = (e as Error).message
    }
    out.push({
      file: join(dir, n),
      manifestFile,
      name: p,
      createdAt: stampToIso(p.stamp),
      kind: p.kind,
      manifest,
      manifestError,
      verified: isVerified(manifest)
    })
  }
  return out.sort((a, b) =>
    a.name.stamp < b.name.stamp ? 1 : a.name.stamp > b.name.stamp ? -1 : a.file < b.file ? 1 : -1
  )
}
