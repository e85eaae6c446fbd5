'use strict'
// The lease lock, docs/node-facts.md §3 (core/services/pg/lease_lock.go @02e2a691): one row in
// lease_lock, taken and refreshed with DB time on a dedicated connection.
const semver = require('semver')
const { sleepCtx, jitter, shouldLogRetry } = require('./util')

const INITIAL_SQL = [
  'CREATE TABLE IF NOT EXISTS lease_lock (client_id uuid NOT NULL, expires_at timestamptz NOT NULL)',
  'CREATE UNIQUE INDEX IF NOT EXISTS only_one_lease_lock ON lease_lock ((client_id IS NOT NULL))'
]

const UPSERT_SQL = `INSERT INTO lease_lock (client_id, expires_at) VALUES ($1, NOW()+$2::interval)
ON CONFLICT ((client_id IS NOT NULL)) DO UPDATE SET client_id=EXCLUDED.client_id, expires_at=EXCLUDED.expires_at
WHERE lease_lock.client_id = $1 OR lease_lock.expires_at < NOW()`

const RELEASE_SQL = 'UPDATE lease_lock SET expires_at=NOW() WHERE client_id = $1 AND expires_at > NOW()'

const WAITING_MSG =
  'Another application is currently holding the database lease (or a previous instance exited uncleanly), waiting for lease to expire...'

// The lease connection is a database/sql Conn over pgx (lease_lock.go). When the server closes it
// (a restart, a failover, pg_terminate_backend) the node learns it one refresh at a time: the
// refresh on it fails with the server's error and pgx marks it closed ('bad'); the next one gets
// driver.ErrBadConn, which closes the sql.Conn ('done'); the one after gets sql.ErrConnDone, and
// only that makes loop() check out a new connection and refresh on it. Meanwhile every error only
// logs: the node keeps running, and once the DB is back it renews its own lease, or takes it again
// if it ran out, unless another node took it first (0 rows: Fatal, exit 1).
const ERR_BAD_CONN = 'driver: bad connection'
const ERR_CONN_DONE = 'sql: connection is already closed'

class LeaseLock {
  constructor({ cfg, db, appID, log, onLost }) {
    this.cfg = cfg
    this.db = db
    this.appID = appID
    this.log = log.named('LeaseLock')
    this.onLost = onLost
    this.conn = null
    /** the lease connection as database/sql sees it: ok, bad (closed under pgx), done (sql.ErrConnDone) */
    this.connState = 'ok'
    this.timer = null
    this.inflight = Promise.resolve()
    // Older v1 lease code used LOCK TABLE + count + INSERT/UPDATE; when the upsert replaced it is
    // UNCONFIRMED (§3), the sim uses the old form for every v1 version.
    this.legacy = semver.lt(cfg.version, '2.0.0')
    this.seconds = `${(cfg.leaseDuration / 1000).toFixed(6)} seconds` // Go's "%f seconds"
  }

  async checkout() {
    const ms = Math.round(this.cfg.leaseDuration)
    // query_timeout: a refresh waits at most LeaseDuration, as the Go code's context does
    const c = await this.db.connect({ query_timeout: ms })
    try {
      await c.query(`SET SESSION lock_timeout = ${ms}`)
      await c.query(`SET SESSION idle_in_transaction_session_timeout = ${ms}`)
    } catch (e) {
      c.end().catch(() => undefined)
      throw e
    }
    this.conn = c
    this.connState = 'ok'
  }

  dropConn() {
    this.conn?.end().catch(() => undefined)
    this.conn = null
  }

  /** One acquire/refresh transaction; true when this process holds the lease afterwards. */
  async getLease(isInitial) {
    if (!this.conn) await this.checkout()
    if (this.connState === 'done') throw new Error(ERR_CONN_DONE)
    if (this.connState === 'bad') {
      this.connState = 'done'
      throw new Error(ERR_BAD_CONN)
    }
    const c = this.conn
    try {
      return await this.transact(c, isInitial)
    } catch (e) {
      // the socket is gone (or pgx cancelled a query that outlived its context, which closes it)
      if (!c._queryable || e.message === 'Query read timeout') {
        c.end().catch(() => undefined)
        this.connState = 'bad'
      }
      throw e
    }
  }

