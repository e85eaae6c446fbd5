// Writes a node's node_exporter textfile in state-dir at the end of each run (the action's main
// and post steps, the command line): `chainlink_rollout_<node>.prom`, atomically (temp file, fsync,
// rename), so the collector never reads half a file. The state carried between runs sits beside it.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { listBackups } from '../backup/manifest.js'
import { privateDirSync, safeName, writeDurable } from '../journal/journal.js'
import { active, readQuarantine } from '../safeguards/quarantine.js'
import { nextState, renderTextfile, type HostFacts, type MetricsState, type RunFacts } from './textfile.js'

export const textfilePath = (stateDir: string, node: string) =>
  join(stateDir, `chainlink_rollout_${safeName(node)}.prom`)
const statePath = (stateDir: string, node: string) => join(stateDir, `${safeName(node)}.metrics.json`)

function readState(path: string): MetricsState | undefined {
  try {
    const s = JSON.parse(readFileSync(path, 'utf8')) as MetricsState
    return s && typeof s.runs === 'object' && typeof s.rollbacksTotal === 'number' ? s : undefined
  } catch {
    return undefined
  }
}

/** The newest verified backup in backupDir, when there is one. */
async function newestBackup(backupDir: string): Promise<HostFacts['newestBackup']> {
  const b = (await listBackups(backupDir)).find((e) => e.verified && e.manifest)
  if (!b?.manifest) return undefined
  const m = b.manifest
  return { at: Date.parse(m.createdAt) / 1000, bytes: m.dump.bytes + (m.files?.bytes ?? 0), kind: m.kind }
}

/** Records the run and rewrites the node's textfile; returns its path. */
export async function writeMetrics(o: {
  stateDir: string
  backupDir: string
  node: string
  run: RunFacts
}): Promise<string> {
  privateDirSync(o.stateDir)
  const state = nextState(readState(statePath(o.stateDir, o.node)), o.run)
  writeDurable(statePath(o.stateDir, o.node), JSON.stringify(state, null, 2))
  const host: HostFacts = {
    quarantined: active(readQuarantine(o.stateDir, o.node)).length,
    newestBackup: await newestBackup(o.backupDir)
  }
  const path = textfilePath(o.stateDir, o.node)
  // 0600 as everything in state-dir (docs/security.md); node_exporter reads it as root
  writeDurable(path, renderTextfile(o.node, state, host))
  return path
}
