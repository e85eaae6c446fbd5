// One node across several hosts (issue 22, docs/hosts.md) on a bed of hosts: dedicated Docker
// daemons sharing the bed's Postgres (test/support/hosts.ts), the action run as each host's
// runner runs it. Never two writers, and no heartbeat pause beyond the handoff.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { createDb, uniqueName, waitFor, type TestDb } from '../support/bed.js'
import { startHosts, stopHosts, type BedHost } from '../support/hosts.js'
import { nodeUrl, startNode, writers } from '../support/node.js'
import { atLine, visible, type ActionRun } from '../support/action.js'
import { lastHeartbeat } from '../support/fault.js'
import type Docker from 'dockerode'

const prefix = uniqueName('clr-hosts')
const TAG = '2.19.0'
const OLD = '2.18.0'
let hosts: BedHost[] = []

beforeAll(async () => {
  hosts = await startHosts(2, [TAG, OLD])
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

const show = (r: ActionRun) =>
  `exit ${r.exitCode} ${JSON.stringify(r.outputs.result)}\n${visible(r.stdout).split('\n').slice(-40).join('\n')}`

async function inspectOf(api: Docker, name: string) {
  const i = await api.getContainer(name).inspect()
  return { running: i.State.Running, policy: i.HostConfig.RestartPolicy?.Name }
}

/** The app id of the process that writes heartbeats now (the leader, by its own writes). */
async function writer(db: TestDb, version = TAG): Promise<string> {
  const h = await waitFor(
    'a fresh heartbeat',
    async () => {
      const x = await lastHeartbeat(db)
      return x && x.agoMs < 1000 && x.version === version ? x : undefined
    },
    60_000
  )
  return h.app
}

describe('drain and resume across hosts', () => {
  test('drain, reboot of the drained host, resume, and the drain back from the other host: never two writers', async () => {
    const db = await createDb('hosts')
    const name = `${prefix}-dr`
    try {
      const [h1, h2] = hosts
      // restart policy always: only the drain's `no` keeps the daemon's restart from starting it
      await startNode({ name, tag: TAG, db, layout: 'bridge', api: h1.dockerd.api, restart: 'always' })
      const first = await writer(db)
      await startNode({ name, tag: TAG, db, layout: 'bridge', api: h2.dockerd.api, noWait: true })
      await processes(db, 2)
      const remoteUrl = await nodeUrl(name, h2.dockerd.api)
      // 1. drain h1: the lock goes to h2's instance, gated by its health URL
      const d1 = await h1.run({
        operation: 'drain',
        container: name,
        'remote-health-url': remoteUrl!,
        'stable-for': '3s'
      })
      expect({ exit: d1.exitCode, result: d1.outputs.result, log: show(d1) }).toMatchObject({ exit: 0, result: 'ok' })
      expect(d1.outputs['leader-host']).toBe('remote')
      const second = await writer(db)
      expect(second).not.toBe(first)
      expect(d1.outputs['leader-app-id']).toBe(second)
      expect(await inspectOf(h1.dockerd.api, name)).toEqual({ running: false, policy: 'no' })
      expect(visible(d1.stdout)).toMatch(/gate health: passed \(app .* held the lease for .*renewals.*\/readyz 200/)
      // 2. reboot h1 (its daemon stops every container and comes back): the drained instance stays down
      await h1.dockerd.down()
      await h1.dockerd.start()
      await new Promise((r) => setTimeout(r, 3000))
      expect(await inspectOf(h1.dockerd.api, name)).toEqual({ running: false, policy: 'no' })
      expect(await writer(db)).toBe(second)
      // 3. resume h1: its instance waits, with the operator's restart policy back
      const r1 = await h1.run({ operation: 'resume', container: name })
      expect({ exit: r1.exitCode, result: r1.outputs.result, log: show(r1) }).toMatchObject({ exit: 0, result: 'ok' })
      expect(await inspectOf(h1.dockerd.api, name)).toEqual({ running: true, policy: 'always' })
      expect(visible(r1.stdout)).toMatch(/gate standby-ready: passed .*polls the lock and does not hold it/)
      expect(await writer(db)).toBe(second)
      // 4. the drain back, run by h2's runner, gated by the DB's evidence alone
      const d2 = await h2.run({ operation: 'drain', container: name, 'stable-for': '3s' })
      expect({ exit: d2.exitCode, result: d2.outputs.result, log: show(d2) }).toMatchObject({ exit: 0, result: 'ok' })
      const third = await writer(db)
      expect([third === first, third === second]).toEqual([false, false])
      expect(d2.outputs['leader-app-id']).toBe(third)
      expect(await inspectOf(h2.dockerd.api, name)).toEqual({ running: false, policy: 'no' })
      const w = await writers(db)
      expect({ writers: w.writers, interleaved: w.interleaved }).toEqual({
        writers: [first, second, third],
        interleaved: false
      })
      // the longest pause of the node's writes is the handoff's (lock poll + boot), not a lease expiry
      process.stderr.write(`hosts drain: longest heartbeat gap ${w.maxGapMs} ms\n`)
      expect(w.maxGapMs).toBeLessThan(3000)
    } finally {
      for (const h of hosts)
        await h.dockerd.api
          .getContainer(name)
          .remove({ force: true })
          .catch(() => undefined)
      await db.drop()
    }
  })

  test('refused before anything changes: no instance waits elsewhere, or the one waiting is too old for the DB', async () => {
    const db = await createDb('hosts')
    const name = `${prefix}-rf`
    try {
      const [h1, h2] = hosts
      await startNode({ name, tag: TAG, db, layout: 'bridge', api: h1.dockerd.api })
      const lead = await writer(db)
      const none = await h1.run({ operation: 'drain', container: name })
      expect({ exit: none.exitCode, result: none.outputs.result }).toEqual({ exit: 1, result: 'failed' })
      expect(visible(none.stdout)).toMatch(
        /No instance of the node waits for the lock on another host.*nothing was changed/
      )
      // an older version waits on h2: it would take the lock and fail the version gate
      await startNode({ name, tag: OLD, db, layout: 'bridge', api: h2.dockerd.api, noWait: true })
      await processes(db, 2)
      const old = await h1.run({ operation: 'drain', container: name })
      expect({ exit: old.exitCode, result: old.outputs.result }).toEqual({ exit: 1, result: 'failed' })
      expect(visible(old.stdout)).toMatch(/Chainlink 2\.18\.0 is lower than the database's version 2\.19\.0/)
      expect(await inspectOf(h1.dockerd.api, name)).toEqual({ running: true, policy: 'unless-stopped' })
      expect(await writer(db)).toBe(lead)
      expect((await writers(db)).writers).toEqual([lead])
    } finally {
      for (const h of hosts)
        await h.dockerd.api
          .getContainer(name)
          .remove({ force: true })
          .catch(() => undefined)
      await db.drop()
    }
  })

  test.each([
    ['killed as the stop is aimed', 'sigkill' as const, 0],
    ['killed with the stop in flight', 'sigkill' as const, 350],
    ['cancelled with the stop in flight', 'sigint' as const, 350]
  ])(
    'the runner %s: repair (or the post step) ends the drain with one leader, never two writers',
    async (_, how, delayMs) => {
      const db = await createDb('hosts')
      const name = `${prefix}-kl${delayMs}`
      try {
        const [h1, h2] = hosts
        await startNode({ name, tag: TAG, db, layout: 'bridge', api: h1.dockerd.api })
        const first = await writer(db)
        await startNode({ name, tag: TAG, db, layout: 'bridge', api: h2.dockerd.api, noWait: true })
        await processes(db, 2)
        const d = await h1.run(
          { operation: 'drain', container: name, 'stable-for': '3s' },
          { hooks: [{ when: atLine(/^drain \S+ -> another host/), do: how, delayMs }] }
        )
        expect({ killed: d.killed, fired: d.fired }).toEqual({ killed: how === 'sigkill', fired: [true] })
        // a dead runner runs no post step: the operator's next run is repair; a cancelled one's post step repaired
        const rep = how === 'sigkill' ? await h1.run({ operation: 'repair', container: name, 'stable-for': '3s' }) : d
        if (how === 'sigint') expect(visible(d.stdout)).toMatch(/--- post ---[^]*finished the interrupted drain/)
        if (how === 'sigkill')
          expect({ exit: rep.exitCode, result: rep.outputs.result, log: show(rep) }).toMatchObject({
            exit: 0,
            result: 'ok'
          })
        const now = await writer(db)
        const w = await writers(db)
        expect(w.interleaved).toBe(false)
        expect(w.maxGapMs).toBeLessThan(3000)
        if (now === first) {
          // the stop never went out: the drain is undone, h1 leads with its policy back
          expect(visible(rep.stdout)).toMatch(/never stopped leading/)
          expect(await inspectOf(h1.dockerd.api, name)).toEqual({ running: true, policy: 'unless-stopped' })
        } else {
          // the stop went out: the drain is finished
          if (how === 'sigkill') expect(rep.outputs['leader-host']).toBe('remote')
          expect(visible(rep.stdout)).toMatch(/finished the interrupted drain/)
          expect(await inspectOf(h1.dockerd.api, name)).toEqual({ running: false, policy: 'no' })
          expect(w.writers).toEqual([first, now])
        }
        // a stop in flight was sent: the drain can only have finished
        if (delayMs) expect(now).not.toBe(first)
        const st = await h1.run({ operation: 'status', container: name })
        expect(st.exitCode).toBe(0)
      } finally {
        for (const h of hosts)
          await h.dockerd.api
            .getContainer(name)
            .remove({ force: true })
            .catch(() => undefined)
        await db.drop()
      }
    }
  )

  test('the instance elsewhere exits right after taking the lock: the drained instance is started again and leads', async () => {
    const db = await createDb('hosts')
    const name = `${prefix}-fl`
    try {
      const [h1, h2] = hosts
      await startNode({ name, tag: TAG, db, layout: 'bridge', api: h1.dockerd.api })
      const first = await writer(db)
      await startNode({
        name,
        tag: TAG,
        db,
        layout: 'bridge',
        api: h2.dockerd.api,
        noWait: true,
        restart: 'no',
        env: { SIM_FAULT: 'exit-after-lock' }
      })
      await processes(db, 2)
      const d = await h1.run({ operation: 'drain', container: name, 'stable-for': '3s' })
      expect({ exit: d.exitCode, result: d.outputs.result }).toEqual({ exit: 1, result: 'failed' })
      expect(visible(d.stdout)).toMatch(/started again: '.*' leads again/)
      expect(await inspectOf(h1.dockerd.api, name)).toEqual({ running: true, policy: 'unless-stopped' })
      const now = await writer(db)
      expect(now).not.toBe(first)
      const w = await writers(db)
      expect({ writers: w.writers, interleaved: w.interleaved }).toEqual({ writers: [first, now], interleaved: false })
      // nothing left open: the next run is not refused
      const st = await h1.run({ operation: 'status', container: name })
      expect({ exit: st.exitCode, host: st.outputs['leader-host'] }).toEqual({ exit: 0, host: 'local' })
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
