// The backup module as the upgrade uses it: a verified pre-upgrade dump (with the node's
// config and secrets files in the same set, and the migration rehearsal on a copy), and the
// restore a rollback may choose. The operations hand these to the rollout and the rollback.
import type { Context } from './context.js'
import { OperationError } from './errors.js'
import type { ContainerInfo } from './docker.js'
import type { NodeLink } from './handoff-types.js'
import type { NodeContainer, NodeView } from './types/node.js'
import { createBackup } from './backup/create.js'
import { restoreBackup } from './backup/restore.js'
import { pruneBackups } from './backup/retention.js'
import { Database } from './database.js'
import { formatMs } from './duration.js'
import { readFileSync } from 'node:fs'
import { parse as parseToml } from 'smol-toml'
import { configTomlSecrets } from './secrets.js'
import { rehearseMigration } from './rehearsal.js'
import type { Change, Prepared, RolloutRecord } from './rollout/plan.js'

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

async function backupBeforeUpgrade(ctx: Context, view: NodeView, leader: NodeContainer): Promise<string> {
  const { inputs, report, log } = ctx
  report.step('backup', `pg_dump to ${inputs.backupDir}`)
  const stored = backupFiles(nodeFiles(view, leader.info), !!inputs.backupRecipient, inputs.backupSecretsPlain)
  report.fact('Secrets files', stored.note)
  const r = await createBackup({
    databaseUrl: view.databaseUrl,
    dir: inputs.backupDir,
    kind: 'pre-upgrade',
    recipient: inputs.backupRecipient,
    files: stored.files,
    node: { version: view.version, image: leader.image, digest: leader.digest },
    log,
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
      log
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
  // A directory-layout backup is restored into a copy swapped in by rename, which needs the
  // database free of sessions, this action's own included: closed here, reopened after.
  const swap = /\.dump\.d\/?$/.test(file)
  if (swap) await link.db.close()
  let r
  try {
    r = await restoreBackup({
      databaseUrl: url,
      file,
      identity: ctx.inputs.backupIdentity,
      log: ctx.log,
      signal: ctx.signal
    })
  } finally {
    if (swap) link.db = await Database.connect(url)
  }
  ctx.report.step('database restored', `${file} (taken ${r.backupCreatedAt}) in ${formatMs(r.durationMs)}`)
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

/** The verified pre-upgrade backup (journaled), when the change and the inputs ask for one. */
export async function preUpgradeBackup(ctx: Context, p: Prepared, ch: Change, r: RolloutRecord): Promise<void> {
  if (!ch.backup || !ctx.inputs.backup) return
  const { journal } = r
  journal.step('backup')
  const backupFile = await backupBeforeUpgrade(ctx, p.view, p.leader)
  r.backupFile = backupFile
  journal.plan({ backupFile })
  if (ctx.inputs.rehearseMigration && ch.operation === 'upgrade') {
    // on a copy of the database, before anything of the node is touched
    journal.step('rehearsal')
    try {
      await rehearseMigration(ctx, p.view, p.leader, backupFile, ch.createRef)
    } catch (e) {
      if (!ctx.signal.aborted) journal.done('failed')
      throw e
    }
  }
}
