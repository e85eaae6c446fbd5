// The simulator's lease loop against a real Postgres that restarts or goes away (a cluster of the
// test's own, support/pg-cluster.ts): as the real node's loop() (docs/node-facts.md §3) it keeps
// running, checks out a new lease connection on a closed one and renews its own lease; after an
// outage longer than the lease it takes its own lease again, as nobody else took it. The sim runs
// from its sources on the host (as its README shows), so this needs no image rebuild.
import { afterAll, describe, expect, test } from '@jest/globals'
import { spawn, type ChildProcess } from 'node:child_process'
import { resolve } from 'node:path'
import { freePort } from '../../src/docker/client.js'
import { waitFor } from '../support/bed.js'
import { startPgCluster, type PgCluster } from '../support/pg-cluster.js'

const sim = resolve(import.meta.dirname, '../node-sim/chainlink.js')
let cluster: PgCluster | undefined
let child: ChildProcess | undefined

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL')
  await cluster?.stop()
})

async function leaseRow(c: PgCluster): Promise<{ id: string; live: boolean } | undefined> {
  const db = await c.db.client()
  try {
    const r = await db.query<{ id: string; live: boolean }>(
      'SELECT client_id::text AS id, expires_at > now() AS live FROM lease_lock'
    )
    return r.rows[0]
  } catch {
    return undefined
  } finally {
    await db.end()
  }
}

describe('simulator: the lease connection dies', () => {
  test('a restart and an outage longer than the lease: it keeps running, reconnects and holds its own lease', async () => {
    cluster = await startPgCluster()
    const c = cluster
    const port = await freePort('127.0.0.1')
    let out = ''
    child = spawn(process.execPath, [sim, 'node', 'start'], {
      env: {
        PATH: process.env.PATH ?? '',
        SIM_VERSION: '2.19.0',
        CL_DATABASE_URL: c.db.url,
        CL_CONFIG: `[WebServer]\nHTTPPort = ${port}\nListenIP = '127.0.0.1'\n`,
        SIM_BOOT_MS: '100'
      }
    })
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
    const booted = await waitFor('Chainlink booted', async () => /appID=(\S+)/.exec(out)?.[1], 30_000)
    expect(await leaseRow(c)).toEqual({ id: booted, live: true })

    // pg_ctl restart -m fast: the lease connection is closed by the server
    await c.restart('fast')
    await waitFor('a new lease connection', async () => out.includes('checking out a new one') || undefined, 15_000)
    const renewed = await waitFor(
      'the lease renewed by the same app',
      async () => {
        const r = await leaseRow(c)
        return r?.live && r.id === booted ? r : undefined
      },
      15_000
    )
    expect(renewed).toEqual({ id: booted, live: true })
    expect(out).toMatch(/Error trying to refresh database lease/)
    expect({ exit: child.exitCode }).toEqual({ exit: null })

    // no server for 13 s, longer than the 10 s lease: every refresh fails, the node keeps running,
    // and once the DB is back it takes its own lease again (nobody else took it)
    const before = out.length
    await c.outage(13_000)
    expect({ exit: child.exitCode }).toEqual({ exit: null })
    const again = await waitFor(
      'the lease held again by the same app',
      async () => {
        const r = await leaseRow(c)
        return r?.live && r.id === booted ? r : undefined
      },
      15_000
    )
    expect(again).toEqual({ id: booted, live: true })
    expect(out.slice(before)).toMatch(/checking out a new one/)
    expect(out).not.toMatch(/Another node has taken the lease/)

    // and it still stops as a node does: the lease released, exit 0
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)))
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect((await leaseRow(c))?.live).toBe(false)
  }, 120_000)
})
