// What a killed backup leaves in backup-dir, found and removed by the next backup.
import { readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'

/** Older than any backup can run (pg_dump is bounded at 2 h): a temp file this old is nobody's. */
const STALE_TEMP_MS = 3 * 3600_000

/**
 * Temp files and directories of backups whose process is gone (`<final>.<pid>.tmp`, a manifest's
 * `<path>.<pid>.<ms>.tmp`): a killed backup leaves them, and nothing else would ever remove them
 * (review N11). Only ours (their prefix), only when their pid is not alive here, and only when
 * older than any backup runs: a backup-dir shared with another host keeps that host's live ones.
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return []
  }
  const removed: string[] = []
  for (const name of names) {
    const m = /^chainlink-rollout-.*\.(\d+)(?:\.\d+)?\.tmp$/.exec(name)
    if (!m || pidAlive(Number(m[1]))) continue
    const path = join(dir, name)
    const st = await stat(path).catch(() => undefined)
    if (!st || Date.now() - st.mtimeMs < STALE_TEMP_MS) continue
    await rm(path, { recursive: true, force: true })
    removed.push(name)
  }
  return removed
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}
