// The runner reaches the DB the way the host can. The docs' layout: Postgres on the node's host,
// the node reaching it at host.docker.internal (--add-host host.docker.internal:host-gateway, the
// docker0 gateway). A process on the host connecting to the gateway address arrives from the
// host's primary address (Docker's MASQUERADE rule), which a pg_hba.conf written for loopback
// and the Docker subnet refuses. A dedicated cluster listens on 127.0.0.1 and the gateway.
import { afterEach, describe, expect, test } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { docker, loadBed, removeContainers, simImage, uniqueName } from '../support/bed.js'
import { runAction, visible } from '../support/action.js'
import { startNode } from '../support/node.js'
import { startPgCluster, type PgCluster } from '../support/pg-cluster.js'

const prefix = uniqueName('clr-hdb')
const bed = loadBed()
let n = 0
let cluster: PgCluster | undefined

afterEach(async () => {
  await removeContainers(prefix)
  await cluster?.stop()
  cluster = undefined
})

/** A node on the dedicated cluster, reaching it by host.docker.internal, in the ports layout. */
async function nodeOn(c: PgCluster): Promise<string> {
  const name = `${prefix}-${++n}`
  const url = c.db.bridgeUrl.replace(`@${bed.pg.bridgeHost}:`, '@host.docker.internal:')
  await startNode({
    name,
    tag: '2.19.0',
    db: c.db,
    layout: 'ports',
    env: { CL_DATABASE_URL: url },
    hostConfig: { ExtraHosts: ['host.docker.internal:host-gateway'] }
  })
  return name
}

const inspect = async (name: string) => {
  const i = await docker.getContainer(name).inspect()
  return { id: i.Id, image: i.Config.Image, running: i.State.Running, startedAt: i.State.StartedAt }
}

const upgrade = (name: string) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
  return runAction({
    operation: 'upgrade',
    container: name,
    image: simImage('2.20.0'),
    'state-dir': stateDir,
    'backup-dir': join(stateDir, 'backups')
  })
}

describe('a database on this host, reached by host.docker.internal', () => {
  test('pg_hba.conf admits loopback and the Docker subnet: the upgrade reaches it by loopback and ends upgraded', async () => {
    cluster = await startPgCluster({
      hba: ['host all all 127.0.0.1/32 scram-sha-256', 'host all all 172.16.0.0/12 scram-sha-256']
    })
    const name = await nodeOn(cluster)
    const r = await upgrade(name)
    const out = visible(r.stdout)
    expect(out).not.toMatch(/::error::/)
    expect(r.outputs.result).toBe('upgraded')
    expect(r.exitCode).toBe(0)
    expect(out).toMatch(new RegExp(`database reached at 127\\.0\\.0\\.1:${cluster.port}`))
    expect((await inspect(name)).image).toBe(simImage('2.20.0'))
  })

  test('pg_hba.conf admits only the Docker subnet: preflight fails naming the address and the line, nothing changed', async () => {
    cluster = await startPgCluster({ hba: ['host all all 172.16.0.0/12 scram-sha-256'] })
    const name = await nodeOn(cluster)
    const before = await inspect(name)
    const r = await upgrade(name)
    expect(r.exitCode).toBe(1)
    const out = visible(r.stdout)
    const primary = /no pg_hba\.conf entry for host "([^"]+)"/.exec(out)?.[1]
    expect(primary).toBeTruthy()
    expect(out).toMatch(/::error::.*cannot connect to the node's database from this host/)
    expect(out).toContain(`come from ${primary}`)
    expect(out).toContain(`host node clr ${primary}/32 scram-sha-256`)
    expect(out).not.toContain('clr-pg-cluster-password')
    expect(await inspect(name)).toEqual(before)
    const left = (await docker.listContainers({ all: true })).filter((c) => c.Names.some((x) => x.includes(prefix)))
    expect(left.map((c) => c.Names[0])).toEqual([`/${name}`])
  })
})
