// Retention over our own backup sets only (names with our prefix and pattern; nothing else in
// the directory is ever touched): the newest `keep` verified scheduled backups and, separately,
// the newest `keepPreUpgrade` verified pre-upgrade backups are kept; the newest verified backup
// of all is never deleted whatever the counts say; unverified sets (failed or never verified)
// are deleted once a newer verified set of the same kind exists, and kept otherwise (the latest
// failure stays for diagnosis). Given the node's owner, only that node's sets are counted and
// pruned (another node's backups in a shared backup-dir are not its to delete), and sets whose
// manifest records no owner (written before owners were recorded) are left for the operator.
import { rm, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { listBackups, safeDbName, type BackupEntry, type Kind } from './manifest.js'
import { ownership, type BackupOwner } from './owner.js'
import type { Log } from '../log.js'

export interface PruneOptions {
  keep: number
  keepPreUpgrade: number
  log: Log
  /** plan only */
  dryRun?: boolean
  /** the node whose backups are counted and pruned (every set in dir when absent) */
  owner?: BackupOwner
}

/**
 * The entries that are this node's: the manifest records it as the owner, or the set has no
 * readable manifest (a killed backup: nothing a restore could use) and carries its database name.
 */
export function ownEntries(entries: BackupEntry[], owner: BackupOwner): BackupEntry[] {
  return entries.filter((e) =>
    e.manifest ? ownership(e.manifest.owner, owner) === 'same' : e.name.db === safeDbName(owner.database)
  )
}

export interface PruneResult {
  kept: string[]
  deleted: string[]
}

/** Pure: which entries (newest first) to delete. */
export function planPrune(
  entries: BackupEntry[],
  keep: number,
  keepPreUpgrade: number
): { keep: BackupEntry[]; del: BackupEntry[] } {
  const limits: Record<Kind, number> = { scheduled: Math.max(0, keep), 'pre-upgrade': Math.max(0, keepPreUpgrade) }
  const newestVerified = entries.find((e) => e.verified)
  const seen: Record<Kind, number> = { scheduled: 0, 'pre-upgrade': 0 }
  const newerVerified: Record<Kind, boolean> = { scheduled: false, 'pre-upgrade': false }
  const out = { keep: [] as BackupEntry[], del: [] as BackupEntry[] }
  for (const e of entries) {
    let k: boolean
    if (e === newestVerified) k = true
    else if (e.verified) k = seen[e.kind] < limits[e.kind]
    else k = !newerVerified[e.kind]
    if (e.verified) {
      seen[e.kind]++
      newerVerified[e.kind] = true
    }
    ;(k ? out.keep : out.del).push(e)
  }
  return out
}

function setFiles(e: BackupEntry): string[] {
  const dir = dirname(e.file)
  const fs = [e.file]
  if (e.manifest?.files) fs.push(join(dir, basename(e.manifest.files.file)))
  else fs.push(join(dir, `${e.name.base}.files.tar`), join(dir, `${e.name.base}.files.tar.age`))
  fs.push(e.manifestFile) // last: a half-deleted set still has its manifest
  return fs
}

export async function pruneBackups(dir: string, opts: PruneOptions): Promise<PruneResult> {
  const all = await listBackups(dir)
  const entries = opts.owner ? ownEntries(all, opts.owner) : all
  const plan = planPrune(entries, opts.keep, opts.keepPreUpgrade)
  for (const e of plan.del) {
    opts.log.info(
      `${opts.dryRun ? 'would delete' : 'deleting'} ${basename(e.file)} (${e.kind}, ${e.verified ? 'verified' : 'not verified'}, ${e.createdAt})`
    )
    if (opts.dryRun) continue
    for (const f of setFiles(e)) {
      // a directory-format dump: the whole directory (its name matched our own pattern)
      if (f === e.file && e.name.layout === 'directory') {
        await rm(f, { recursive: true, force: true })
        continue
      }
      await unlink(f).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err
      })
    }
  }
  opts.log.info(
    `retention: kept ${plan.keep.length}, ${opts.dryRun ? 'would delete' : 'deleted'} ${plan.del.length} (keep ${opts.keep} scheduled, ${opts.keepPreUpgrade} pre-upgrade)`
  )
  return { kept: plan.keep.map((e) => e.file), deleted: plan.del.map((e) => e.file) }
}
