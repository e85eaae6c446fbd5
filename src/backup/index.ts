// The backup module: plain-value library code for the `backup` and `restore`
// operations and the upgrade's preflight backup and rollback. No @actions/core here: callers
// pass a log callback. The DB password never reaches argv, logs or error messages.
export { createBackup, type BackupResult, type CreateBackupOptions } from './create.js'
export { verifyBackup, type VerifyOptions } from './verify.js'
export { restoreBackup, type RestoreOptions, type RestoreResult } from './restore.js'
export { pruneBackups, planPrune, type PruneOptions, type PruneResult } from './retention.js'
export {
  listBackups,
  parseDumpName,
  readManifest,
  isVerified,
  PREFIX as BACKUP_PREFIX,
  type BackupEntry,
  type Manifest,
  type Verification,
  type Kind as BackupKind
} from './manifest.js'
export { lockHolderPresent, type LockHolder } from './db.js'
export { BackupError, redact, type PgDumpDocker } from './pgtools.js'
