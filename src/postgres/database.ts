// The node's Postgres, read-only except where a rollback must reset node_versions. The action
// connects under its own application_name so its session is never mistaken for a node's.
import pg from 'pg'

export interface NodeSession {
  pid: number
  appId: string
  version: string
  applicationName: string
  clientAddr: string | null
  clientPort: number | null
  /** NULL for another role's session when this role lacks pg_read_all_stats */
  backendStart: Date | null
  queryStart: Date | null
  state: string | null
  query: string
}

export interface LeaseRow {
  clientId: string
  expiresAt: Date
  /** by the DB clock, as the node compares it */
  expired: boolean
}

export interface AdvisoryHolder {
  pid: number
  appId?: string
}

export interface DbVersion {
  /** goose_migrations max applied version_id; undefined without the table */
  goose?: number
  /** node_versions.version; undefined when the table or its row is missing */
  nodeVersion?: string
  nodeVersionsTable: boolean
}

// `Chainlink <version> |App|<uuid>`; a build without a version names itself `Chainlink |App|<uuid>`
const APP_NAME = /^Chainlink (?:(\S+) )?\|App\|([0-9a-f-]+)$/

export function parseApplicationName(name: string): { version: string; appId: string } | undefined {
  const m = APP_NAME.exec(name)
  return m ? { version: m[1] ?? '', appId: m[2] } : undefined
}

/**
 * What the rollout, its gates, the rollback and repair ask of the node's Postgres (Database is
 * the real one; unit tests give fakes that play the node's sessions and lock).
 */
export interface DbApi {
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>
  close(): Promise<void>
  tableExists(name: string): Promise<boolean>
  /** the node processes' sessions (application_name `Chainlink <version> |App|<uuid>`) */
  nodeSessions(): Promise<NodeSession[]>
  /** the lease_lock row; undefined when empty */
  lease(): Promise<LeaseRow | undefined>
  advisoryHolders(lockId: bigint): Promise<AdvisoryHolder[]>
  /** goose and node_versions */
  version(): Promise<DbVersion>
  resetNodeVersion(version: string | undefined): Promise<void>
}

/** How long a query waits for a lost connection to come back (a DB restart, dropped sessions). */
const RECONNECT_FOR_MS = 30_000

export class Database implements DbApi {
  private closed = false
  private constructor(
    private client: pg.Client,
    private readonly url: string,
    private readonly timeoutMs: number
  ) {}

