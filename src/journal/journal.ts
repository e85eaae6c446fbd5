// The journal, a file in `state-dir` on the node's host (beside the host lock, src/journal/host-lock.ts),
// so that the post step, a re-run or `operation: repair` (even from another workflow) sees what
// was in flight.
// No secret is ever written here: containers are named by id, the DB by nothing at all (its key
// is a hash, dbKey).
import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync
} from 'node:fs'
import { createHash } from 'node:crypto'
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
  // a deliberate downgrade: the running image's `db rollback` between the stop and the start
  | 'downgrade-db'
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
  // operation drain: this host's instance stopped so that one on another host takes the lock,
  // and started again (to lead) when that failed; operation resume: started as a waiting standby
  | 'drain-stop'
  | 'drain-restart'
  // a rolling upgrade across hosts: this host's waiting instance renamed aside (kept) and its
  // successor on the new image created (src/rollout/recreate-waiting.ts)
  | 'host-previous'
  | 'host-standby'
  | 'resume-start'
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
  /** a deliberate downgrade: a rollback starts the newer image, which migrates the DB up itself */
  downgrade?: boolean
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
export function nodeKey(node: { container: string; standby?: string }): string {
  return [node.container, ...(node.standby ? [node.standby] : [])].sort().join('+')
}

/**
 * The key of the node's journal and host lock (review N10): its database, as the node's
 * container reaches it: the server (its address, or `hostKey`: the container a Docker DNS name
 * stands for, whose address may change when it restarts), the port and the database's name.
 * Runs that name the node's containers differently (`container: a`, `container: a, standby: b`,
 * `container: b`) are one node; another user, password or parameter is the same database.
 * Hashed: no address, user or secret in a file name or a log.
 */
export function dbKey(url: string, hostKey?: string): string {
  let canonical = url
  try {
    const u = new URL(url)
    const q = u.searchParams
    const host = (hostKey ?? (q.get('host') || u.hostname)).toLowerCase().replace(/^\[|\]$/g, '')
    const port = q.get('port') || u.port || '5432'
    // libpq: no database named is the database of the user's name
    const db = q.get('dbname') || decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username)
    canonical = `${host === 'localhost' ? '127.0.0.1' : host}:${port}/${db}`
  } catch {
    /* not a URL (a libpq key=value string): the whole text, hashed */
  }
  return `db-${createHash('sha256').update(canonical).digest('hex').slice(0, 16)}`
}

/**
 * Where a node's journals are: `write`, the key this run's journal and host lock take (the DB's
 * once known, else the names'); `read`, every key a journal of the node may have, that one first
 * (the names' key: journals of earlier versions, and of a run that could not read the DB URL).
 */
export interface JournalKeys {
  write: string
  read: string[]
}

export function journalPath(stateDir: string, container: string): string {
  return join(stateDir, `${safeName(container)}.journal.json`)
}

/** The state dir is its owner's only (0700): an existing one with wider modes is narrowed. */
export function privateDirSync(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 })
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o700)
}

/**
 * A JSON record of the node kept beside its journal in `state-dir`, `<key>.<suffix>.json`:
 * written durably, read as undefined when absent or unreadable, cleared. The drain record and a
 * standby host's record of a rolling upgrade are two of these (src/journal/drained.ts,
 * host-upgraded.ts).
 */
export function nodeRecord<T>(suffix: string): {
  write(stateDir: string, key: string, r: T): void
  read(stateDir: string, key: string): T | undefined
  clear(stateDir: string, key: string): void
} {
  const path = (stateDir: string, key: string) => join(stateDir, `${safeName(key)}.${suffix}.json`)
  return {
    write(stateDir, key, r) {
      privateDirSync(stateDir)
      writeDurable(path(stateDir, key), JSON.stringify(r, null, 2))
    },
    read(stateDir, key) {
      try {
        return JSON.parse(readFileSync(path(stateDir, key), 'utf8')) as T
      } catch {
        return undefined
      }
    },
    clear(stateDir, key) {
      rmSync(path(stateDir, key), { force: true })
    }
  }
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

/**
 * Refuses to start an operation while an interrupted one is recorded for the node (under any of
 * its keys), or while a journal of it cannot be read: only repair goes on from it.
 */
export function refuseOpenJournal(stateDir: string, keys: string[]): void {
  for (const key of keys) {
    const prior = readJournal(stateDir, key)
    if (prior?.phase === 'in-progress')
      throw new OperationError(
        `An interrupted ${prior.operation} (run ${prior.runId}, started ${prior.startedAt}) is recorded in ${journalPath(stateDir, key)}; run operation 'repair' first`
      )
  }
}

/** The node's journal to go on from: the first open one of its keys, else the first there is. */
export function findJournal(stateDir: string, keys: string[]): { key: string; journal: Journal } | undefined {
  const found = keys.flatMap((key) => {
    const journal = readJournal(stateDir, key)
    return journal ? [{ key, journal }] : []
  })
  return found.find((f) => f.journal.phase === 'in-progress') ?? found[0]
}

export function readJournal(stateDir: string, container: string): Journal | undefined {
  return readJournalAt(journalPath(stateDir, container))
}

const UNREADABLE =
  "it cannot say whether an operation of this node is in flight, so nothing was changed. Check the node (operation 'status'), then move the file aside (docs/reliability.md)"

/**
 * A journal, or undefined when there is none. One that exists but cannot be read (another
 * user's, a state-dir this user may not enter, torn or foreign content) is an error naming the
 * file: read as "no journal" it let a second run start beside an interrupted one (review N10).
 */
export function readJournalAt(path: string): Journal | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    let owner = ''
    try {
      owner = `, owned by uid ${statSync(path).uid}`
    } catch {
      /* the directory itself is closed to this user */
    }
    throw new OperationError(
      `Cannot read the journal ${path} (${code}${owner}; this run is uid ${process.getuid?.() ?? '?'}): an operation of this node may be in flight or interrupted, so nothing was changed. Run as the user that wrote it, with the same state-dir`
    )
  }
  let j: unknown
  try {
    j = JSON.parse(text)
  } catch (e) {
    throw new OperationError(`The journal ${path} is not valid JSON (${(e as Error).message}): ${UNREADABLE}`)
  }
  if (!j || typeof j !== 'object' || typeof (j as Journal).phase !== 'string' || !Array.isArray((j as Journal).steps))
    throw new OperationError(`The journal ${path} is not a journal of this action: ${UNREADABLE}`)
  return j as Journal
}
