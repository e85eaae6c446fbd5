// A rolling upgrade of one node across hosts (issue 22 item 3, docs/hosts.md, examples/ha.yml) on
// the bed of hosts: `upgrade` run by each host's runner, the standby hosts first, the leader's
// host last. Never two writers, no heartbeat pause beyond the handoff, every instance on the
// target at the end; a bad target ends with the old version leading on an un-migrated DB.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { createDb, simImage, uniqueName, type TestDb } from '../support/bed.js'
import {
  containersOf,
  dbVersionOf,
  nodeProcesses,
  startHosts,
  stopHosts,
  writerNow,
  type BedHost
} from '../support/hosts.js'
import { startNode, writers } from '../support/node.js'
import { atLine, visible, type ActionRun } from '../support/action.js'

const prefix = uniqueName('clr-hroll')
const OLD = '2.19.0'
const NEW = '2.20.0'
const BAD = '2.20.0-migrate-then-crash'
let hosts: BedHost[] = []

beforeAll(async () => {
  hosts = await startHosts(3, [OLD, NEW, BAD])
}, 400_000)
afterAll(async () => {
  await stopHosts(hosts, prefix)
}, 120_000)

const show = (r: ActionRun) =>
  `exit ${r.exitCode} ${JSON.stringify(r.outputs.result)}\n${visible(r.stdout).split('\n').slice(-40).join('\n')}`

/** One instance of the node per host, the first host's leading (on OLD). */
async function nodeOn(n: number, db: TestDb, name: string, restart = 'unless-stopped'): Promise<string> {
  await startNode({ name, tag: OLD, db, layout: 'bridge', api: hosts[0].dockerd.api, restart })
  const first = await writerNow(db, OLD)
  for (let i = 1; i < n; i++)
    await startNode({ name, tag: OLD, db, layout: 'bridge', api: hosts[i].dockerd.api, noWait: true, restart })
  await nodeProcesses(db, n)
  return first
}

const upgradeOn = (h: BedHost, name: string, tag: string, opts?: Parameters<BedHost['run']>[1]) =>
  h.run(
    {
      operation: 'upgrade',
      container: name,
      image: simImage(tag),
      'backup-dir': `${h.stateDir}/backups`,
      'stable-for': '3s'
    },
    opts
  )

