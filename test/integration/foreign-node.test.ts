// Another node on the node's database, one the inputs do not name (docs/algorithm.md §1): the
// docs' failover secondary running but not given as `standby`, or a node on another host that
// only its DB session shows. It is decided about before anything stops: the upgrade is refused,
// naming it, with nothing changed and no journal left; a rollback that would hand it the lease
// refuses before it stops anything. Run as the runner runs the action, against the real bed.
import { afterAll, afterEach, describe, expect, test } from '@jest/globals'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createDb, docker, removeContainers, simImage, uniqueName, waitFor, type TestDb } from '../support/bed.js'
import { atLine, runAction, visible, type ActionRun } from '../support/action.js'
import { containerState, readyz, startNode, writers, type SimNode } from '../support/node.js'
import { freePort } from '../../src/docker/client.js'

const prefix = uniqueName('clr-foreign')
let n = 0
let db: TestDb | undefined
let name: string
let stateDir: string
const processes: ChildProcess[] = []

afterAll(async () => {
  await removeContainers(prefix)
})

afterEach(async () => {
  for (const p of processes.splice(0)) if (p.exitCode === null && p.pid) process.kill(p.pid, 'SIGKILL')
  await removeContainers(name)
  await db?.drop()
  db = undefined
})

/** The node in the docs' layout (6688 published), on a fresh DB. */
async function fresh(env: Record<string, string> = {}): Promise<SimNode> {
  db = await createDb('foreign')
  name = `${prefix}-${++n}`
  stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
  return startNode({ name, tag: '2.18.0', db, layout: 'ports', env })
}

const inputs = (extra: Record<string, string> = {}) => ({
  container: name,
  'state-dir': stateDir,
  'backup-dir': join(stateDir, 'backups'),
  'stable-for': '2s',
  ...extra
})

/** Node processes on the DB: app id and version from application_name, client address. */
async function nodeApps(): Promise<Array<{ app: string; version: string; addr: string | null }>> {
  const c = await db!.client()
  try {
    const rows = (
      await c.query<{ application_name: string; addr: string | null }>(
        `SELECT DISTINCT application_name, host(client_addr) AS addr FROM pg_stat_activity
          WHERE datname = current_database() AND application_name LIKE 'Chainlink %|App|%'`
      )
    ).rows
    return rows.map((r) => {
      const m = /^Chainlink (\S+) \|App\|(.+)$/.exec(r.application_name)!
      return { app: m[2], version: m[1], addr: r.addr }
    })
  } finally {
    await c.end()
  }
}

/** Waits until `count` node processes have DB sessions. */
async function waitApps(count: number): Promise<void> {
  await waitFor(`${count} node processes on the DB`, async () => (await nodeApps()).length >= count, 20000, 200)
}

/**
 * A node that is not a container at all: the simulator as a plain process on this host, a
 * waiting standby of the same DB, as a node on another host looks to the action (a DB session,
 * an address, an app id and a version, and no container of this Docker host).
 */
async function startHostNode(version: string): Promise<ChildProcess> {
  const port = await freePort('127.0.0.1')
  const child = spawn(process.execPath, [resolve(import.meta.dirname, '../node-sim/chainlink.js'), 'node', 'start'], {
    env: {
      PATH: process.env.PATH ?? '',
      SIM_VERSION: version,
      CL_DATABASE_URL: db!.url,
      CL_CONFIG: `[Database.Lock]\nLeaseDuration = '3s'\nLeaseRefreshInterval = '500ms'\n[WebServer]\nHTTPPort = ${port}\n`
    },
    stdio: 'ignore'
  })
  processes.push(child)
  return child
}

/** Polls /readyz of the published port while `run` goes; every answer that was not 200. */
async function servedThroughout(
  url: string,
  run: () => Promise<ActionRun>
): Promise<{ r: ActionRun; misses: string[] }> {
  const misses: string[] = []
  let done = false
  const poll = (async () => {
    while (!done) {
      const s = await readyz(url)
      if (s !== 200) misses.push(`${new Date().toISOString()} ${s ?? 'no answer'}`)
      await new Promise((r) => setTimeout(r, 200))
    }
  })()
  try {
    return { r: await run(), misses }
  } finally {
    done = true
    await poll
  }
}

const errorLines = (r: ActionRun) =>
  visible(r.stdout)
    .split('\n')
    .filter((l) => l.startsWith('::error::'))