  async transact(c, isInitial) {
    await c.query('begin') // pgx sends transaction control in lower case (§11.6)
    try {
      if (isInitial) for (const q of INITIAL_SQL) await c.query(q)
      let affected
      if (this.legacy) {
        await c.query('LOCK TABLE lease_lock')
        const { rows } = await c.query('SELECT count(*) FROM lease_lock')
        const n = Number(rows[0].count)
        if (n > 1) throw new Error('expected only one row in lease_lock')
        const r =
          n === 0
            ? await c.query('INSERT INTO lease_lock (client_id, expires_at) VALUES ($1, NOW()+$2::interval)', [
                this.appID,
                this.seconds
              ])
            : await c.query(
                'UPDATE lease_lock SET client_id=$1, expires_at=NOW()+$2::interval WHERE client_id=$1 OR expires_at<NOW()',
                [this.appID, this.seconds]
              )
        affected = r.rowCount
      } else {
        affected = (await c.query(UPSERT_SQL, [this.appID, this.seconds])).rowCount
      }
      await c.query('commit')
      return affected > 0
    } catch (e) {
      await c.query('rollback').catch(() => undefined)
      throw e
    }
  }

  /** Blocks until the lease is ours (TakeAndHold), then refreshes it in the background. */
  async takeAndHold(ctx) {
    this.log.debug('Taking initial lease...')
    let isInitial = true
    for (let tryCount = 0; ; tryCount++) {
      let got
      try {
        got = await this.getLease(isInitial)
      } catch (e) {
        // Any DB error ends the wait and start-up fails (§3), it does not keep retrying.
        this.dropConn()
        throw new Error(`failed to take initial lease on database: ${e.message}`)
      }
      if (got) break
      isInitial = false
      if (shouldLogRetry(tryCount)) {
        this.log.info(
          this.legacy && semver.lt(this.cfg.version, '1.2.0')
            ? 'Another application holds the database lease, waiting...'
            : WAITING_MSG,
          {
            tryCount
          }
        )
      }
      try {
        await sleepCtx(jitter(this.cfg.leaseRefreshInterval), ctx)
      } catch {
        this.dropConn()
        throw new Error('failed to take initial lease on database: stopped')
      }
    }
    this.log.debug('Got exclusive lease on database', { appID: this.appID })
    this.scheduleRefresh()
  }

  scheduleRefresh() {
    // Every LeaseRefreshInterval, no jitter, the same upsert. Errors only log (split-brain window).
    this.timer = setTimeout(() => {
      this.inflight = this.refresh().then(() => {
        if (this.timer) this.scheduleRefresh()
      })
    }, this.cfg.leaseRefreshInterval)
  }

  async refresh() {
    let got
    try {
      if (this.connState === 'done') {
        this.log.warn('DB connection was unexpectedly closed; checking out a new one', { err: ERR_CONN_DONE })
        try {
          await this.checkout()
        } catch (e) {
          this.log.warn('Error trying to refresh connection', { err: e.message })
        }
      }
      got = await this.getLease(false)
    } catch (e) {
      this.log.error('Error trying to refresh database lease', { err: e.message })
      return
    }
    if (!got && this.timer) {
      this.timer = null
      await this.onLost('Another node has taken the lease, exiting immediately')
    }
  }

  /** Stops refreshing. expire=true runs the release UPDATE (Release(), §3); false leaves the row to expire. */
  async release(expire = true) {
    clearTimeout(this.timer)
    this.timer = null
    await this.inflight
    if (expire) {
      try {
        if (!this.conn) await this.checkout()
        // Release() runs on the lease connection as it is: a closed one fails, and the lease
        // stays until it runs out
        if (this.connState !== 'ok') throw new Error(this.connState === 'bad' ? ERR_BAD_CONN : ERR_CONN_DONE)
        await this.conn.query(RELEASE_SQL, [this.appID])
      } catch (e) {
        this.log.error(
          this.legacy ? 'Error trying to release lease on shutdown' : 'Error trying to release lease on cancelled ctx',
          { err: e.message }
        )
      }
    }
    this.dropConn()
  }
}

module.exports = { LeaseLock, INITIAL_SQL, UPSERT_SQL, RELEASE_SQL, WAITING_MSG }