async function cleanup(name: string, db: TestDb): Promise<void> {
  for (const h of hosts)
    for (const c of await h.dockerd.api.listContainers({ all: true }))
      if (c.Names.some((x) => x.replace(/^\//, '').startsWith(name)))
        await h.dockerd.api
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => undefined)
  await db.drop()
}

/** Every host ends with one container of the node, running `tag`; one leads, the rest wait. */
async function expectAllOn(n: number, name: string, tag: string): Promise<void> {
  expect(await containersOf(hosts.slice(0, n), name)).toEqual(
    hosts.slice(0, n).map((h) => ({ host: h.label, name, image: simImage(tag), running: true }))
  )
  const st = await hosts[0].run({ operation: 'status', container: name })
  expect(st.exitCode).toBe(0)
  const inst = (JSON.parse(st.outputs.instances) as { role: string; version: string }[]).map((x) => [x.role, x.version])
  expect(inst.filter(([r]) => r === 'leader')).toEqual([['leader', tag.split('-')[0]]])
  expect(inst.filter(([r]) => r === 'waiting')).toHaveLength(n - 1)
  expect(new Set(inst.map(([, v]) => v))).toEqual(new Set([tag.split('-')[0]]))
}

describe('a rolling upgrade across hosts', () => {
  test.each([2, 3])(
    'across %i hosts: standby hosts first, the leader last; the new version leads, every instance on it',
    async (n) => {
      const db = await createDb('hroll')
      const name = `${prefix}-ok${n}`
      try {
        const first = await nodeOn(n, db, name)
        const before = await dbVersionOf(db)
        for (let i = 1; i < n; i++) {
          const r = await upgradeOn(hosts[i], name, NEW)
          expect({ exit: r.exitCode, result: r.outputs.result, log: show(r) }).toMatchObject({
            exit: 0,
            result: 'upgraded'
          })
          expect(visible(r.stdout)).toMatch(/gate standby-ready: passed .*polls the lock and does not hold it/)
          expect(r.outputs['leader-host']).toBe('remote')
          // a waiting new version migrates nothing; the old one still leads
          expect(await dbVersionOf(db)).toEqual(before)
          expect(await writerNow(db, OLD)).toBe(first)
        }
        // the leader's host last: hand off to an upgraded standby, then its own instance recreated
        const r = await upgradeOn(hosts[0], name, NEW)
        expect({ exit: r.exitCode, result: r.outputs.result, log: show(r) }).toMatchObject({
          exit: 0,
          result: 'upgraded'
        })
        expect(r.outputs['leader-host']).toBe('remote')
        expect(r.outputs['backup-file']).toBeTruthy()
        const now = await writerNow(db, NEW)
        expect(r.outputs['leader-app-id']).toBe(now)
        expect((await dbVersionOf(db)).goose).toBeGreaterThan(before.goose)
        expect((await dbVersionOf(db)).node).toBe(NEW)
        await expectAllOn(n, name, NEW)
        const w = await writers(db)
        expect({ writers: w.writers, interleaved: w.interleaved }).toEqual({
          writers: [first, now],
          interleaved: false
        })
        process.stderr.write(`hosts rolling upgrade (${n} hosts): longest heartbeat gap ${w.maxGapMs} ms\n`)
        expect(w.maxGapMs).toBeLessThan(3000)
      } finally {
        await cleanup(name, db)
      }
    }
  )

  test('a bad target: the new leader crashes after migrating; the old version leads again on an un-migrated DB', async () => {
    const db = await createDb('hroll')
    const name = `${prefix}-bad`
    try {
      // restart policy no: a crashing new version must not be restarted onto the lock (docs/hosts.md)
      const first = await nodeOn(2, db, name, 'no')
      const before = await dbVersionOf(db)
      const s = await upgradeOn(hosts[1], name, BAD)
      expect({ exit: s.exitCode, result: s.outputs.result, log: show(s) }).toMatchObject({
        exit: 0,
        result: 'upgraded'
      })
      const r = await upgradeOn(hosts[0], name, BAD)
      expect({ exit: r.exitCode, result: r.outputs.result, log: show(r) }).toMatchObject({
        exit: 1,
        result: 'rolled-back'
      })
      expect(visible(r.stdout)).toMatch(
        /database: migrated by the new version \(goose 250 -> 256, node_versions 2\.19\.0 -> 2\.20\.0\)/
      )
      expect(visible(r.stdout)).toMatch(/database rolled back: goose 250, node_versions 2\.19\.0/)
      const again = await writerNow(db, OLD)
      expect(again).not.toBe(first)
      expect(await dbVersionOf(db)).toEqual(before)
      expect((await containersOf([hosts[0]], name)).map((c) => [c.name, c.image, c.running])).toEqual([
        [name, simImage(OLD), true]
      ])
      // the workflow's rollback job on the standby host: its instance back on the old image, waiting
      const back = await upgradeOn(hosts[1], name, OLD)
      expect({ exit: back.exitCode, result: back.outputs.result, log: show(back) }).toMatchObject({
        exit: 0,
        result: 'upgraded'
      })
      await expectAllOn(2, name, OLD)
      expect(await dbVersionOf(db)).toEqual(before)
      const w = await writers(db)
      // the bad version wrote no heartbeat (it crashed before serving): old, then old again
      expect({ writers: w.writers, interleaved: w.interleaved }).toEqual({
        writers: [first, again],
        interleaved: false
      })
    } finally {
      await cleanup(name, db)
    }
  })

  test.each([
    ['the leader host', 0, /^drain \S+ -> another host/],
    ['a standby host', 1, /^standby recreated/]
  ])('the runner of %s killed mid-way: repair, then the job again, ends on the new version', async (_, at, line) => {
    const db = await createDb('hroll')
    const name = `${prefix}-kill${at}`
    try {
      const first = await nodeOn(2, db, name)
      if (at === 0) {
        const s = await upgradeOn(hosts[1], name, NEW)
        expect({ exit: s.exitCode, log: show(s) }).toMatchObject({ exit: 0 })
      }
      const h = hosts[at]
      const k = await upgradeOn(h, name, NEW, { hooks: [{ when: atLine(line), do: 'sigkill', delayMs: 350 }] })
      expect({ killed: k.killed, fired: k.fired }).toEqual({ killed: true, fired: [true] })
      const rep = await h.run({ operation: 'repair', container: name, 'stable-for': '3s' })
      expect({ exit: rep.exitCode, log: show(rep) }).toMatchObject({ exit: 0 })
      // the workflow's job run again: whatever repair left, it goes on from there
      for (const i of at === 0 ? [0] : [1, 0]) {
        const r = await upgradeOn(hosts[i], name, NEW)
        expect({ exit: r.exitCode, result: r.outputs.result, log: show(r) }).toMatchObject({ exit: 0 })
      }
      await expectAllOn(2, name, NEW)
      const w = await writers(db)
      expect(w.writers[0]).toBe(first)
      expect(w.interleaved).toBe(false)
      expect(w.maxGapMs).toBeLessThan(3000)
    } finally {
      await cleanup(name, db)
    }
  })
})
