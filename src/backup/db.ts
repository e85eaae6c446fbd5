// What the backup module reads from the database itself: server facts, keystore counts,
// whether a node holds the lock (so a caller can refuse to restore under a running node), and
// whether the connected role can replace the database's contents (restorePlan).
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

/** The one message for a restore that cannot work, naming what stands in its way. */
export function cannotRestoreMessage(plan: Pick<RestorePlan, 'role' | 'blockers'>): string {
  return `the database role ${plan.role} cannot restore over what it may not drop: ${plan.blockers.join(', ')}; the archive would create these again. Give them to ${plan.role} ('ALTER ... OWNER TO ${plan.role}' as a superuser), or restore as a superuser`
}

/** What a restore as this role needs to know before it starts. */
interface RestorePlan {
  superuser: boolean
  role: string
  /** user schemas the role may not drop (kept, only the role's objects in them are replaced) */
  keptSchemas: string[]
  /** what the role cannot replace, so a restore cannot work: empty when it can */
  blockers: string[]
}

type Query = <R extends Record<string, unknown>>(sql: string) => Promise<R[]>

/**
 * Whether a restore as the connected role can replace the database's contents, read from the
 * catalog. It cannot where the archive would create again what the role may not drop: a schema
 * of another role other than `public` (its CREATE SCHEMA fails), an object of another role in
 * such a schema (already exists), or `public` kept without the right to create in it.
 */
export async function restorePlan(query: Query): Promise<RestorePlan> {
  const [me] = await query<{ role: string; su: boolean }>(
    'SELECT current_user AS role, rolsuper AS su FROM pg_roles WHERE rolname = current_user'
  )
  const kept = await query<{ nspname: string; owner: string; can_create: boolean; comment: string | null }>(
    `SELECT nspname, pg_get_userbyid(nspowner) AS owner, has_schema_privilege(oid, 'CREATE') AS can_create,
            obj_description(oid, 'pg_namespace') AS comment
       FROM pg_namespace
      WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
        AND NOT pg_has_role(current_user, nspowner, 'USAGE') ORDER BY 1`
  )
  const plan: RestorePlan = { superuser: me.su, role: me.role, keptSchemas: [], blockers: [] }
  if (me.su) return plan
  plan.keptSchemas = kept.map((k) => k.nspname)
  for (const k of kept) {
    if (k.nspname !== 'public') plan.blockers.push(`schema ${k.nspname} (owned by ${k.owner})`)
    else if (!k.can_create)
      plan.blockers.push(`schema public (owned by ${k.owner}, no CREATE privilege for ${me.role})`)
    // pg_dump writes a comment on public other than the default, and only its owner may set it
    else if (k.comment !== null && k.comment !== 'standard public schema')
      plan.blockers.push(`the comment on schema public (set by its owner ${k.owner})`)
  }
  // what the archive would create again in a kept schema: an object of another role there stays
  // (extension members and the sequences of identity or serial columns come with their owners)
  const foreign = await query<{ what: string }>(
    `WITH kept AS (SELECT oid, nspname FROM pg_namespace
                    WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
                      AND NOT pg_has_role(current_user, nspowner, 'USAGE')),
     o AS (
       SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                             WHEN 'f' THEN 'foreign table' ELSE 'table' END AS kind,
              format('%I.%I', k.nspname, c.relname) AS name, c.relowner AS owner, c.oid, 'pg_class'::regclass AS cls
         FROM pg_class c JOIN kept k ON k.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                   AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
       UNION ALL
       SELECT 'routine', p.oid::regprocedure::text, p.proowner, p.oid, 'pg_proc'::regclass
         FROM pg_proc p JOIN kept k ON k.oid = p.pronamespace
       UNION ALL
       SELECT 'type', format('%I.%I', k.nspname, t.typname), t.typowner, t.oid, 'pg_type'::regclass
         FROM pg_type t JOIN kept k ON k.oid = t.typnamespace
        WHERE t.typtype IN ('b', 'c', 'd', 'e', 'r')
          AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
          AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid))
     SELECT kind || ' ' || name || ' (owned by ' || pg_get_userbyid(owner) || ')' AS what FROM o
      WHERE NOT pg_has_role(current_user, owner, 'USAGE')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = o.cls AND d.objid = o.oid AND d.deptype = 'e')
      ORDER BY 1 LIMIT 6`
  )
  for (const f of foreign) plan.blockers.push(f.what)
  return plan
}
