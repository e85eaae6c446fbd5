// operation: upgrade, end to end against the real bed, run as the runner runs the action.
// After every scenario: exactly one leader, serving, on the expected image, and the
// simulator's heartbeats show no second writer ever.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb, docker, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { runAction, visible, type ActionRun } from '../support/action.js'
import { containerState, nodeUrl, readyz, startNode, writers, type Layout } from '../support/node.js'

const prefix = uniqueName('clr-up')
let n = 0
let db: TestDb
let name: string
let stateDir: string

beforeAll(() => undefined)
afterAll(async () => {
  await removeContainers(prefix)
})

async function fresh(layout: Layout, tag = '2.18.0', opts: Partial<Parameters<typeof startNode>[0]> = {}) {
  db = await createDb('up')
  name = `${prefix}-${++n}`
  stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
  await startNode({ name, tag, db, layout, ...opts })
}

afterEach(async () => {
  await removeContainers(name)
  await db?.drop()
})

function upgrade(tag: string, extra: Record<string, string> = {}, runOpts = {}): Promise<ActionRun> {
  return runAction({ operation: 'upgrade', container: name, image: simImage(tag), 'state-dir': stateDir, 'backup-dir': join(stateDir, 'backups'), 'stable-for': '2s', ...extra }, runOpts)
}

/** The node ended with one leader, named as before, serving on `tag`, and nothing else of ours left. */
async function expectSingleLeader(tag: string) {
  const st = await containerState(name)
  expect(st?.running).toBe(true)
  expect(st?.image).toBe(simImage(tag))
  expect(await readyz((await nodeUrl(name))!)).toBe(200)
  const others = (await docker.listContainers({ all: true })).filter((c) => c.Names.some((x) => x.startsWith(`/${name}-`)))
  expect(others.map((c) => c.Names[0])).toEqual([])
  const w = await writers(db)
  expect(w.interleaved).toBe(false)
  return w
}

describe('upgrade, happy path', () => {
  test.each<[Layout]>([['ports'], ['host'], ['bridge']])('%s layout: 2.18.0 -> 2.19.0 with one leader throughout', async (layout) => {
    await fresh(layout)
    const before = await containerState(name)
    const r = await upgrade('2.19.0')
    expect(visible(r.stdout)).not.toContain('bed-test-password')
    expect(r.outputs.result).toBe('upgraded')
    expect(r.exitCode).toBe(0)
    expect(r.outputs['previous-image']).toBe(simImage('2.18.0'))
    expect(r.outputs.image).toMatch(new RegExp(`chainlink:2\\.19\\.0@sha256:[0-9a-f]{64}$`))
    expect(r.outputs.leader).toBe(name)
    expect(Number(r.outputs['leader-gap-ms'])).toBeGreaterThan(0)
    expect(r.outputs['backup-file']).toMatch(/chainlink-rollout-.*pre-upgrade/)
    const w = await expectSingleLeader('2.19.0')
    expect(w.versions).toEqual(layout === 'ports' ? ['2.18.0', '2.19.0', '2.19.0'] : ['2.18.0', '2.19.0'])
    expect((await containerState(name))!.id).not.toBe(before!.id)
    expect(r.summary).toMatch(/### Handoffs/)
    expect(r.summary).toMatch(/lock-handoff \| passed/)
    if (layout === 'ports') {
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
