// operation: upgrade, end to end against the real bed, run as the runner runs the action.
// After every scenario: exactly one leader, serving, on the expected image, and the
// simulator's heartbeats show no second writer ever.
import { describe, expect, test } from '@jest/globals'
import { join } from 'node:path'
import { docker, simImage, type TestDb } from '../support/bed.js'
import { runAction, visible, type ActionRun, type RunOptions } from '../support/action.js'
import { containerState, readyz, writers, type Layout, type StartOptions } from '../support/node.js'
import { expectServing, oneNodePerTest, upgradeNode } from '../support/one-node.js'

const one = oneNodePerTest('clr-up', 'up')
let db: TestDb
let name: string
let stateDir: string

async function fresh(layout: Layout, tag = '2.18.0', opts: Partial<StartOptions> = {}) {
  ;({ db, name, stateDir } = await one.fresh({ tag, layout, ...opts }))
}

const upgrade = (tag: string, extra: Record<string, string> = {}, runOpts: RunOptions = {}): Promise<ActionRun> =>
  upgradeNode({ name, stateDir }, tag, extra, runOpts)

/** The node ended with one leader, named as before, serving on `tag`, and nothing else of ours left. */
const expectSingleLeader = (tag: string) => expectServing({ name, db }, tag)

describe('upgrade, happy path', () => {
  test.each<[Layout, string]>([
    ['ports', 'swap'],
    ['ports', 'second-handoff'],
    ['host', 'swap'],
    ['bridge', 'swap']
  ])('%s layout (finish: %s): 2.18.0 -> 2.19.0 with one leader throughout', async (layout, finish) => {
    await fresh(layout)
    const before = await containerState(name)
    const r = await upgrade('2.19.0', { finish })
    expect(visible(r.stdout)).not.toContain('bed-test-password')
    expect(r.outputs.result).toBe('upgraded')
    expect(r.exitCode).toBe(0)
    expect(r.outputs['previous-image']).toBe(simImage('2.18.0'))
    expect(r.outputs.image).toMatch(new RegExp(`chainlink:2\\.19\\.0@sha256:[0-9a-f]{64}$`))
    expect(r.outputs.leader).toBe(name)
    expect(Number(r.outputs['leader-gap-ms'])).toBeGreaterThan(0)
    expect(r.outputs['backup-file']).toMatch(/chainlink-rollout-.*pre-upgrade/)
    const w = await expectSingleLeader('2.19.0')
    // the docs layout finished by a second handoff has an interim leader on spare ports
    expect(w.versions).toEqual(finish === 'second-handoff' ? ['2.18.0', '2.19.0', '2.19.0'] : ['2.18.0', '2.19.0'])
    expect((await containerState(name))!.id).not.toBe(before!.id)
    expect(r.summary).toMatch(/### Handoffs/)
    expect(r.summary).toMatch(/lock-handoff \| passed/)
    if (layout === 'ports') {
      // the outage clients of the published port saw is measured and reported
      expect(r.summary).toMatch(/Published port \| http:\/\/127\.0\.0\.1:\d+: longest time without a ready answer/)
      // the original host port still serves the node
      const info = await docker.getContainer(name).inspect()
      expect(info.HostConfig.PortBindings?.['6688/tcp']?.[0]).toMatchObject({ HostIp: '127.0.0.1' })
      const port = info.HostConfig.PortBindings['6688/tcp'][0].HostPort
      expect(await readyz(`http://127.0.0.1:${port}`)).toBe(200)
    }
  })
})

describe('upgrade, no change', () => {
  test('same image: unchanged, nothing restarted', async () => {
    await fresh('bridge', '2.19.0')
    const before = await containerState(name)
    const r = await upgrade('2.19.0')
    expect(r.exitCode).toBe(0)
    expect(r.outputs.result).toBe('unchanged')
    const after = await containerState(name)
    expect(after).toEqual(before)
    expect((await writers(db)).writers.length).toBe(1)
  })

  test('dry-run: planned, nothing changed', async () => {
    await fresh('ports', '2.18.0')
    const before = await containerState(name)
    const r = await upgrade('2.19.0', { 'dry-run': 'true' })
    expect(r.exitCode).toBe(0)
    expect(r.outputs.result).toBe('planned')
    expect(r.summary).toMatch(/Plan/)
    expect(await containerState(name)).toEqual(before)
  })
})

describe('upgrade, faults', () => {
  test('new image crashes before the lock: standby removed, leader never touched', async () => {
    await fresh('ports')
    const before = await containerState(name)
    const r = await upgrade('2.20.0-crash-before-lock')
    expect(r.exitCode).toBe(1)
    expect(r.outputs.result).toBe('failed')
    expect(visible(r.stdout)).toMatch(/::error::.*standby/)
    expect(await containerState(name)).toEqual(before)
    const w = await expectSingleLeader('2.18.0')
    expect(w.writers.length).toBe(1)
    expect(r.summary).toMatch(/Last log lines of/)
  })

  test('new image never becomes ready: rolled back, DB brought back, old version serves', async () => {
    await fresh('bridge')
    const c = await db.client()
    const dbBefore = (await c.query(`SELECT max(version_id)::int AS v FROM goose_migrations WHERE is_applied`)).rows[0]
      .v
    await c.end()
    const r = await upgrade('2.20.0-never-ready', { 'ready-timeout': '8s' })
    expect(r.outputs.result).toBe('rolled-back')
    expect(r.exitCode).toBe(1)
    const w = await expectSingleLeader('2.18.0')
    expect(w.versions[0]).toBe('2.18.0')
    expect(w.versions.at(-1)).toBe('2.18.0')
    const c2 = await db.client()
    const after = (await c2.query(`SELECT max(version_id)::int AS v FROM goose_migrations WHERE is_applied`)).rows[0].v
    const nv = (await c2.query(`SELECT version FROM node_versions`)).rows.map((x) => x.version)
    await c2.end()
    expect(after).toBe(dbBefore)
    expect(nv).toEqual(['2.18.0'])
    expect(r.summary).toMatch(/database rolled back/)
  })

  test('new image migrates then crashes (docs layout): rolled back by restoring the backup', async () => {
    await fresh('ports')
    const r = await upgrade('2.20.0-migrate-then-crash', { 'db-rollback': 'restore' })
    expect(r.outputs.result).toBe('rolled-back')
    expect(r.exitCode).toBe(1)
    await expectSingleLeader('2.18.0')
    expect(r.summary).toMatch(/restored from the pre-upgrade backup/)
  })

  test('old leader ignores SIGTERM: killed after stop-timeout, lease expires, upgrade completes', async () => {
    await fresh('bridge', '2.18.0', { env: { SIM_FAULT: 'ignore-sigterm' } })
    const r = await upgrade('2.19.0', { 'stop-timeout': '2s' })
    expect(r.outputs.result).toBe('upgraded')
    expect(r.exitCode).toBe(0)
    expect(r.summary).toMatch(/killed/)
    const w = await expectSingleLeader('2.19.0')
    // the standby waited for the lease (3 s in these tests) to run out
    expect(w.maxGapMs).toBeGreaterThan(2000)
  })

  test.each([
    ['a tag missing from the registry', { image: simImage('9.9.9') }, /cannot pull/],
    [
      'a digest the registry does not serve',
      { image: `${simImage('2.19.0')}@sha256:${'0'.repeat(64)}` },
      /cannot pull|digest mismatch/
    ],
    ['a malformed reference', { image: 'Bad Image::x' }, /Input 'image'/],
    ['a malformed duration', { 'stable-for': '10 parsecs' }, /Input 'stable-for'/],
    ['an unknown container', { container: 'clr-nope' }, /no container named 'clr-nope'/]
  ])('refused in preflight, nothing changed: %s', async (_what, inputs, message) => {
    await fresh('bridge')
    const before = await containerState(name)
    const r = await runAction({
      operation: 'upgrade',
      container: name,
      image: simImage('2.19.0'),
      'state-dir': stateDir,
      'backup-dir': join(stateDir, 'backups'),
      ...inputs
    })
    expect(r.exitCode).toBe(1)
    expect(visible(r.stdout)).toMatch(message)
    expect(await containerState(name)).toEqual(before)
    expect(
      (await docker.listContainers({ all: true })).filter((c) => c.Names.some((x) => x.startsWith(`/${name}-`)))
    ).toEqual([])
  })
})

describe('upgrade, interruptions', () => {
  test('cancelled after the standby started: the post step puts the node back', async () => {
    await fresh('ports')
    const r = await upgrade('2.19.0', {}, { cancelWhen: (out: string) => out.includes('standby started') })
    expect(r.stdout).toMatch(/SIGINT received/)
    expect(r.stdout).toMatch(/--- post ---[\s\S]*repair/)
    const st = await containerState(name)
    expect(st?.running).toBe(true)
    // either finished or undone, but consistent: one leader named as before, nothing left over
    await expectSingleLeader(st!.image.endsWith('2.19.0') ? '2.19.0' : '2.18.0')
  })

  test('runner killed mid-run: operation repair brings the node to one state', async () => {
    await fresh('ports')
    // no post step: the runner died with main
    await upgrade(
      '2.19.0',
      {},
      { post: false, cancelSignal: 'SIGKILL', cancelWhen: (out: string) => /^(handoff|swap) \S+ -> /m.test(out) }
    )
    const again = await upgrade('2.19.0')
    expect(again.exitCode).toBe(1)
    expect(visible(again.stdout)).toMatch(/run operation 'repair' first/)
    const r = await runAction({ operation: 'repair', container: name, 'state-dir': stateDir })
    // finished (upgraded) or undone before the handoff (ok) exit 0; a rollback fails the job
    expect(r.exitCode).toBe(r.outputs.result === 'rolled-back' ? 1 : 0)
    expect(['upgraded', 'ok', 'rolled-back']).toContain(r.outputs.result)
    const st = await containerState(name)
    await expectSingleLeader(st!.image.endsWith('2.19.0') ? '2.19.0' : '2.18.0')
  })

  test('two runs at once: the second waits for the host lock, then finds nothing to do', async () => {
    await fresh('bridge')
    const [a, b] = await Promise.all([
      upgrade('2.19.0'),
      new Promise((r) => setTimeout(r, 300)).then(() => upgrade('2.19.0'))
    ])
    const results = [a.outputs.result, b.outputs.result].sort()
    expect(results).toEqual(['unchanged', 'upgraded'])
    expect(b.stdout + a.stdout).toMatch(/Waiting for the host lock/)
    await expectSingleLeader('2.19.0')
  })
})
