// Who holds the node's DB lock, proven from the database and tied to a container:
// lock row / advisory lock -> app UUID -> DB session (application_name); src/node/sessions.ts ties
// the app to a container.
import type { AdvisoryHolder, LeaseRow, DbApi, NodeSession } from '../postgres/database.js'
import type { LockMode } from './config-types.js'

export interface LockState {
  mode: LockMode
  lease?: LeaseRow
  advisory: AdvisoryHolder[]
  sessions: NodeSession[]
  /** app id of the holder, when exactly one holds the lock */
  holder?: string
  /** why nobody (or more than one) holds it */
  problem?: string
}

export async function readLockState(db: DbApi, mode: LockMode, advisoryLockId: bigint): Promise<LockState> {
  const sessions = await db.nodeSessions()
  const state: LockState = { mode, advisory: [], sessions }
  if (mode === 'lease' || mode === 'dual') {
    if (!(await db.tableExists('lease_lock'))) {
      state.problem = `the database has no lease_lock table, so no node holds a lease (lock mode ${mode}); is this a Chainlink node database, and is the node running?`
      return state
    }
    state.lease = await db.lease()
  }
  if (mode === 'advisorylock' || mode === 'dual') state.advisory = await db.advisoryHolders(advisoryLockId)
  return decideHolder(state)
}

/** Pure: picks the single holder from what was read, or says what is wrong. */
/**
 * The node truncates application_name to 63 characters, so with a long version string the
 * UUID in a session is cut short: a session belongs to an app when its id is a prefix.
 */
export function sameApp(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false
  if (a === b) return true
  const [short, long] = a.length <= b.length ? [a, b] : [b, a]
  return short.length >= 8 && long.startsWith(short)
}

export function decideHolder(state: LockState): LockState {
  const live = { has: (id: string) => state.sessions.some((s) => sameApp(s.appId, id)) }
  const leaseHolder = state.lease && !state.lease.expired ? state.lease.clientId : undefined
  // an advisory holder's app id comes from a (possibly truncated) application_name
  const full = (id: string) => (leaseHolder && sameApp(id, leaseHolder) ? leaseHolder : id)
  const advisoryIds = [...new Set(state.advisory.map((a) => (a.appId ? full(a.appId) : `pid ${a.pid}`)))]
  const out = { ...state, holder: undefined as string | undefined, problem: undefined as string | undefined }
  if (state.mode === 'none') {
    out.problem = "the node runs with lock mode 'none': it takes no DB lock, so no zero-downtime handoff is possible"
    return out
  }
  if (state.mode === 'lease' || state.mode === 'dual') {
    if (!leaseHolder) {
      out.problem = state.lease
        ? `the lease expired at ${state.lease.expiresAt.toISOString()} and nobody renewed it: no node holds the lock`
        : 'the lease_lock table is empty: no node holds the lock'
      return out
    }
    if (!live.has(leaseHolder)) {
      out.problem = `the lease is held by app ${leaseHolder}, which has no DB session (a node that exited uncleanly; the lease expires at ${state.lease!.expiresAt.toISOString()})`
      return out
    }
  }
  if (state.mode === 'advisorylock' || state.mode === 'dual') {
    if (advisoryIds.length === 0) {
      out.problem =
        state.mode === 'dual'
          ? `app ${leaseHolder} holds the lease but nobody holds the advisory lock (a node still starting, or lost its lock connection)`
          : 'nobody holds the advisory lock: no node is leader'
      if (state.mode === 'advisorylock') return out
      return out
    }
    if (advisoryIds.length > 1) {
      out.problem = `two sessions hold the advisory lock (${advisoryIds.join(', ')})`
      return out
    }
    if (state.mode === 'dual' && advisoryIds[0] !== leaseHolder) {
      out.problem = `two leaders: app ${leaseHolder} holds the lease while ${advisoryIds[0]} holds the advisory lock`
      return out
    }
  }
  out.holder = leaseHolder ?? advisoryIds[0]
  return out
}

/**
 * A session that polls the lock: the lease upsert (its text shows for a moment), the end of its
 * transaction (pgx sends `commit` in lower case, §11.6), or the advisory try (§2).
 */
export function pollsLock(s: Pick<NodeSession, 'query'>): boolean {
  const q = s.query.trim().replace(/;$/, '').toLowerCase()
  return /lease_lock|pg_try_advisory_lock/.test(q) || q === 'commit' || q === 'rollback' || q === 'end'
}
