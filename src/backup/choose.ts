// Which backup a restore loads, checked before anything stops: the named one, or the newest
// verified backup of this node in backup-dir; never another node's unless allowed, and an
// encrypted one only with the identity of the recipient it was encrypted to.
import { identityOpens } from './codec.js'
import { isVerified, listBackups, manifestPathFor, readManifest, type Manifest } from './manifest.js'
import { describeOwner, ownership, type BackupOwner, type Ownership } from './owner.js'

interface ChooseOptions {
  dir: string
  /** input backup-file */
  file?: string
  /** the node restored, as its database shows it now */
  current: BackupOwner
  /** the node's name, for messages */
  node: string
  /** input restore-other-node */
  allowOther: boolean
  identity?: string
}

interface Chosen {
  file: string
  manifest: Manifest
  ownership: Ownership
  notes: string[]
}

/** Throws (plain Error, the message for the operator) when the restore must not start. */
export async function chooseBackup(o: ChooseOptions): Promise<Chosen> {
  const notes: string[] = []
  let file = o.file
  if (!file) {
    const all = (await listBackups(o.dir)).filter((b) => isVerified(b.manifest))
    const own = all.find((b) => ownership(b.manifest!.owner, o.current) === 'same')
    if (!own) {
      const legacy = all.filter((b) => !b.manifest!.owner)
      const others = all.length - legacy.length
      throw new Error(
        `Input 'backup-file' not given and ${o.dir} holds no verified backup of '${o.node}' (${describeOwner(o.current)})` +
          (others ? `; ${others} verified backup(s) there are other nodes'` : '') +
          (legacy.length
            ? `; ${legacy.length} were written before backups recorded their node (newest: ${legacy[0].file}): name one in 'backup-file' to restore it`
            : '')
      )
    }
    file = own.file
  }
  let manifest: Manifest
  try {
    manifest = await readManifest(manifestPathFor(file))
  } catch (e) {
    throw new Error(
      `Input 'backup-file': ${file} has no readable manifest beside it (${(e as Error).message.split('\n')[0]})`
    )
  }
  const whose = ownership(manifest.owner, o.current)
  if (whose === 'other') {
    const what = `${file} belongs to another node (${describeOwner(manifest.owner!)}), not to '${o.node}' (${describeOwner(o.current)})`
    if (!o.allowOther)
      throw new Error(
        `Refusing to restore: ${what}; name a backup of '${o.node}', or set 'restore-other-node: true' to load the other node's database and keys into it`
      )
    notes.push(`restore-other-node: true: ${what}`)
  }
  if (whose === 'unknown')
    notes.push(`${file} was written before backups recorded their node: it could not be checked against '${o.node}'`)
  if (manifest.encrypted) {
    const to = manifest.recipient ?? 'an age recipient'
    if (!o.identity) throw new Error(`Input 'backup-identity' is required: ${file} is encrypted to ${to}`)
    if (manifest.recipient && !(await identityOpens(o.identity, manifest.recipient)))
      throw new Error(
        `Input 'backup-identity' is not the identity of ${manifest.recipient}, to which ${file} is encrypted: it could not be read; nothing was stopped`
      )
  }
  return { file, manifest, ownership: whose, notes }
}
