'use strict'
// Postgres connections of one node process. Every connection, the lock connections and the main
// pool alike, carries application_name "Chainlink <ver> |App|<uuid>" truncated to 63 characters
// (§3, static.SetConsumerName), so a DBA (or a test) can tell which process holds what.
// The lose-db fault lives here: dropAll() destroys every socket and refuses new connections for
// a while, which is what a network partition between the node and its DB looks like to it.
const pg = require('pg')

// bigint columns (sim_heartbeats.id, goose version_id) as JS numbers: they stay small here.
pg.types.setTypeParser(20, (v) => Number(v))

function applicationName(version, appID) {
  return `Chainlink ${version} |App|${appID}`.slice(0, 63)
}

function createDb({ url, version, appID, log }) {
  const clients = new Set()
  let outageUntil = 0
  const base = { connectionString: url, application_name: applicationName(version, appID) }

  const outageError = () => new Error('dial tcp: connect: connection refused (simulated lose-db outage)')

  // A pg.Client that refuses to connect during a simulated outage and registers itself for dropAll.
  class SimClient extends pg.Client {
    connect(cb) {
      if (Date.now() < outageUntil) {
        const err = outageError()
        if (cb) return void process.nextTick(() => cb(err))
        return Promise.reject(err)
      }
      clients.add(this)
      this.once('end', () => clients.delete(this))
      // A dropped socket surfaces as an 'error' event on idle clients; the owner sees the next query fail.
      this.on('error', (e) => log.debug('DB connection error', { err: e.message }))
      return super.connect(cb)
    }
  }

  const pool = new pg.Pool({ ...base, Client: SimClient, max: 10, idleTimeoutMillis: 30000 })
  pool.on('error', (e) => log.debug('DB pool connection error', { err: e.message }))

  return {
    pool,
    /** A dedicated connection (the lock connections bypass the pool, §2/§3). */
    async connect(extra = {}) {
      const c = new SimClient({ ...base, ...extra })
      await c.connect()
      return c
    },
    /** Simulated partition: kill every socket now and refuse connections for outageMs. */
    dropAll(outageMs) {
      outageUntil = Date.now() + outageMs
      for (const c of clients) c.connection?.stream?.destroy()
    },
    async close() {
      await pool.end().catch(() => undefined)
    }
  }
}

module.exports = { createDb, applicationName }
