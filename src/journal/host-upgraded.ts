// The record of a standby host's step of a rolling upgrade across hosts (docs/hosts.md): a file
// in `state-dir` beside the journal, written when this host's waiting instance was recreated on
// the new image. It keeps what only this moment knows: the DB's goose version and node_versions
// before any new version ran on it, and the image before. If the new version then migrates the
// DB and crashes on this host, this host's runner is the one that holds the new image (it knows
// the Down steps, docs/node-facts.md §10) and takes the DB back to this goose version.
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { privateDirSync, safeName, writeDurable } from './journal.js'

interface HostUpgradeRecord {
  /** the image this host's instance ran before (the way back's target) */
  previousImage: string
  /** the image it was recreated on */
  image: string
  dbBefore: { goose?: number; nodeVersion?: string }
  at: string
}

function recordPath(stateDir: string, key: string): string {
  return join(stateDir, `${safeName(key)}.host-upgraded.json`)
}

export function writeHostUpgraded(stateDir: string, key: string, r: HostUpgradeRecord): void {
  privateDirSync(stateDir)
  writeDurable(recordPath(stateDir, key), JSON.stringify(r, null, 2))
}

export function readHostUpgraded(stateDir: string, key: string): HostUpgradeRecord | undefined {
  try {
    return JSON.parse(readFileSync(recordPath(stateDir, key), 'utf8')) as HostUpgradeRecord
  } catch {
    return undefined
  }
}

export function clearHostUpgraded(stateDir: string, key: string): void {
  rmSync(recordPath(stateDir, key), { force: true })
}
