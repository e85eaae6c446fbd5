// Reaching a database on this host the way the host can. A node in the docs' layout reaches
// Postgres on the host at `host.docker.internal` (--add-host ...:host-gateway), the default
// bridge's gateway, e.g. 172.17.0.1. A process on the host that connects to that address does not
// arrive from it: the connection goes over the loopback device with the gateway address as its
// source, and Docker's `POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE` rewrites that to
// the host's primary address (seen on the bed: client_addr 192.0.2.2 for a connection to
// 172.17.0.1). A pg_hba.conf written for loopback and the Docker subnet refuses it. So when the
// container's DB address is an address of this host, the action also tries the same server by
// loopback and by its Unix socket, and when none works it names the address the server saw and
// the pg_hba.conf line that would admit it (docs/decisions.md, "The runner reaches the DB").
import { existsSync } from 'node:fs'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'

/** This host's interface addresses. */
function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .map((i) => i?.address)
    .filter((a): a is string => !!a)
}

const bare = (host: string) => host.replace(/^\[|\]$/g, '')
const isLoopback = (host: string) => host === 'localhost' || /^127\./.test(host) || host === '::1'

/**
 * Other ways to the same server when the URL's host is a non-loopback address of this host:
 * 127.0.0.1 at the same port, then the server's Unix socket where one exists for that port.
 */
export function hostRoutes(
  databaseUrl: string,
  local: string[] = hostAddresses(),
  socketExists: (path: string) => boolean = existsSync
): { url: string; how: string }[] {
  let u: URL
  try {
    u = new URL(databaseUrl)
  } catch {
    return []
  }
  const host = bare(u.hostname)
  if (!isIP(host) || isLoopback(host) || !local.includes(host)) return []
  const port = u.port || '5432'
  const out: { url: string; how: string }[] = []
  const loop = new URL(u.toString())
  loop.hostname = '127.0.0.1'
  out.push({ url: loop.toString(), how: `127.0.0.1:${port}` })
  for (const dir of ['/var/run/postgresql', '/run/postgresql', '/tmp']) {
    if (!socketExists(`${dir}/.s.PGSQL.${port}`)) continue
    const s = new URL(u.toString())
    s.hostname = encodeURIComponent(dir)
    out.push({ url: s.toString(), how: `the socket ${dir}/.s.PGSQL.${port}` })
    break
  }
  return out
}

/** From `no pg_hba.conf entry for host "X", user "U", database "D"`: what the server saw. */
export function hbaRefusal(message: string): { host: string; user: string; database: string } | undefined {
  const m = /no pg_hba\.conf entry for host "([^"]+)", user "([^"]+)", database "([^"]+)"/.exec(message)
  return m ? { host: m[1], user: m[2], database: m[3] } : undefined
}

/** The pg_hba.conf line that admits one address for one user and database. */
export function hbaLine(r: { host: string; user: string; database: string }): string {
  const mask = isIP(r.host) === 6 ? '/128' : '/32'
  return `host ${r.database} ${r.user} ${r.host}${mask} scram-sha-256`
}

/**
 * Why the host could not reach a server the container reaches at `address`, and what to add:
 * every way tried with its error, the address the server saw, and the pg_hba.conf line.
 */
export function unreachableMessage(address: string, tries: { how: string; error: string }[]): string {
  const seen = tries.map((t) => hbaRefusal(t.error)).find((r) => !!r)
  const tried = tries.map((t) => `${t.how}: ${t.error}`).join('; ')
  const fix = seen
    ? ` The server saw this host's connection come from ${seen.host} (a connection from the host to a Docker bridge address leaves through Docker's MASQUERADE rule with the host's address); add to pg_hba.conf "${hbaLine(seen)}" (or admit 127.0.0.1 the same way) and reload Postgres.`
    : ''
  return `cannot connect to the node's database from this host: ${address} is an address of this host, and no way to it worked (${tried}).${fix}`
}