/** Nothing on the host changed: the leader the same container, serving, alone; no run containers, no journal. */
async function expectUntouched(leaderId: string, leaderApp: string) {
  const st = await containerState(name)
  expect(st).toEqual({ id: leaderId, running: true, image: simImage('2.18.0') })
  const ours = (await docker.listContainers({ all: true }))
    .flatMap((c) => c.Names.map((x) => x.replace(/^\//, '')))
    .filter((x) => x.startsWith(`${name}-rollout`))
  expect(ours).toEqual([])
  expect(readdirSync(stateDir).filter((f) => f.endsWith('.journal.json'))).toEqual([])
  const w = await writers(db!)
  expect(w.writers).toEqual([leaderApp])
  expect(w.maxGapMs).toBeLessThan(1000)
  // the next status is clean: no open journal
  const s = await runAction({ operation: 'status', ...inputs() })
  expect(s.exitCode).toBe(0)
  expect(visible(s.stdout)).not.toMatch(/Open journal|still open/)
}

describe('another node on the database, not named: the upgrade is refused before anything stops', () => {
  test("the docs' failover secondary running but not given as standby (ports layout, swap): refused naming its container", async () => {
    const node = await fresh()
    const leaderId = (await containerState(name))!.id
    const [leaderApp] = (await nodeApps()).map((a) => a.app)
    const secondary = `${name}-secondary`
    await startNode({ name: secondary, tag: '2.18.0', db: db!, layout: 'ports', noWait: true })
    await waitApps(2)
    const { r, misses } = await servedThroughout(`http://127.0.0.1:${node.port}`, () =>
      runAction({ operation: 'upgrade', image: simImage('2.19.0'), ...inputs() })
    )
    expect(r.exitCode).toBe(1)
    const err = errorLines(r)[0]
    expect(err).toMatch(
      new RegExp(`container '${secondary}' on this host \\(app [0-9a-f-]{8,}, Chainlink 2\\.18\\.0\\)`)
    )
    expect(err).toMatch(/nothing was changed\. Name '.*-secondary' as input 'standby'/)
    expect(misses).toEqual([])
    await expectUntouched(leaderId, leaderApp)
    // the secondary still waits, never handed the lease
    expect((await containerState(secondary))?.running).toBe(true)
  })

  test('a node seen only by its DB session (not a container of this host): refused naming address, app id and version', async () => {
    const node = await fresh()
    const leaderId = (await containerState(name))!.id
    const [leaderApp] = (await nodeApps()).map((a) => a.app)
    await startHostNode('2.18.0')
    await waitApps(2)
    const other = (await nodeApps()).find((a) => a.app !== leaderApp)!
    const { r, misses } = await servedThroughout(`http://127.0.0.1:${node.port}`, () =>
      runAction({ operation: 'upgrade', image: simImage('2.19.0'), ...inputs() })
    )
    expect(r.exitCode).toBe(1)
    const err = errorLines(r)[0]
    expect(err).toContain(`app ${other.app}, Chainlink 2.18.0, connected from ${other.addr}`)
    expect(err).toMatch(/no container on this host is proven to run/)
    expect(err).toMatch(/nothing was changed\. Stop that node/)
    expect(misses).toEqual([])
    await expectUntouched(leaderId, leaderApp)
  })
})

describe('a node that appears after preflight: the rollback decides before it stops anything', () => {
  test('started after the handoff, the new image failing its gate: refused before any stop, the new container left running; repair finishes once it is gone', async () => {
    // the new image leads but never turns ready: its health gate fails at ready-timeout
    const node = await fresh()
    let foreign: ChildProcess | undefined
    let foreignApp: { app: string; addr: string | null } | undefined
    const r = await runAction(
      { operation: 'upgrade', image: simImage('2.20.0-never-ready'), ...inputs({ 'ready-timeout': '20s' }) },
      {
        hooks: [
          {
            when: atLine('gate lock-handoff: passed'),
            do: async () => {
              const before = new Set((await nodeApps()).map((a) => a.app))
              foreign = await startHostNode('2.18.0')
              await waitFor(
                'the foreign node on the DB',
                async () => (foreignApp = (await nodeApps()).find((a) => !before.has(a.app))),
                10000,
                100
              )
            }
          }
        ],
        deadlineMs: 150_000
      }
    )
    await r.faultsDone
    expect(foreignApp).toBeDefined()
    expect(r.exitCode).toBe(1)
    const out = visible(r.stdout)
    const err = errorLines(r)[0]
    expect(err).toMatch(/refusing to roll back: another node runs on this database/)
    expect(err).toContain(`app ${foreignApp!.app}, Chainlink 2.18.0, connected from ${foreignApp!.addr}`)
    expect(err).toMatch(new RegExp(`Nothing was stopped: '${name}' still runs`))
    expect(err).toMatch(/Stop that node, then run operation 'repair'/)
    // nothing was stopped by the rollback: no stop step after it, the new leader still runs
    expect(out.slice(out.indexOf('rollback: '))).not.toMatch(/^stop /m)
    const st = await containerState(name)
    expect(st?.running).toBe(true)
    expect(st?.image).toBe(simImage('2.20.0-never-ready'))
    expect((await writers(db!)).interleaved).toBe(false)
    // what the message says to do works: the other node stopped, repair rolls back
    process.kill(foreign!.pid!, 'SIGTERM')
    await waitFor(
      'the foreign node gone',
      async () => foreign!.exitCode !== null || foreign!.signalCode !== null,
      10000,
      100
    )
    const rep = await runAction({ operation: 'repair', ...inputs() }, { deadlineMs: 150_000 })
    expect(rep.outputs.result).toBe('rolled-back')
    const after = await containerState(name)
    expect(after?.running).toBe(true)
    expect(after?.image).toBe(simImage('2.18.0'))
    expect(await readyz(`http://127.0.0.1:${node.port}`)).toBe(200)
    expect((await writers(db!)).interleaved).toBe(false)
  })
})
