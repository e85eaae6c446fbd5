// The backup module as the upgrade uses it: a verified pre-upgrade dump (with the node's
// config and secrets files in the same set), and the restore a rollback may choose.
import type { Context } from './context.js'
import { OperationError } from './context.js'
import type { ContainerInfo } from './docker.js'
import type { NodeLink } from './handoff.js'
import type { NodeContainer, NodeView } from './node.js'
import { createBackup } from './backup/create.js'
import { restoreBackup } from './backup/restore.js'
import { pruneBackups } from './backup/retention.js'
import { formatMs } from './duration.js'

/** Host path of a file inside a container, through its bind mounts (undefined when not mounted). */
export function hostPathOf(info: ContainerInfo, path: string): string | undefined {
  const mounts = [...(info.Mounts ?? [])].sort((a, b) => b.Destination.length - a.Destination.length)
  for (const m of mounts) {
    if (path === m.Destination || path.startsWith(m.Destination.replace(/\/$/, '') + '/'))
      return m.Source + path.slice(m.Destination.length)
  }
  return undefined
}

/** The node's root-dir files that matter for a restore: its -config and -secrets files. */
export function nodeFiles(view: NodeView, info: ContainerInfo): { name: string; path: string }[] {
  const out: { name: string; path: string }[] = []
  for (const f of [...view.config.configFiles, ...view.config.secretsFiles]) {
    const p = hostPathOf(info, f)
    if (p) out.push({ name: f, path: p })
  }
  return out
}

export async function backupBeforeUpgrade(ctx: Context, view: NodeView, leader: NodeContainer): Promise<string> {
  const { inputs, report, log } = ctx
  report.step('backup', `pg_dump to ${inputs.backupDir}`)
  const r = await createBackup({
    databaseUrl: view.databaseUrl,
    dir: inputs.backupDir,
    kind: 'pre-upgrade',
    recipient: inputs.backupRecipient,
    files: nodeFiles(view, leader.info),
    node: { version: view.version, image: leader.image, digest: leader.digest },
    log: (l) => log.info(l),
    signal: backupSignal(ctx.signal)
  })
  report.fact(
    'Backup',
    `${r.file} (${(r.bytes / 1e6).toFixed(1)} MB in ${formatMs(r.durationMs)}; verified: ${r.verified.join(', ')})`
  )
  try {
    await pruneBackups(inputs.backupDir, {
      keep: inputs.backupKeep,
      keepPreUpgrade: inputs.backupKeep,
      log: (l) => log.info(l)
    })
  } catch (e) {
    log.warning(`backup retention: ${(e as Error).message}`)
  }
  return r.file
}

export async function restoreForRollback(
  ctx: Context,
  link: NodeLink & { databaseUrl?: string },
  file: string
): Promise<void> {
  const url = link.databaseUrl
  if (!url) throw new OperationError('cannot restore: the database URL is unknown')
  ctx.report.step('restore', file)
  const r = await restoreBackup({
    databaseUrl: url,
    file,
    identity: ctx.inputs.backupIdentity,
    log: (l) => ctx.log.info(l),
    signal: ctx.signal
  })
  ctx.report.step('database restored', `${file} (taken ${r.backupCreatedAt}) in ${formatMs(r.durationMs)}`)
}

/**
 * pg_dump has no overall bound of its own (only its lock wait): a hung dump would hold the job
 * and the host lock until the job's timeout. The dump ends with the run's cancellation or after
 * this long, whichever comes first.
 */
export const BACKUP_BOUND_MS = 2 * 3600_000

export function backupSignal(signal: AbortSignal): AbortSignal {
  return AbortSignal.any([signal, AbortSignal.timeout(BACKUP_BOUND_MS)])
}
