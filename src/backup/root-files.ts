// The node's root-dir files (config, secrets, TLS) of a backup set: one tar beside the dump,
// encrypted like it, named in the manifest. Never printed: only their names are logged.
import { createHash } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Log } from '../log.js'
import { encryptBytes, tarPack, type TarEntry } from './codec.js'
import { filesName, writeFileAtomic, type Manifest } from './manifest.js'
import { BackupError } from './pgtools.js'

/** A tar entry name from a file name: its base name, safe characters only, unique in the set. */
function fileEntryName(name: string, used: Set<string>): string {
  let n =
    name
      .replace(/^.*[\\/]/, '')
      .replace(/[^A-Za-z0-9._-]/g, '_')
      .replace(/^\.+$/, '_') || 'file'
  n = n.slice(0, 90)
  let k = n
  for (let i = 2; used.has(k); i++) k = `${n}.${i}`
  used.add(k)
  return k
}

/** Writes the files' tar (encrypted to `recipient` when given) into `dir` under the set's `base`
 * name; returns the manifest's `files` entry. */
export async function storeRootFiles(
  files: { name: string; path: string }[],
  dir: string,
  base: string,
  recipient: string | undefined,
  log: Log
): Promise<NonNullable<Manifest['files']>> {
  const used = new Set<string>()
  const entries: TarEntry[] = []
  for (const f of files) {
    let data: Buffer
    let mode: number
    try {
      data = await readFile(f.path)
      mode = (await stat(f.path)).mode & 0o777
    } catch (e) {
      throw new BackupError(
        `cannot read root-dir file ${f.name} (${f.path}): ${(e as NodeJS.ErrnoException).code ?? String(e)}`
      )
    }
    entries.push({ name: fileEntryName(f.name, used), data, mode })
  }
  let tar: Uint8Array = tarPack(entries)
  if (recipient) tar = await encryptBytes(tar, recipient)
  const fname = filesName(base, !!recipient)
  await writeFileAtomic(join(dir, fname), tar, 0o600)
  log.info(`root-dir files stored (${entries.length}): ${entries.map((e) => e.name).join(', ')}`)
  return {
    file: fname,
    bytes: tar.length,
    sha256: createHash('sha256').update(tar).digest('hex'),
    entries: entries.map((e) => ({ name: e.name, bytes: e.data.length }))
  }
}
