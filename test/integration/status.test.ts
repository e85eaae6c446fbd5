// operation: status against a real simulated node, run as the runner runs the action.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb, removeContainers, uniqueName, waitFor, type TestDb } from '../support/bed.js'
import { runAction, visible } from '../support/action.js'
import { startNode } from '../support/node.js'

const prefix = uniqueName('clr-status')
let db: TestDb
const stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))

beforeAll(async () => {
  db = await createDb('status')
})
afterAll(async () => {
  await removeContainers(prefix)
  await db.drop()
})

describe('status', () => {
  test('names the leader of a node and its waiting standby, with lock, versions and health', async () => {
    // a retry of this test starts over: containers of a failed try are gone first
    await removeContainers(`${prefix}-`)
    await startNode({ name: `${prefix}-a`, tag: '2.19.0', db })
    await startNode({ name: `${prefix}-b`, tag: '2.19.0', db, noWait: true })
    // the standby waits for the lock once it has its DB session: two node apps on the DB
    // (on a loaded host its boot can outlast the start of the status run)
    await waitFor(
      'the standby waiting with a DB session',
      async () => {
        const c = await db.client()
        try {
          const q = await c.query(
            "SELECT count(DISTINCT application_name) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'Chainlink%'",
            [db.name]
          )
          return Number(q.rows[0].n) >= 2
        } finally {
          await c.end()
        }
      },
      60_000,
      200
    )
    const r = await runAction({
      operation: 'status',
      container: `${prefix}-b`,
      standby: `${prefix}-a`,
      'state-dir': stateDir
    })
    expect(r.exitCode).toBe(0)
    expect(r.outputs.result).toBe('ok')
    expect(r.outputs.leader).toBe(`${prefix}-a`)
    expect(r.outputs.image).toMatch(/smartcontract\/chainlink:2\.19\.0@sha256:[0-9a-f]{64}$/)
    expect(r.summary).toContain('| leader |')
    expect(r.summary).toMatch(/standby \(waiting for the lock\)/)
    expect(r.summary).toMatch(/mode lease/)
    // the DB password never appears anywhere the runner keeps
    expect(visible(r.stdout) + r.summary + JSON.stringify(r.outputs)).not.toContain('bed-test-password')
  })

  test('derives the DB URL from a mounted v2 secrets TOML', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clr-toml-'))
    writeFileSync(join(dir, 'config.toml'), "[Database.Lock]\nLeaseDuration = '4s'\nLeaseRefreshInterval = '500ms'\n")
    const db2 = await createDb('status2')
    writeFileSync(join(dir, 'secrets.toml'), `[Database]\nURL = '${db2.bridgeUrl}'\n`)
    // the node runs as its own user (uid 14933 in release images), as the real one does
    chmodSync(dir, 0o755)
    for (const f of ['config.toml', 'secrets.toml']) chmodSync(join(dir, f), 0o644)
    try {
      await startNode({
        name: `${prefix}-toml`,
        tag: '2.20.0',
        db: db2,
        // the lease settings come from config.toml alone (blank variables: no CL_CONFIG added)
        env: { CL_DATABASE_URL: '', LEASE_LOCK_DURATION: '', LEASE_LOCK_REFRESH_INTERVAL: '' },
        binds: [`${dir}:/chainlink`],
        cmd: ['node', '-config', '/chainlink/config.toml', '-secrets', '/chainlink/secrets.toml', 'start']
      })
      const r = await runAction({ operation: 'status', container: `${prefix}-toml`, 'state-dir': stateDir })
      expect(r.exitCode).toBe(0)
      expect(r.outputs.leader).toBe(`${prefix}-toml`)
      expect(r.summary).toMatch(/duration 4000 ms, refresh 500 ms/)
    } finally {
      await removeContainers(`${prefix}-toml`)
      await db2.drop()
    }
  })

  test.each([
    ['an unknown container', { container: 'clr-no-such-container' }, /no container named 'clr-no-such-container'/],
    [
      'an unreachable database',
      { 'database-url': 'postgres://u:pw-unreachable@127.0.0.1:1/x' },
      /cannot connect to the node's database/
    ]
  ])('fails clearly on %s', async (_what, inputs, message) => {
    const r = await runAction({ operation: 'status', container: `${prefix}-a`, 'state-dir': stateDir, ...inputs })
    expect(r.exitCode).toBe(1)
    expect(visible(r.stdout)).toMatch(/::error::/)
    expect(r.stdout).toMatch(message)
    expect(visible(r.stdout)).not.toContain('pw-unreachable')
  })

  test('a database with no lock table is an error', async () => {
    const empty = await createDb('nolock')
    try {
      const r = await runAction({
        operation: 'status',
        container: `${prefix}-a`,
        'database-url': empty.url,
        'state-dir': stateDir
      })
      expect(r.exitCode).toBe(1)
      expect(r.stdout).toMatch(/no lease_lock table/)
    } finally {
      await empty.drop()
    }
  })
})
