// One node across several hosts (issue 22, docs/hosts.md) on a bed of hosts: dedicated Docker
// daemons sharing the bed's Postgres (test/support/hosts.ts), the action run as each host's
// runner runs it. Never two writers, and no heartbeat pause beyond the handoff.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { createDb, uniqueName, waitFor, type TestDb } from '../support/bed.js'
import { startHosts, stopHosts, type BedHost } from '../support/hosts.js'
import { startNode } from '../support/node.js'
import { visible } from '../support/action.js'

const prefix = uniqueName('clr-hosts')
const TAG = '2.19.0'
let hosts: BedHost[] = []

beforeAll(async () => {
  hosts = await startHosts(2, [TAG])
}, 300_000)
afterAll(async () => {
  await stopHosts(hosts, prefix)
}, 120_000)

/** The node's processes as the DB sees them: version, app id and client address. */
async function sessions(db: TestDb): Promise<{ app: string; addr: string }[]> {
  const c = await db.client()
  try {
    const r = await c.query(
      `SELECT DISTINCT application_name AS app, host(client_addr) AS addr FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'Chainlink %'`,
      [db.name]
    )
    return r.rows as { app: string; addr: string }[]
  } finally {
    await c.end()
  }
}

describe('the bed of hosts', () => {
  test("each host's node reaches the shared Postgres from its own subnet", async () => {
    const db = await createDb('hosts')
    try {
      const [h1, h2] = hosts
      await startNode({ name: `${prefix}-bed`, tag: TAG, db, layout: 'bridge', api: h1.dockerd.api })
      await startNode({ name: `${prefix}-bed`, tag: TAG, db, layout: 'bridge', api: h2.dockerd.api, noWait: true })
      const seen = await waitFor('two node processes', async () => {
        const s = await sessions(db)
        return new Set(s.map((x) => x.app)).size === 2 ? s : undefined
      })
      const subnet = (a: string) => a.split('.').slice(0, 3).join('.')
      expect(new Set(seen.map((s) => subnet(s.addr))).size).toBe(2)
      expect(seen.map((s) => subnet(s.addr)).sort()).toEqual(
        expect.arrayContaining([subnet(h1.dockerd.gateway), subnet(h2.dockerd.gateway)])
      )
    } finally {
      for (const h of hosts)
        await h.dockerd.api
          .getContainer(`${prefix}-bed`)
          .remove({ force: true })
          .catch(() => undefined)
      await db.drop()
    }
  })
})

interface Inst {
  appId: string
  version: string
  host: 'local' | 'remote'
  container?: string
  role: 'leader' | 'waiting' | 'other'
}
const instancesOf = (out: string) =>
  (JSON.parse(out) as Inst[]).map((x) => ({ host: x.host, role: x.role, version: x.version, container: x.container }))

/** Until the DB shows `n` node processes (a standby just started has opened its session). */
async function processes(db: TestDb, n: number): Promise<void> {
  await waitFor(
    `${n} node processes on the DB`,
    async () => new Set((await sessions(db)).map((s) => s.app)).size === n,
    60_000,
    200
  )
}

describe('status of a node across hosts', () => {
  test('each host sees every instance: its own container and the one on the other host, with role and version', async () => {
    const db = await createDb('hosts')
    const name = `${prefix}-st`
    try {
      const [h1, h2] = hosts
      await startNode({ name, tag: TAG, db, layout: 'bridge', api: h1.dockerd.api })
      await startNode({ name, tag: TAG, db, layout: 'bridge', api: h2.dockerd.api, noWait: true })
      await processes(db, 2)
      const r1 = await h1.run({ operation: 'status', container: name })
      expect({ exit: r1.exitCode, out: visible(r1.stdout).slice(-2000) }).toMatchObject({ exit: 0 })
      expect(r1.outputs['leader-host']).toBe('local')
      expect(r1.outputs.leader).toBe(name)
      expect(instancesOf(r1.outputs.instances)).toEqual([
        { host: 'local', role: 'leader', version: TAG, container: name },
        { host: 'remote', role: 'waiting', version: TAG, container: undefined }
      ])
      expect(r1.summary).toContain('Instances of the node')
      expect(r1.summary).toMatch(/another host \| - \| waiting standby/)
      const r2 = await h2.run({ operation: 'status', container: name })
      expect({ exit: r2.exitCode, out: visible(r2.stdout).slice(-2000) }).toMatchObject({ exit: 0 })
      expect(r2.outputs['leader-host']).toBe('remote')
      expect(r2.outputs['leader-app-id']).toBe(r1.outputs['leader-app-id'])
      expect(instancesOf(r2.outputs.instances)).toEqual([
        { host: 'remote', role: 'leader', version: TAG, container: undefined },
        { host: 'local', role: 'waiting', version: TAG, container: name }
      ])
    } finally {
      for (const h of hosts)
        await h.dockerd.api
          .getContainer(name)
          .remove({ force: true })
          .catch(() => undefined)
      await db.drop()
    }
  })
})
