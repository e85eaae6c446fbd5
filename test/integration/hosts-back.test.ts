// The way back from a bad target in a rolling upgrade across hosts (issue 22 item 3, docs/hosts.md
// "A bad target", examples/ha.yml's rollback jobs) with the restart policy operators run their
// node with (`unless-stopped` on every instance): a new version that migrates and crashes is
// restarted by its host's Docker and takes the lock again, which only its own host's runner can
// stop. The operator's steps, each as that host's runner runs them: the leader host's job fails
// and says where to go; the rollback job (upgrade to the previous image on every host, in the
// matrix's order) ends with the old version leading on an un-migrated DB and every instance on
// the previous image, waiting or leading. Never two writers.
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
import { visible, type ActionRun } from '../support/action.js'

const prefix = uniqueName('clr-hback')
const OLD = '2.19.0'
const BAD = '2.20.0-migrate-then-crash'
const CRASH = '2.20.0-crash-before-lock'
let hosts: BedHost[] = []

beforeAll(async () => {
  hosts = await startHosts(2, [OLD, BAD, CRASH])
}, 400_000)
afterAll(async () => {
  await stopHosts(hosts, prefix)
}, 120_000)

const show = (r: ActionRun) =>
  `exit ${r.exitCode} ${JSON.stringify(r.outputs.result)}\n${visible(r.stdout).split('\n').slice(-40).join('\n')}`

async function nodeOn(db: TestDb, name: string): Promise<string> {
  await startNode({ name, tag: OLD, db, layout: 'bridge', api: hosts[0].dockerd.api, restart: 'unless-stopped' })
  const first = await writerNow(db, OLD)
  await startNode({
    name,
    tag: OLD,
    db,
    layout: 'bridge',
    api: hosts[1].dockerd.api,
    noWait: true,
    restart: 'unless-stopped'
  })
  await nodeProcesses(db, 2)
  return first
}

const upgradeOn = (h: BedHost, name: string, tag: string) =>
  h.run({
    operation: 'upgrade',
    container: name,
    image: simImage(tag),
    'backup-dir': `${h.stateDir}/backups`,
    'stable-for': '3s'
  })

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

/** What `status` shows from the first host: [role, version] of every instance. */
async function roles(name: string): Promise<string[][]> {
  const st = await hosts[0].run({ operation: 'status', container: name })
  expect({ exit: st.exitCode, log: show(st) }).toMatchObject({ exit: 0 })
  return (JSON.parse(st.outputs.instances) as { role: string; version: string; host: string }[])
    .map((x) => [x.role, x.version])
    .sort()
}

const policyOf = async (h: BedHost, name: string) =>
  (await h.dockerd.api.getContainer(name).inspect()).HostConfig.RestartPolicy?.Name

