// Quarantine of rolled-back images: a target digest whose upgrade rolled back is recorded in
// `state-dir` beside the journal, so the next upgrade to it (a retry, a re-run, another workflow)
// refuses at once instead of taking the node through the same outage again. A successful
// upgrade moves every entry to history; nothing is ever deleted, so `status` can show both.
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeDurable } from '../journal/journal.js'

export interface QuarantineEntry {
  digest: string
  /** the reference as the run displayed it (repo:tag@digest) */
  image: string
  /** the journal run id of the upgrade that rolled back */
  runId: string
  /** the CI run that started it, when known (e.g. "owner/repo run 123 (workflow)") */
  ciRun?: string
  at: string
  reason: string
  /** set once an upgrade succeeded later: the entry is history and blocks nothing */
  clearedAt?: string
  clearedBy?: string
}

interface QuarantineFile {
  entries: QuarantineEntry[]
}

export function quarantinePath(stateDir: string, container: string): string {
  return join(stateDir, `${container.replace(/[^a-zA-Z0-9_.-]/g, '_')}.quarantine.json`)
}

export function readQuarantine(stateDir: string, container: string): QuarantineFile {
  try {
    const f = JSON.parse(readFileSync(quarantinePath(stateDir, container), 'utf8')) as QuarantineFile
    return Array.isArray(f.entries) ? f : { entries: [] }
  } catch {
    return { entries: [] }
  }
}

function write(stateDir: string, container: string, f: QuarantineFile): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 })
  writeDurable(quarantinePath(stateDir, container), JSON.stringify(f, null, 2))
}

export const active = (f: QuarantineFile) => f.entries.filter((e) => !e.clearedAt)
export const history = (f: QuarantineFile) => f.entries.filter((e) => e.clearedAt)

/** The active entry for a digest, if any. */
export function quarantined(f: QuarantineFile, digest: string | undefined): QuarantineEntry | undefined {
  if (!digest) return undefined
  return active(f).find((e) => e.digest === digest)
}

/** Pure: the file with a new active entry (an older active entry for the digest is replaced). */
function withEntry(f: QuarantineFile, e: QuarantineEntry): QuarantineFile {
  return { entries: [...f.entries.filter((x) => x.clearedAt || x.digest !== e.digest), e] }
}

/** Pure: every active entry moved to history by the successful run `by`. */
function cleared(f: QuarantineFile, by: string, at: string): QuarantineFile {
  return { entries: f.entries.map((e) => (e.clearedAt ? e : { ...e, clearedAt: at, clearedBy: by })) }
}

export function recordQuarantine(stateDir: string, container: string, e: QuarantineEntry): void {
  write(stateDir, container, withEntry(readQuarantine(stateDir, container), e))
}

/** After a successful upgrade: active entries become history. No file is created when none exists. */
export function clearQuarantine(stateDir: string, container: string, by: string): number {
  const f = readQuarantine(stateDir, container)
  const n = active(f).length
  if (n) write(stateDir, container, cleared(f, by, new Date().toISOString()))
  return n
}

/** "owner/repo run 123 (workflow)" from the runner's environment, when there is one. */
export function ciRunLabel(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!env.GITHUB_RUN_ID) return undefined
  return `${env.GITHUB_REPOSITORY ?? '?'} run ${env.GITHUB_RUN_ID}${env.GITHUB_WORKFLOW ? ` (${env.GITHUB_WORKFLOW})` : ''}`
}

export function describeEntry(e: QuarantineEntry): string {
  return `run ${e.runId}${e.ciRun ? ` (${e.ciRun})` : ''} at ${e.at}: ${e.reason}`
}

/** What the run saw of its surroundings while the new image was tried. */
interface FaultEvidence {
  /** the error the run ended with (a rollback's reason for `rolled-back`) */
  reason: string
  /** the DB server started after the run began (a restart, a crash, a failover) */
  dbRestarted: boolean
  /** Docker calls met the daemon out of reach during the run (a daemon restart) */
  daemonOutages: number
  /** a gate's typed finding that the host failed, not the image (GateError.hostFault) */
  hostFault?: string
}

/**
 * Pure: why a failed upgrade says nothing against its image, or undefined when it does. A digest
 * is quarantined for what the image did (exited, never ready, a check newly failing, the lock
 * lost), not for the host's faults: a DB restart or a Docker daemon restart during the run makes
 * the same symptoms and is no evidence against the image (review N16). The next run tries again.
 */
export function notTheImage(e: FaultEvidence): string | undefined {
  if (e.dbRestarted) return 'the database server restarted during the run'
  if (e.daemonOutages > 0) return 'the Docker daemon was out of reach during the run'
  if (e.hostFault) return e.hostFault
  // a node exits 0 only when stopped gracefully (docs/node-facts.md): nobody in this run stopped
  // it, so the host did (a Docker daemon restart stops every container; seen in the fault rows)
  if (/\bexit code 0\)/.test(e.reason)) return 'the new container was stopped from outside the run (exit 0)'
  // a standby that takes a lease its leader let run out does what any node does (rollout/steps.ts)
  // the leader, which this run had not touched, stopped with the standby (rollout/steps.ts): the
  // host stopped both (a daemon restart the paused runner never met: seed 2026, run 16)
  if (/' stopped as well \(a Docker daemon restart\?\)/.test(e.reason))
    return 'the leader stopped with the new container before the handoff (the host stopped both)'
  if (/the lock or the database had already left '/.test(e.reason))
    return 'the leader lost the lock before the handoff (it stalled or crashed)'
  if (
    /\b(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|socket hang up|Connection terminated|terminating connection due to administrator command|the database system is (starting up|shutting down|in recovery mode)|cannot reach the Docker Engine)\b/i.test(
      e.reason
    )
  )
    return 'the run lost the database or the Docker daemon'
  return undefined
}