  private static async open(url: string, timeoutMs: number): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: url,
      application_name: 'chainlink-rollout',
      connectionTimeoutMillis: timeoutMs,
      statement_timeout: timeoutMs
    })
    // A dropped connection must surface as a query error, not an unhandled 'error' event.
    client.on('error', () => undefined)
    try {
      await client.connect()
    } catch (e) {
      await client.end().catch(() => undefined)
      throw e
    }
    return client
  }

  /**
   * Connects to the node's database. `retryForMs` keeps trying that long (the post step and
   * repair run right after an interruption, when the DB may be restarting).
   */
  static async connect(url: string, timeoutMs = 10_000, retryForMs = 0): Promise<Database> {
    const end = Date.now() + retryForMs
    for (;;) {
      try {
        return new Database(await Database.open(url, timeoutMs), url, timeoutMs)
      } catch (e) {
        if (Date.now() >= end || !isConnectionError(e))
          throw new Error(`cannot connect to the node's database: ${describePgError(e)}`)
        await new Promise((r) => setTimeout(r, 500))
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true
    await this.client.end().catch(() => undefined)
  }

  /**
   * Runs a query. A lost connection (a DB restart, an operator's pg_terminate_backend) is
   * reopened and the query retried, for up to 30 s: a blip in the DB must not read as a
   * failed gate and roll back a healthy node.
   */
  async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    const end = Date.now() + RECONNECT_FOR_MS
    for (;;) {
      try {
        return (await this.client.query<R>(sql, params)).rows
      } catch (e) {
        if (this.closed || !isConnectionError(e) || Date.now() >= end) throw e
        await this.client.end().catch(() => undefined)
        await new Promise((r) => setTimeout(r, 250))
        try {
          this.client = await Database.open(this.url, this.timeoutMs)
        } catch {
          /* still down: the loop tries again until the deadline */
        }
      }
    }
  }

  async tableExists(name: string): Promise<boolean> {
    const r = await this.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [name])
    return r[0].ok
  }

  /** Every node process connected to this database, oldest first. */
  async nodeSessions(): Promise<NodeSession[]> {
    const rows = await this.query<{
      pid: number
      application_name: string
      client_addr: string | null
      client_port: number | null
      backend_start: Date | null
      query_start: Date | null
      state: string | null
      query: string
    }>(
      `SELECT pid, application_name, host(client_addr) AS client_addr, client_port, backend_start, query_start, state, query
         FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'Chainlink %|App|%' ORDER BY backend_start`
    )
    const out: NodeSession[] = []
    for (const r of rows) {
      const p = parseApplicationName(r.application_name)
      if (!p) continue
      out.push({
        pid: r.pid,
        appId: p.appId,
        version: p.version,
        applicationName: r.application_name,
        clientAddr: r.client_addr,
        clientPort: r.client_port,
        backendStart: r.backend_start,
        queryStart: r.query_start,
        state: r.state,
        query: r.query
      })
    }
    return out
  }

  /** The lease row (docs/node-facts.md §3); undefined when the table is empty. */
  async lease(): Promise<LeaseRow | undefined> {
    const r = await this.query<{ client_id: string; expires_at: Date; expired: boolean }>(
      `SELECT client_id::text, expires_at, expires_at < NOW() AS expired FROM lease_lock`
    )
    if (r.length > 1) throw new Error(`lease_lock has ${r.length} rows; the node keeps exactly one`)
    return r[0] ? { clientId: r[0].client_id, expiresAt: r[0].expires_at, expired: r[0].expired } : undefined
  }

  /** Backends holding the node's advisory lock (docs/node-facts.md §2), with their app id. */
  async advisoryHolders(lockId: bigint): Promise<AdvisoryHolder[]> {
    const r = await this.query<{ pid: number; application_name: string | null }>(
      `SELECT l.pid, a.application_name FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint`,
      [lockId.toString()]
    )
    return r.map((x) => ({
      pid: x.pid,
      appId: x.application_name ? parseApplicationName(x.application_name)?.appId : undefined
    }))
  }

  async version(): Promise<DbVersion> {
    const out: DbVersion = { nodeVersionsTable: false }
    if (await this.tableExists('goose_migrations')) {
      const r = await this.query<{ v: string | null }>(
        `SELECT max(version_id)::text AS v FROM goose_migrations WHERE is_applied`
      )
      if (r[0].v !== null) out.goose = Number(r[0].v)
    }
    if (await this.tableExists('node_versions')) {
      out.nodeVersionsTable = true
      const r = await this.query<{ version: string }>(
        `SELECT version FROM node_versions ORDER BY created_at DESC LIMIT 1`
      )
      out.nodeVersion = r[0]?.version
    }
    return out
  }

  /** Puts node_versions back to what preflight recorded (`db rollback` never touches it). */
  async resetNodeVersion(version: string | undefined): Promise<void> {
    if (version === undefined) await this.query(`DELETE FROM node_versions`)
    else await this.query(`UPDATE node_versions SET version = $1`, [version])
  }

  async serverVersion(): Promise<string> {
    return (await this.query<{ v: string }>(`SHOW server_version`))[0].v
  }
}

/** Errors that mean the connection is gone, not that the query was wrong. */
export function isConnectionError(e: unknown): boolean {
  const err = e as { code?: string; message?: string }
  if (err.code && /^(08|57P0[1-3])/.test(err.code)) return true
  if (
    err.code &&
    ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH'].includes(err.code)
  )
    return true
  return /Connection terminated|not queryable|connection error|Client was closed|timeout exceeded when trying to connect|database .* is not currently accepting connections/i.test(
    err.message ?? ''
  )
}

/** A pg error without anything from the connection string. */
export function describePgError(e: unknown): string {
  const err = e as { code?: string; message?: string }
  const msg = (err.message ?? String(e)).replace(/postgres(ql)?:\/\/\S+/g, '<database-url>')
  return err.code ? `${msg} (${err.code})` : msg
}