describe('a rolling upgrade across hosts, the way back with restart policy unless-stopped', () => {
  test('a bad target that migrates and crashes, restarted by its host: the rollback job ends with the old version leading on an un-migrated DB', async () => {
    const db = await createDb('hback')
    const name = `${prefix}-bad`
    try {
      const first = await nodeOn(db, name)
      const before = await dbVersionOf(db)
      // the workflow's standby-hosts job: h2's instance waits on the bad target (it migrates nothing)
      const s = await upgradeOn(hosts[1], name, BAD)
      expect({ exit: s.exitCode, result: s.outputs.result, log: show(s) }).toMatchObject({
        exit: 0,
        result: 'upgraded'
      })
      expect(await dbVersionOf(db)).toEqual(before)
      // the leader-host job: the handoff goes to the bad target, which migrates, crashes and is restarted
      const r = await upgradeOn(hosts[0], name, BAD)
      const log = visible(r.stdout)
      expect({ exit: r.exitCode, result: r.outputs.result, log: show(r) }).toMatchObject({
        exit: 1,
        result: 'failed'
      })
      // it says what happened and what to do next: the crash-looping instance, where it runs, the rollback job
      expect(log).toMatch(/restarted by its host/)
      expect(log).toMatch(/Chainlink 2\.20\.0/)
      expect(log).toMatch(/from 10\.\d+\.\d+\.\d+/)
      expect(log).toMatch(/upgrade to the previous image on that host/)
      // this host's old instance is kept stopped (it could not run on the migrated DB), restart policy no
      expect((await containersOf([hosts[0]], name)).map((c) => [c.name, c.image, c.running])).toEqual([
        [name, simImage(OLD), false]
      ])
      expect(await policyOf(hosts[0], name)).toBe('no')
      expect((await dbVersionOf(db)).node).toBe('2.20.0')

      // the rollback job, in the matrix's order: h1 first. Its instance cannot run on the migrated
      // DB: nothing changes, and it says which host goes first
      const a = await upgradeOn(hosts[0], name, OLD)
      expect({ exit: a.exitCode, log: show(a) }).toMatchObject({ exit: 1 })
      expect(visible(a.stdout)).toMatch(/nothing was changed/i)
      expect(visible(a.stdout)).toMatch(/the host whose instance runs the newer image goes first/)
      expect((await containersOf([hosts[0]], name)).map((c) => [c.name, c.image, c.running])).toEqual([
        [name, simImage(OLD), false]
      ])
      // h2: its crash-looping instance stopped, the DB taken back by the new image's `node db
      // rollback` on its own host, then its instance on the previous image leads
      const b = await upgradeOn(hosts[1], name, OLD)
      expect({ exit: b.exitCode, result: b.outputs.result, log: show(b) }).toMatchObject({
        exit: 0,
        result: 'upgraded'
      })
      expect(visible(b.stdout)).toMatch(/database rolled back: goose 250, node_versions 2\.19\.0/)
      expect(b.outputs['leader-host']).toBe('local')
      expect(await dbVersionOf(db)).toEqual(before)
      const again = await writerNow(db, OLD)
      // the rollback job's second pass (examples/ha.yml rollback-rejoin): h1's instance back as the standby
      const c = await upgradeOn(hosts[0], name, OLD)
      expect({ exit: c.exitCode, result: c.outputs.result, log: show(c) }).toMatchObject({
        exit: 0,
        result: 'upgraded'
      })
      expect(visible(c.stdout)).toMatch(/gate standby-ready: passed .*polls the lock and does not hold it/)
      // h2's leg of that pass: its instance leads (status says so), the workflow skips its upgrade;
      // run anyway, the upgrade changes nothing
      const d = await hosts[1].run({ operation: 'status', container: name })
      expect({ exit: d.exitCode, where: d.outputs['leader-host'], log: show(d) }).toMatchObject({
        exit: 0,
        where: 'local'
      })
      const e = await upgradeOn(hosts[1], name, OLD)
      expect({ exit: e.exitCode, result: e.outputs.result, log: show(e) }).toMatchObject({
        exit: 0,
        result: 'unchanged'
      })

      expect(await containersOf(hosts, name)).toEqual(
        hosts.map((h) => ({ host: h.label, name, image: simImage(OLD), running: true }))
      )
      for (const h of hosts) expect(await policyOf(h, name)).toBe('unless-stopped')
      expect(await roles(name)).toEqual([
        ['leader', OLD],
        ['waiting', OLD]
      ])
      expect(await writerNow(db, OLD)).toBe(again)
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

  test('a standby host whose target crashes before the lock (restarted by Docker): the previous instance is put back waiting', async () => {
    const db = await createDb('hback')
    const name = `${prefix}-crash`
    try {
      const first = await nodeOn(db, name)
      const before = await dbVersionOf(db)
      const s = await upgradeOn(hosts[1], name, CRASH)
      expect({ exit: s.exitCode, result: s.outputs.result, log: show(s) }).toMatchObject({
        exit: 1,
        result: 'failed'
      })
      expect(visible(s.stdout)).toMatch(/was not proven waiting .*the previous container was put back, waiting/)
      expect(await containersOf(hosts, name)).toEqual(
        hosts.map((h) => ({ host: h.label, name, image: simImage(OLD), running: true }))
      )
      expect(await policyOf(hosts[1], name)).toBe('unless-stopped')
      expect(await roles(name)).toEqual([
        ['leader', OLD],
        ['waiting', OLD]
      ])
      expect(await writerNow(db, OLD)).toBe(first)
      expect(await dbVersionOf(db)).toEqual(before)
      const w = await writers(db)
      expect({ writers: w.writers, interleaved: w.interleaved }).toEqual({ writers: [first], interleaved: false })
    } finally {
      await cleanup(name, db)
    }
  })
})
