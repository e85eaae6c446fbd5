// One node across several hosts (issue 22, docs/hosts.md) on a bed of hosts: dedicated Docker
// daemons sharing the bed's Postgres (test/support/hosts.ts), the action run as each host's
// runner runs it. Never two writers, and no heartbeat pause beyond the handoff.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { createDb, uniqueName, waitFor, type TestDb } from '../support/bed.js'
import { startHosts, stopHosts, type BedHost } from '../support/hosts.js'
import { startNode } from '../support/node.js'

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
