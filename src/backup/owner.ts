// Whose backup a set is: the node's identity recorded in its manifest, read from the database at
// backup time and again at restore time, and the decision "this node's, another node's, or not
// known" (docs/decisions.md, "Backups belong to their node"). Nothing recorded here is a secret:
// the server's system identifier and address, the database name and the node's public EVM
// addresses (on chain for anyone to see).
import { networkInterfaces } from 'node:os'
import type pg from 'pg'
import type { BackupOwner } from './manifest.js'
import { parseConn, pgClient } from './pgtools.js'

export type { BackupOwner }

/** Tables that hold a node's EVM addresses (evm.key_states since 2.x, eth_key_states before). */
const KEY_TABLES = ['evm.key_states', 'public.eth_key_states']

/**
 * The server as the URL reaches it: host:port. A server on this host is `this host:<port>`
 * whichever way reaches it (loopback, a socket, an interface address such as the Docker
 * gateway), as the action may reach it one way or another (src/node/host-reach.ts).
 */
export function serverAddress(databaseUrl: string, local: string[] = localAddresses()): string {
  try {
    // a socket URL has no host part (postgres://user@/db?host=/dir), which URL refuses
    const u = new URL(databaseUrl.replace(/^(postgres(?:ql)?:\/\/(?:[^@/]*@)?)\//, '$1_/'))
    const host = decodeURIComponent(
      u.searchParams.get('host') || (u.hostname === '_' ? '' : u.hostname) || 'localhost'
    ).replace(/^\[|\]$/g, '')
    const port = u.port || u.searchParams.get('port') || '5432'
    const here = host.startsWith('/') || host === 'localhost' || /^127\./.test(host) || local.includes(host)
    return `${here ? 'this host' : host}:${port}`
  } catch {
    return 'unknown'
  }
}

function localAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .map((i) => i?.address)
    .filter((a): a is string => !!a)
}

function keyId(a: unknown): string | undefined {
  if (Buffer.isBuffer(a)) return `evm:0x${a.toString('hex')}`
  if (typeof a === 'string' && a) return `evm:${a.toLowerCase().replace(/^\\x/, '0x')}`
  return undefined
}

/** The owner as the database shows it now, on an open connection. */
export async function readOwner(c: pg.Client, address: string): Promise<BackupOwner> {
  const { rows } = await c.query<{ d: string }>('SELECT current_database() AS d')
  let systemIdentifier: string | undefined
  try {
    // restricted to superusers and pg_monitor on some servers: the address is the fallback
    const r = await c.query<{ s: string }>('SELECT system_identifier::text AS s FROM pg_control_system()')
    systemIdentifier = r.rows[0]?.s
  } catch {
    systemIdentifier = undefined
  }
  const keys = new Set<string>()
  for (const t of KEY_TABLES) {
    const e = await c.query<{ e: boolean }>('SELECT to_regclass($1) IS NOT NULL AS e', [t])
    if (!e.rows[0].e) continue
    const [s, n] = t.split('.')
    try {
      const r = await c.query<{ a: unknown }>(`SELECT address AS a FROM "${s}"."${n}"`)
      for (const { a } of r.rows) {
        const id = keyId(a)
        if (id) keys.add(id)
      }
    } catch {
      // a table of another shape: no key ids from it
    }
  }
  return {
    server: { address, ...(systemIdentifier ? { systemIdentifier } : {}) },
    database: rows[0].d,
    keys: [...keys].sort()
  }
}

/** The owner of the database a URL points at (connects, reads, disconnects). */
export async function ownerOf(databaseUrl: string): Promise<BackupOwner> {
  const c = await pgClient(parseConn(databaseUrl))
  try {
    return await readOwner(c, serverAddress(databaseUrl))
  } finally {
    await c.end().catch(() => undefined)
  }
}

export type Ownership = 'same' | 'other' | 'unknown'

function sameServer(a: BackupOwner['server'], b: BackupOwner['server']): boolean {
  if (a.systemIdentifier && b.systemIdentifier) return a.systemIdentifier === b.systemIdentifier
  return a.address === b.address
}

/**
 * Whether a backup with this recorded owner is the current node's. Keys decide when both sides
 * have some: a node that added a key still shares the others with its older backups, two nodes
 * never share one. Without keys on either side (a node without EVM keys, a database emptied by
 * accident) the place decides: the same database on the same server. A manifest written before
 * owners were recorded is 'unknown'.
 */
export function ownership(recorded: BackupOwner | undefined, current: BackupOwner): Ownership {
  if (!recorded) return 'unknown'
  if (recorded.keys.length && current.keys.length)
    return recorded.keys.some((k) => current.keys.includes(k)) ? 'same' : 'other'
  return recorded.database === current.database && sameServer(recorded.server, current.server) ? 'same' : 'other'
}

/** For messages: database, server and keys. */
export function describeOwner(o: BackupOwner): string {
  const keys = o.keys.length ? `keys ${o.keys.map((k) => k.replace(/^evm:/, '')).join(', ')}` : 'no EVM keys'
  const server = o.server.systemIdentifier
    ? `server ${o.server.address} (system identifier ${o.server.systemIdentifier})`
    : `server ${o.server.address}`
  return `database ${o.database} on ${server}, ${keys}`
}
