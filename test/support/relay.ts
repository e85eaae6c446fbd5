// A TCP relay in front of the bed's Postgres, as a DB behind NAT or a pooler looks to the node:
// every session the database sees comes from the relay's own address (127.0.0.1), whichever
// container opened it. It listens on one port on 127.0.0.1 (host networking, the action) and
// on the docker0 gateway (containers on the default bridge).
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { loadBed } from './bed.js'

export interface Relay {
  port: number
  /** the URL of `dbUrl`'s database through the relay, for a host process (127.0.0.1) */
  url(dbUrl: string): string
  /** the same for a container on the default bridge (the docker0 gateway) */
  bridgeUrl(dbUrl: string): string
  close(): Promise<void>
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve((server.address() as { port: number }).port))
  })
}

export async function startRelay(): Promise<Relay> {
  const bed = loadBed()
  const sockets = new Set<Socket>()
  const handle = (client: Socket) => {
    const upstream = createConnection({ host: bed.pg.host, port: bed.pg.port })
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => undefined)
    }
    client.pipe(upstream).pipe(client)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  }
  const local = createServer(handle)
  const bridge = createServer(handle)
  const port = await listen(local, '127.0.0.1', 0)
  await listen(bridge, bed.gateway, port)
  const via = (dbUrl: string, host: string) => {
    const u = new URL(dbUrl)
    u.hostname = host
    u.port = String(port)
    return u.toString()
  }
  return {
    port,
    url: (dbUrl) => via(dbUrl, '127.0.0.1'),
    bridgeUrl: (dbUrl) => via(dbUrl, bed.gateway),
    async close() {
      for (const s of sockets) s.destroy()
      await Promise.all([local, bridge].map((s) => new Promise((r) => s.close(() => r(undefined)))))
    }
  }
}
