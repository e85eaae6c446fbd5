'use strict'
// The v1 advisory lock, docs/node-facts.md §2 (core/services/pg/advisory_lock.go @10c2e5b7): a
// session-level pg_try_advisory_lock on a dedicated connection, checked in pg_locks while held.
const { sleepCtx, jitter, shouldLogRetry } = require('./util')

const TRY_SQL = 'SELECT pg_try_advisory_lock($1)'
const HELD_SQL = `SELECT count(*) AS n FROM pg_locks WHERE locktype='advisory' AND pid=pg_backend_pid() AND (classid::bigint<<32)|objid::bigint=$1`
const UNLOCK_SQL = 'SELECT pg_advisory_unlock($1)'

class AdvisoryLock {
  constructor({ cfg, db, log, onLost }) {
    this.cfg = cfg
    this.db = db
    this.id = cfg.advisoryLockID // int64 as a decimal string; Postgres types the parameter bigint
    this.log = log.named('AdvisoryLock')
    this.onLost = onLost
    this.conn = null
    this.timer = null
    this.inflight = Promise.resolve()
  }

  async tryLock() {
    if (!this.conn) this.conn = await this.db.connect()
    const { rows } = await this.conn.query(TRY_SQL, [this.id])
    return rows[0].pg_try_advisory_lock === true
  }

  dropConn() {
    this.conn?.end().catch(() => undefined)
    this.conn = null
  }

  async takeAndHold(ctx) {
    for (let tryCount = 0; ; tryCount++) {
      let got
      try {
        got = await this.tryLock()
      } catch (e) {
        this.dropConn()
        throw new Error(`failed to take advisory lock on database: ${e.message}`)
      }
      if (got) break
      if (shouldLogRetry(tryCount))
        this.log.info('Another application holds the advisory lock, waiting...', { tryCount })
      try {
        await sleepCtx(jitter(this.cfg.advisoryCheckInterval), ctx)
      } catch {
        this.dropConn()
        // The wording of this error is not in the source notes; it mirrors the lease one (§3).
        throw new Error('failed to take advisory lock on database: stopped')
      }
    }
    this.log.debug('Got advisory lock', { advisoryLockID: this.id })
    this.scheduleCheck()
  }

  scheduleCheck() {
    this.timer = setTimeout(() => {
      this.inflight = this.check().then(() => {
        if (this.timer) this.scheduleCheck()
      })
    }, jitter(this.cfg.advisoryCheckInterval))
  }

  async check() {
    let held
    try {
      if (!this.conn) {
        // Connection was lost (the server dropped the session lock with it, PR #5632):
        // check out a new one and try to take the lock again.
        held = await this.tryLock()
      } else {
        const { rows } = await this.conn.query(HELD_SQL, [this.id])
        held = Number(rows[0].n) > 0
      }
    } catch (e) {
      this.log.error('Error checking advisory lock', { err: e.message })
      this.dropConn()
      return
    }
    if (!held && this.timer) {
      this.timer = null
      await this.onLost('Another node has taken the advisory lock, exiting')
    }
  }

  async release() {
    clearTimeout(this.timer)
    this.timer = null
    await this.inflight
    try {
      if (this.conn) await this.conn.query(UNLOCK_SQL, [this.id])
    } catch (e) {
      this.log.error('Error releasing advisory lock', { err: e.message })
    }
    this.dropConn()
  }
}

module.exports = { AdvisoryLock, TRY_SQL, HELD_SQL, UNLOCK_SQL }
