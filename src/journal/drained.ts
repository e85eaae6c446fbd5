// The record of a drained instance (docs/hosts.md): a file in `state-dir` beside the journal,
// written before the drain stops the container. The drain sets its restart policy to `no` (so a
// reboot of the host does not start it beside the new leader); `resume`, possibly days later
// from another workflow, gives the operator's policy back from here.
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { privateDirSync, safeName, writeDurable } from './journal.js'

interface DrainRecord {
  containerId: string
  container: string
  /** the operator's restart policy before the drain */
  policy: { Name: string; MaximumRetryCount?: number }
  /** the app id of the instance on another host the lock went to, once proven */
  to?: string
  at: string
  runId: string
}

function drainPath(stateDir: string, key: string): string {
  return join(stateDir, `${safeName(key)}.drained.json`)
}

export function writeDrainRecord(stateDir: string, key: string, r: DrainRecord): void {
  privateDirSync(stateDir)
  writeDurable(drainPath(stateDir, key), JSON.stringify(r, null, 2))
}

export function readDrainRecord(stateDir: string, key: string): DrainRecord | undefined {
  try {
    return JSON.parse(readFileSync(drainPath(stateDir, key), 'utf8')) as DrainRecord
  } catch {
    return undefined
  }
}

export function clearDrainRecord(stateDir: string, key: string): void {
  rmSync(drainPath(stateDir, key), { force: true })
}
