// The record of a drained instance (docs/hosts.md): a file in `state-dir` beside the journal,
// written before the drain stops the container. The drain sets its restart policy to `no` (so a
// reboot of the host does not start it beside the new leader); `resume`, possibly days later
// from another workflow, gives the operator's policy back from here.
import { nodeRecord } from './journal.js'

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

const record = nodeRecord<DrainRecord>('drained')

export const writeDrainRecord = record.write
export const readDrainRecord = record.read
export const clearDrainRecord = record.clear
