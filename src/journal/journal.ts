// The journal, a file in `state-dir` on the node's host (beside the host lock, src/journal/host-lock.ts),
// so that the post step, a re-run or `operation: repair` (even from another workflow) sees what
// was in flight.
// No secret is ever written here: containers are named by id, the DB by nothing at all.
import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync
} from 'node:fs'
import { hostname } from 'node:os'
import { dirname, join } from 'node:path'
import type { Check } from '../node/health.js'
import type { DbVersion } from '../postgres/database.js'
import type { LockMode } from '../node/config-types.js'
import { knownSecrets } from '../trust/secrets.js'
import { OperationError } from '../errors.js'

/**
 * The steps a journal records, each before it is taken, grouped by the steps of the algorithm
 * (README, docs/algorithm.md). Preflight (1) changes nothing and the report (8) is not journaled.
 */
type Step =
  // 2. backup, and the rehearsal of the new image's migrations on a scratch copy of it
  | 'backup'
  | 'rehearsal'
  // 3. standby: started beside the leader (a pair first stops and retires its waiting standby)
  | 'standby-create'
  | 'standby-started'
  // every container the run creates, the moment it exists (a failed start leaves it behind)
  | 'created'
  // a --rm leader's stopped copy, kept as the rollback (Docker deletes the leader at its stop)
  | 'keep-previous'
  | 'kept-previous'
  // a container the run stops gets restart policy no first (the operator's is journaled)
  | 'restart-policy-no'
  | 'standby-stop'
  | 'rename-standby-previous'
  // 4. standby-ready gate passed (the swap's verified standby)
  | 'standby-verified'
  // 5. handoff: the leader's stop, and the later handoffs of a second-handoff finish or a pair
  | 'handoff'
  | 'handoff-2'
  | 'handoff-back'
  // 7. finalize: rename, swap or second handoff; a pair restarts its old leader as the standby
  | 'rename-previous'
  | 'final-create'
  | 'final-started'
  | 'swap'
  // the port-holder layout (docs/port-holder.md): a conversion's holder, made before the swap
  // and started at it; a conversion back stops it at the swap and removes it at the end
  | 'holder-create'
  | 'holder-start'
  | 'holder-stop'
  | 'remove-holder'
  | 'remove-interim'
  | 'rename-standby'
  | 'restart-previous'
  | 'remove-previous'
  // or roll back, through the same gates
  | 'rollback'
  | 'rollback-failed'
  // operation restore with stop-node: the node's containers stopped, the DB rewritten (it commits
  // whole or not at all), the containers started again
  | 'restore-stop'
  | 'restore-db'
  | 'restore-start'
  // a later run took over the interrupted one (post step or operation: repair)
  | 'repair'

interface JournalStep {
  step: Step
  at: string
  data?: Record<string, unknown>
}

/**
 * The facts a rollout records in preflight, before it changes anything, and repair reads back to
 * find the node as it was: containers by id, images, the DB's version. Never a secret.
 */
export interface JournalPlan {
  /** the container that held the lock in preflight, and its name */
  leaderId: string
  leaderName: string
  /** a failover pair's other (waiting) container */
  otherId?: string
  otherName?: string
  leaderImage: string
  /** the image the run creates containers from */
  target: string
  /** the DB's migration version before the run, for the DB part of a rollback */
  dbBefore: DbVersion
  /** how the run brings the DB back in a rollback (input 'db-rollback'): a repair does the same */
  dbRollback?: 'migrate-down' | 'restore'
  mode: LockMode
  /** the pre-upgrade backup, once taken */
  backupFile?: string
  /** /health checks already failing on the leader in preflight: allowed to fail after the change */
  failingBefore?: Check[]
}

interface Journal {
  runId: string
  operation: string
  container: string
  pid: number
  host: string
  startedAt: string
  /** in-progress until the operation reached a consistent end (done) */
  phase: 'in-progress' | 'done'
  result?: string
  plan: JournalPlan
  steps: JournalStep[]
}

export function safeName(container: string): string {
  return container.replace(/[^a-zA-Z0-9_.+-]/g, '_')
}

/**
 * The key of the node's journal and host lock: its container names, sorted, so that
 * `container: a, standby: b` and `container: b, standby: a` are one node (a container name never
 * holds '+'). A single container keeps its own name, as before.
 */
export function nodeKey(inputs: { container: string; standby?: string }): string {
  return [inputs.container, ...(inputs.standby ? [inputs.standby] : [])].sort().join('+')
}

export function journalPath(stateDir: string, container: string): string {
  return join(stateDir, `${safeName(container)}.journal.json`)
}

/** The state dir is its owner's only (0700): an existing one with wider modes is narrowed. */
export function privateDirSync(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 })
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o700)
}

/** Writes a file durably: temp file, fsync, rename, then fsync of the directory (the rename itself). */
export function writeDurable(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
  fsyncDir(dirname(path))
}

export function fsyncDir(dir: string): void {
  let fd: number | undefined
  try {
    fd = openSync(dir, 'r')
    fsyncSync(fd)
  } catch {
    /* a file system that cannot sync a directory: the file itself is synced */
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

export class JournalWriter {
  readonly journal: Journal
  constructor(
    readonly path: string,
    init: Omit<Journal, 'steps' | 'phase' | 'pid' | 'host' | 'startedAt'>
  ) {
    this.journal = {
      ...init,
      pid: process.pid,
      host: hostname(),
      startedAt: new Date().toISOString(),
      phase: 'in-progress',
      steps: []
    }
    this.flush()
  }

  /** Records a step before it is taken. Free text in it (a rollback's reason) is redacted. */
  step(step: Step, data?: Record<string, unknown>): void {
    if (data)
      data = Object.fromEntries(
        Object.entries(data).map(([k, v]) => [k, typeof v === 'string' ? knownSecrets.redact(v) : v])
      )
    this.journal.steps.push({ step, at: new Date().toISOString(), data })
    this.flush()
  }

  plan(facts: Partial<JournalPlan>): void {
    Object.assign(this.journal.plan, facts)
    this.flush()
  }

  done(result: string): void {
    this.journal.phase = 'done'
    this.journal.result = result
    this.flush()
  }

  private flush(): void {
    writeDurable(this.path, JSON.stringify(this.journal, null, 2))
  }
}

/** Refuses to start an operation while an interrupted one is recorded for the node: only repair goes on from it. */
export function refuseOpenJournal(stateDir: string, key: string): void {
  const prior = readJournal(stateDir, key)
  if (prior?.phase === 'in-progress')
    throw new OperationError(
      `An interrupted ${prior.operation} (run ${prior.runId}, started ${prior.startedAt}) is recorded in ${journalPath(stateDir, key)}; run operation 'repair' first`
    )
}

export function readJournal(stateDir: string, container: string): Journal | undefined {
  try {
    return JSON.parse(readFileSync(journalPath(stateDir, container), 'utf8')) as Journal
  } catch {
    return undefined
  }
}
