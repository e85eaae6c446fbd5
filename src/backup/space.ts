// Free space before writing: what a backup (or a restore's staging copy) will need, from the
// database size and the compression measured on earlier backups in the same directory, against
// what the file system holding the directory has free. Refused before anything is written.
import { statfs } from 'node:fs/promises'
import { networkInterfaces } from 'node:os'
import { dirname, resolve } from 'node:path'
import { BackupError } from './pgtools.js'
import type { BackupEntry } from './manifest.js'

/** Compressed dump / database size when no earlier backup says otherwise. The node-shaped bench
 * database compresses to about 0.22 (docs/backups.md); real data with less repetition may not. */
export const DEFAULT_RATIO = 0.5
/** Uncompressed archive / database size (COPY text of the tables, without their indexes). */
const DEFAULT_RAW_RATIO = 1.0
/** Headroom on top of the estimate: databases grow between backups, ratios vary. */
export const MARGIN = 1.25

const MB = (n: number) => `${(n / 1048576).toFixed(0)} MB`

/** Free bytes for an unprivileged writer on the file system of path (or of its nearest existing parent). */
export async function freeBytes(path: string): Promise<{ free: number; at: string }> {
  let p = resolve(path)
  for (;;) {
    try {
      const s = await statfs(p)
      return { free: Number(s.bavail) * Number(s.bsize), at: p }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      const up = dirname(p)
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || up === p) throw e
      p = up
    }
  }
}

interface Ratios {
  /** compressed bytes / database bytes */
  ratio: number
  /** uncompressed archive bytes / database bytes */
  rawRatio: number
  /** where the ratios come from */
  source: string
}

/** The compression measured on the newest earlier backup with a manifest, else the defaults. */
export function measuredRatios(entries: BackupEntry[]): Ratios {
  for (const e of entries) {
    const m = e.manifest
    if (!m || !m.database.bytes || !m.dump.bytes) continue
    const ratio = m.dump.bytes / m.database.bytes
    const rawRatio = m.dump.rawBytes ? m.dump.rawBytes / m.database.bytes : DEFAULT_RAW_RATIO
    return { ratio, rawRatio, source: `measured on ${m.dump.file}` }
  }
  return { ratio: DEFAULT_RATIO, rawRatio: DEFAULT_RAW_RATIO, source: 'default, no earlier backup' }
}

/**
 * Throws a clear error naming the directory (and its input) when `need` bytes do not fit.
 * `what` says what would be written, e.g. "the backup of db (2048 MB, ratio 0.22 measured on ...)".
 */
export async function ensureSpace(dir: string, need: number, what: string, input = 'backup-dir'): Promise<void> {
  const { free } = await freeBytes(dir)
  if (need > free)
    throw new BackupError(
      `not enough free space in ${input} ${dir}: ${what} needs about ${MB(need)} (with ${Math.round((MARGIN - 1) * 100)}% margin), ${MB(free)} free; nothing was written. Free space there, lower backup-keep, or point ${input} at a larger disk`
    )
}

/** Loopback, a socket directory, or an address of one of this host's interfaces (the docker0
 * gateway a node reaches the host's Postgres at). */
function onThisHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '')
  if (/^(127\.\d+\.\d+\.\d+|localhost|::1|)$/.test(h) || h.startsWith('/')) return true
  return Object.values(networkInterfaces()).some((list) => (list ?? []).some((a) => a.address === h))
}

/** Where the server keeps its data, when that is a directory of this host (else undefined): its
 * host is this host, and the role may read `data_directory` (a superuser, pg_read_all_settings). */
export async function serverDataDir(c: import('pg').Client, host: string): Promise<string | undefined> {
  if (!onThisHost(host)) return undefined
  try {
    const { rows } = await c.query<{ d: string }>("SELECT current_setting('data_directory') AS d")
    await freeBytes(rows[0].d)
    return rows[0].d
  } catch {
    return undefined
  }
}

/**
 * Whether a full copy of `database` fits on its server beside it (a restore by swap, the migration
 * rehearsal): the copy and the original live together until the swap or the drop, and a full disk
 * under the live node's DB is a PANIC of the server (review N9). Unknown when the server's data
 * directory is not on this host: `ok` is then false, and `unknown` says why.
 */
export async function copyFits(
  c: import('pg').Client,
  host: string,
  database: string
): Promise<{ ok: boolean; unknown?: boolean; why: string }> {
  const { rows } = await c.query<{ b: string }>('SELECT pg_database_size($1) AS b', [database])
  const need = Number(rows[0].b) * MARGIN
  const dir = await serverDataDir(c, host)
  if (!dir)
    return {
      ok: false,
      unknown: true,
      why: `the free space of the database server cannot be known from this host (its data directory is elsewhere, or the role may not read it); a copy of ${database} needs about ${MB(need)}`
    }
  const { free } = await freeBytes(dir)
  if (need > free)
    return {
      ok: false,
      why: `a copy of ${database} needs about ${MB(need)} (with ${Math.round((MARGIN - 1) * 100)}% margin) on the database server, ${MB(free)} free in ${dir}`
    }
  return { ok: true, why: `${MB(need)} needed, ${MB(free)} free in ${dir}` }
}
