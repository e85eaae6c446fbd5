// The record of a standby host's step of a rolling upgrade across hosts (docs/hosts.md): a file
// in `state-dir` beside the journal, written when this host's waiting instance was recreated on
// the new image. It keeps what only this moment knows: the DB's goose version and node_versions
// before any new version ran on it, and the image before. If the new version then migrates the
// DB and crashes on this host, this host's runner is the one that holds the new image (it knows
// the Down steps, docs/node-facts.md §10) and takes the DB back to this goose version.
import { nodeRecord } from './journal.js'

interface HostUpgradeRecord {
  /** the image this host's instance ran before (the way back's target) */
  previousImage: string
  /** the image it was recreated on */
  image: string
  dbBefore: { goose?: number; nodeVersion?: string }
  at: string
}

const record = nodeRecord<HostUpgradeRecord>('host-upgraded')

export const writeHostUpgraded = record.write
export const readHostUpgraded = record.read
export const clearHostUpgraded = record.clear
