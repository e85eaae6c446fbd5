// The inputs of action.yml as the operations read them: validated and typed (src/inputs/read.ts reads
// them; the command line, src/cli.ts, takes the same as flags).
import type { ImageRef } from '../image/ref.js'
import type { Window } from '../safeguards/window.js'

export type Operation =
  'upgrade' | 'handoff' | 'restart' | 'status' | 'backup' | 'restore' | 'repair' | 'drain' | 'resume'
export type LockModeInput = 'auto' | 'lease' | 'advisorylock' | 'dual'
export type DbRollback = 'migrate-down' | 'restore'

export interface Inputs {
  operation: Operation
  container: string
  standby?: string
  image?: ImageRef
  imageFile?: string
  databaseUrl?: string
  lockMode: LockModeInput
  healthUrl?: string
  /** drain: the base URL of the instance on another host that takes the lock, from this runner */
  remoteHealthUrl?: string
  /** undefined: derived from the container's own stop timeout and the node's grace period */
  stopTimeoutMs?: number
  /** undefined: derived from the lease settings */
  standbyTimeoutMs?: number
  readyTimeoutMs: number
  stableForMs: number
  rollback: boolean
  dbRollback: DbRollback
  preferPrimary: boolean
  /** docs layout (published ports): how the new container gets back onto the original ports */
  finish: 'swap' | 'second-handoff'
  /**
   * the port-holder layout (docs/port-holder.md): true converts the node to it (or keeps it),
   * false converts it back, undefined keeps the layout the node has
   */
  portHolder?: boolean
  backup: boolean
  backupDir: string
  backupKeep: number
  backupRecipient?: string
  backupFile?: string
  /** archive: checksum + full read; restore: also a trial restore into a scratch DB */
  backupVerify: 'archive' | 'restore'
  /** age secret key to read encrypted backups (verify, restore) */
  backupIdentity?: string
  stopNode: boolean
  /** restore: allow a backup recorded as another node's (src/backup/owner.ts) */
  restoreOtherNode: boolean
  /** a full copy of the DB on its server even when its free space cannot be known */
  dbCopyUnchecked: boolean
  dryRun: boolean
  stateDir: string
  dockerHost?: string
  lockTimeoutMs: number
  // Trust boundary (docs/security.md)
  /** repositories (globs) a target may come from besides the one the node runs */
  allowedRepositories: string[]
  /** store the node's secrets files in an unencrypted backup */
  backupSecretsPlain: boolean
  /** accept plain TCP to a remote Docker Engine */
  dockerInsecureTcp: boolean
  // Operator safeguards (quarantine, upgrade window, migration rehearsal)
  /** try a digest again although an earlier upgrade to it rolled back */
  retryQuarantined: boolean
  /** an upgrade to an image older than the DB's node_versions: down-migrate first instead of refusing */
  allowDowngrade: boolean
  /** upgrade only inside these windows (none: any time) */
  window: Window[]
  /** go on although Watchtower, podman auto-update or autoheal would act on the node (src/safeguards/other-updaters.ts) */
  allowOtherUpdaters: boolean
  /** restore the pre-upgrade backup into a scratch DB and run the new image's `db migrate` on it first */
  rehearseMigration: boolean
  /** gets one JSON document per run (src/notify/webhook.ts); a secret, masked */
  webhookUrl?: string
}
