// What the backup module reads from the database itself: server facts, keystore counts, and
// whether a node holds the lock (so a caller can refuse to restore under a running node).
import type pg from 'pg'
import { parseConn, pgClient } from './pgtools.js'

/** Chainlink keystore tables, counted when present. encrypted_key_rings holds every key (v1.x+). */
const KEYSTORE_TABLES = [
  'public.encrypted_key_rings',
  'evm.key_states',
  'public.eth_key_states',
  'public.csa_keys',
  'public.encrypted_ocr_key_bundles',
  'public.encrypted_p2p_keys',
  'public.encrypted_vrf_keys'
]

export async function keystoreCounts(c: pg.Client): Promise<Record<string, number>> {
  const { rows } = await c.query<{ t: string }>(
    `SELECT n.nspname || '.' || r.relname AS t FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
     WHERE r.relkind IN ('r','p') AND n.nspname || '.' || r.relname = ANY($1)`,
    [KEYSTORE_TABLES]
  )
  const out: Record<string, number> = {}
  for (const { t } of rows.sort((a, b) => KEYSTORE_TABLES.indexOf(a.t) - KEYSTORE_TABLES.indexOf(b.t))) {
    const [s, n] = t.split('.')
    const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${ident(s)}.${ident(n)}`)
    out[t.replace(/^public\./, '')] = Number(r.rows[0].n)
  }
  return out
}

export function ident(s: string): string {
  return '"' + s.replace(/"/g, '""') + '"'
}

export async function serverInfo(
  c: pg.Client
): Promise<{ version: string; major: number; bytes: number; database: string }> {
  const { rows } = await c.query<{ v: string; n: string; b: string; d: string }>(
    "SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n, pg_database_size(current_database()) AS b, current_database() AS d"
  )
  return {
    version: rows[0].v,
    major: Math.floor(Number(rows[0].n) / 10000),
    bytes: Number(rows[0].b),
    database: rows[0].d
  }
}

export interface LockHolder {
  held: boolean
  /** e.g. "lease held by <uuid> until <time>", "advisory lock held by pid 123" */
  detail?: string
}

/**
 * Whether a Chainlink node holds the DB lock: an unexpired lease_lock row (v1.1+/v2), or the
 * v1 advisory lock (default id 1027321974924625846) held by a session on this database.
 */
export async function lockHolderPresent(
  databaseUrl: string,
  advisoryLockId = 1027321974924625846n
): Promise<LockHolder> {
  const c = await pgClient(parseConn(databaseUrl))
  try {
    const t = await c.query("SELECT to_regclass('public.lease_lock') IS NOT NULL AS e")
    if (t.rows[0].e) {
      const { rows } = await c.query<{ client_id: string; expires_at: Date }>(
        'SELECT client_id::text, expires_at FROM lease_lock WHERE expires_at > now()'
      )
      if (rows.length)
        return { held: true, detail: `lease held by ${rows[0].client_id} until ${rows[0].expires_at.toISOString()}` }
    }
    const a = await c.query<{ pid: number }>(
      `SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
       WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()
         AND ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint`,
      [advisoryLockId.toString()]
    )
    if (a.rows.length)
      return { held: true, detail: `advisory lock ${advisoryLockId} held by backend pid ${a.rows[0].pid}` }
    return { held: false }
  } finally {
    await c.end().catch(() => undefined)
  }
}
