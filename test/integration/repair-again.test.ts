// A way forward after a failed repair, run as the runner runs the action against the real bed:
// an upgrade whose runner is killed mid-run leaves an open journal; a repair that fails (its
// database unreachable: 'database-url' names a port where nothing listens) leaves the journal
// open and `status` shows it with where each container of the run is; once the cause is gone,
// `repair` run again ends with one leader serving and no open journal.
import { afterAll, afterEach, describe, expect, test } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb, docker, loadBed, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { runAction, visible } from '../support/action.js'
import { containerState, nodeUrl, readyz, startNode, writers } from '../support/node.js'
import { freePort } from '../../src/docker/client.js'

const prefix = uniqueName('clr-rpa')
let db: TestDb | undefined
let name: string
let stateDir: string

afterEach(async () => {
  await removeContainers(name)
  await db?.drop()
  db = undefined
})
afterAll(async () => {
  await removeContainers(prefix)
})

/** Every container of ours for the node (its name, or its name with a suffix): name -> state. */
async function ours(): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const c of await docker.listContainers({ all: true }))
    for (const n of c.Names.map((x) => x.replace(/^\//, '')))
      if (n === name || n.startsWith(`${name}-`)) out[n] = c.State
  return out
}

describe('a failed repair leaves a way forward', () => {
  test('the DB unreachable during repair: status shows the open journal and each container; repair again ends consistent', async () => {
    db = await createDb('rpa')
    name = `${prefix}-1`
    stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
    await startNode({ name, tag: '2.18.0', db, layout: 'ports' })
    const common = { container: name, 'state-dir': stateDir, 'backup-dir': join(stateDir, 'backups') }
    // the runner dies mid-run with no post step
    await runAction(
      { ...common, operation: 'upgrade', image: simImage('2.19.0'), 'stable-for': '2s' },
      { post: false, cancelSignal: 'SIGKILL', cancelWhen: (out: string) => /^(handoff|swap) \S+ -> /m.test(out) }
    )

    const bed = loadBed()
    const deadPort = await freePort('127.0.0.1')
    const unreachable = `postgres://${bed.pg.user}:${encodeURIComponent(bed.pg.password)}@127.0.0.1:${deadPort}/${db.name}?sslmode=disable&connect_timeout=2`
    const failed = await runAction({ ...common, operation: 'repair', 'database-url': unreachable })
    expect(failed.exitCode).toBe(1)
    expect(visible(failed.stdout)).toMatch(/::error::.*cannot connect to the node's database/)
    expect(visible(failed.stdout) + failed.summary).not.toContain(bed.pg.password)

    // status: the open journal first, and every container of the run where it is
    const st = await runAction({ ...common, operation: 'status' })
    expect(st.summary).toMatch(/Open journal.*upgrade run \S+ started/)
    expect(st.summary).toMatch(/Containers of the interrupted run/)
    expect(st.summary).toMatch(/run operation 'repair' \(again, once the cause is fixed\)/)
    const now = await ours()
    expect(Object.keys(now).length).toBeGreaterThan(0)
    for (const [n, state] of Object.entries(now))
      expect(st.summary).toMatch(new RegExp(`\\| ${n} \\|[^\\n]*\\| ${state}`))

    // an upgrade is still refused: the journal is open
    const refused = await runAction({ ...common, operation: 'upgrade', image: simImage('2.19.0'), 'stable-for': '2s' })
    expect(refused.exitCode).toBe(1)
    expect(visible(refused.stdout)).toMatch(/run operation 'repair' first/)

    // the cause fixed (the node's own database URL again): repair again ends consistent
    const r = await runAction({ ...common, operation: 'repair' })
    expect(['upgraded', 'ok', 'rolled-back']).toContain(r.outputs.result)
    expect(r.exitCode).toBe(r.outputs.result === 'rolled-back' ? 1 : 0)
    const leader = await containerState(name)
    expect(leader?.running).toBe(true)
    expect(await readyz((await nodeUrl(name))!)).toBe(200)
    expect(Object.keys(await ours())).toEqual([name])
    expect((await writers(db)).interleaved).toBe(false)
    const after = await runAction({ ...common, operation: 'status' })
    expect(after.summary).not.toMatch(/Open journal/)
    // and the node takes the next upgrade again
    const next = await runAction({ ...common, operation: 'upgrade', image: simImage('2.19.0'), 'stable-for': '2s' })
    expect(['upgraded', 'unchanged']).toContain(next.outputs.result)
    expect(next.exitCode).toBe(0)
  })
})

describe('repair with nothing in flight tells the truth about the node', () => {
  test('the node container stopped (a daemon restart starts none): exit 1, the container named and how to start it; nothing started behind the operator', async () => {
    db = await createDb('rpd')
    name = `${prefix}-2`
    stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
    await startNode({ name, tag: '2.18.0', db, layout: 'ports' })
    await docker.getContainer(name).stop({ t: 10 })
    const r = await runAction({ container: name, 'state-dir': stateDir, operation: 'repair' })
    expect(r.exitCode).toBe(1)
    expect(r.outputs.result).toBe('failed')
    expect(visible(r.stdout)).toMatch(new RegExp(`::error::.*'${name}' is not running.*docker start ${name}`))
    expect(r.summary).toContain(`'${name}' is not running`)
    // the operator's stop is theirs: repair starts nothing it did not stop
    expect((await containerState(name))?.running).toBe(false)
  })
})
