// The backup module as the operations use it: the node's config and secrets files a backup set
// holds, the bound on a dump, and the restore a rollback may choose (handed to it by the
// operation). The pre-upgrade backup itself is the upgrade's (src/operations/upgrade.ts).
import type { Context } from '../context.js'
import { OperationError } from '../errors.js'
import type { ContainerInfo } from '../docker/client.js'
import type { NodeLink } from '../handoff/types.js'
import type { NodeView } from '../node/view.js'
import { restoreBackup } from '../backup/restore.js'
import { Database } from '../postgres/database.js'
import { formatMs } from '../duration.js'
import { readFileSync } from 'node:fs'
import { parse as parseToml } from 'smol-toml'
import { configTomlSecrets } from '../trust/secrets.js'

/** Host path of a file inside a container, through its bind mounts (undefined when not mounted). */
function hostPathOf(info: ContainerInfo, path: string): string | undefined {
  const mounts = [...(info.Mounts ?? [])].sort((a, b) => b.Destination.length - a.Destination.length)
  for (const m of mounts) {
    if (path === m.Destination || path.startsWith(m.Destination.replace(/\/$/, '') + '/'))
      return m.Source + path.slice(m.Destination.length)
  }
  return undefined
}

export interface NodeFile {
  /** the path inside the container */
  name: string
  /** the path on the host */
  path: string
  /** a secrets TOML, an API credentials or password file, or a config whose URLs hold credentials */
  secret: boolean
}

function holdsCredentials(hostPath: string): boolean {
  try {
    return configTomlSecrets(readFileSync(hostPath, 'utf8'), (t) => parseToml(t)).length > 0
  } catch {
    return true // unreadable here: treat it as the secret it may be
  }
}

/** The node's root-dir files that matter for a restore: -config, -secrets, and the API and password files. */
export function nodeFiles(view: NodeView, info: ContainerInfo): NodeFile[] {
  const dir = (info.Config.WorkingDir || '/').replace(/\/$/, '')
  const abs = (f: string) => (f.startsWith('/') ? f : `${dir}/${f}`)
  const out: NodeFile[] = []
  const add = (f: string, secret: (p: string) => boolean) => {
    const p = hostPathOf(info, abs(f))
    if (p && !out.some((o) => o.path === p)) out.push({ name: f, path: p, secret: secret(p) })
  }
  for (const f of view.config.configFiles) add(f, holdsCredentials)
  for (const f of [...view.config.secretsFiles, ...(view.config.credentialFiles ?? [])]) add(f, () => true)
  return out
}

/**
 * The files a backup stores: the node's secrets go in only encrypted to `backup-recipient`, or
 * in plain when `backup-secrets-plain` asks for it. `note` says which, for the summary.
 */
export function backupFiles(
  files: NodeFile[],
  encrypted: boolean,
  plain: boolean
): { files: NodeFile[]; note: string } {
  const secret = files.filter((f) => f.secret)
  const names = secret.map((f) => f.name).join(', ')
  if (!secret.length) return { files, note: 'no secrets files found in the node container' }
  if (encrypted) return { files, note: `${names} stored, encrypted to backup-recipient` }
  if (plain) return { files, note: `${names} stored UNENCRYPTED (backup-secrets-plain: true)` }
  return {
    files: files.filter((f) => !f.secret),
    note: `${names} not stored: a backup keeps the node's secrets only encrypted (set backup-recipient, or backup-secrets-plain: true to store them in plain)`
  }
}

/**
 * What follows a restore by swap once the node is back (true: its previous contents are dropped)
 * or did not come back (false: they are kept, and the sentence returned says how to swap them back).
 */
type AfterRestore = (nodeBack: boolean) => Promise<string | undefined>

/**
 * The rollback's restore. Returns what is left to do once the node is back: a restore by swap
 * keeps the previous contents until then, as dropping them makes the server write out the whole
 * restored database first (restore-parallel.ts), time the node would otherwise spend down; and
 * they are the live data to go back to when the node does not come back on the restored copy.
 */
export async function restoreForRollback(
  ctx: Context,
  link: NodeLink & { databaseUrl?: string },
  file: string,
  o: { backupIdentity?: string; dbCopyUnchecked: boolean }
): Promise<AfterRestore | undefined> {
  const url = link.databaseUrl
  if (!url) throw new OperationError('cannot restore: the database URL is unknown')
  ctx.report.step('restore', file)
  // A directory-layout backup is restored into a copy swapped in by rename, which needs the
  // database free of sessions, this action's own included: closed here, reopened after.
  const swap = /\.dump\.d\/?$/.test(file)
  if (swap) await link.db.close()
  let r
  try {
    r = await restoreBackup({
      databaseUrl: url,
      file,
      identity: o.backupIdentity,
      log: ctx.log,
      signal: ctx.signal,
      keepPrevious: true,
      copyUnchecked: o.dbCopyUnchecked
    })
  } finally {
    if (swap) link.db = await Database.connect(url)
  }
  ctx.report.step('database restored', `${file} (taken ${r.backupCreatedAt}) in ${formatMs(r.durationMs)}`)
  const previous = r.previous
  return previous && afterRestore(ctx, previous)
}

type Previous = NonNullable<Awaited<ReturnType<typeof restoreBackup>>['previous']>

/**
 * The contents a restore by swap set aside: dropped once the node leads again and passed its gate,
 * kept otherwise (they may be the only copy of the live data: the restored backup may be the
 * wrong one, or the node may fail on it), with the sentence that says how to swap them back.
 */
export function afterRestore(ctx: Context, previous: Previous): AfterRestore {
  return async (nodeBack) => {
    if (nodeBack) {
      if (await previous.drop()) ctx.report.step('previous contents dropped', previous.database)
      else
        ctx.report.note(
          `The database's contents before the restore stay as database ${previous.database}: drop it once it is no longer needed.`
        )
      return undefined
    }
    const kept = `the database's contents before the restore are kept as database ${previous.database}; to put them back, stop every node on the database, then run as its owner or a superuser, connected to another database (e.g. postgres): ${previous.swapBack}`
    ctx.report.note(`The node did not come back on the restored database: ${kept}`)
    return kept
  }
}

/**
 * pg_dump has no overall bound of its own (only its lock wait): a hung dump would hold the job
 * and the host lock until the job's timeout. The dump ends with the run's cancellation or after
 * this long, whichever comes first.
 */
const BACKUP_BOUND_MS = 2 * 3600_000

export function backupSignal(signal: AbortSignal): AbortSignal {
  return AbortSignal.any([signal, AbortSignal.timeout(BACKUP_BOUND_MS)])
}
