// The rollout's and the rollback's orchestration on fakes (test/unit/fixtures/fake-node.ts):
// which containers are stopped, renamed, started and removed, in which order, and what the DB
// plan does, for the outcomes the integration tests reach only with a real node and real time.
import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import type { Context } from '../../../src/context.js'
import { GateError, memberOf } from '../../../src/handoff/types.js'
import type { NodeContainer, NodeView } from '../../../src/node/view.js'
import { repair } from '../../../src/operations/repair.js'
import { rollback } from '../../../src/rollout/rollback.js'
import { restoreForRollback as restoreBackupForRollback } from '../../../src/rollout/backup-step.js'
import { changeSettings } from '../../../src/rollout/prepare.js'
import { preUpgradeBackup } from '../../../src/operations/upgrade.js'
import { rollPair } from '../../../src/rollout/pair.js'
import type { Change, Prepared, RollbackPlan, RolloutDeps } from '../../../src/rollout/plan.js'
import { rollSingle } from '../../../src/rollout/single.js'
import { WindowClosed } from '../../../src/rollout/steps.js'
import { parseWindows } from '../../../src/safeguards/window.js'
import { readJournal } from '../../../src/journal/journal.js'
import { journalKeys } from '../../../src/journal/host-lock.js'
import { expectInOrder, FakeNode, FAST, imageIdOf, inputsOf, upgradeTo } from '../fixtures/fake-node.js'

const OLD = 'smartcontract/chainlink:2.18.0'
const NEW = 'smartcontract/chainlink:2.19.0'
const upgrade: Change = upgradeTo(NEW)
/** The rollback's restore as the operations hand it (their inputs bound). */
const restoreForRollback: Parameters<typeof rollback>[5] = (ctx, link, file) =>
  restoreBackupForRollback(ctx, link, file, inputsOf())
/** What the operations hand a rollout (src/operations/upgrade.ts): the backup step and the rollback. */
const deps: RolloutDeps = {
  backup: (ctx, p, ch, r) => preUpgradeBackup(ctx, w.inputs(), p, ch, r),
  rollback: (ctx, link, plan, t, reason) => rollback(ctx, link, plan, t, reason, restoreForRollback)
}

// the health gate holds a ready node for stable-for, seen by an observer that polls every 2 s
jest.setTimeout(40_000)

let w: FakeNode
beforeEach(async () => {
  w = new FakeNode()
  await w.listen()
})
afterEach(async () => {
  await w.close()
})

function nodeContainer(info = w.leader.info, appId = w.leader.appId): NodeContainer {
  return {
    info: structuredClone(info),
    name: info.Name.slice(1),
    image: info.Config.Image,
    session: appId ? { appId } : undefined
  } as unknown as NodeContainer
}

async function prepared(other?: NodeContainer, t = FAST): Promise<Prepared> {
  const link = w.link()
  const leader = nodeContainer()
  const view = {
    containers: other ? [leader, other] : [leader],
    lock: { sessions: await w.dbApi.nodeSessions(), holder: w.holder },
    dbVersion: { ...w.db },
    mode: 'lease',
    db: w.dbApi,
    config: link.config
  } as unknown as NodeView
  // the keys the host lock finds (its DB's), so that a repair finds the run's journal
  const keys = await journalKeys(w.context(), w.inputs(), ['chainlink'])
  key = keys.write
  return { view, leader, other, link, t, keys, node: { container: 'chainlink', stateDir: w.stateDir } }
}

/** A pre-upgrade backup set as the rollback finds it: a manifest beside the dump (never read further). */
function backupSet(dump: 'pre.dump' | 'pre.dump.d'): string {
  const dir = mkdtempSync(join(tmpdir(), 'orch-backup-'))
  writeFileSync(
    join(dir, 'pre.json'),
    JSON.stringify({ format: 'chainlink-rollout-backup', createdAt: new Date().toISOString(), encrypted: false })
  )
  return join(dir, dump)
}

let key = ''
const journalOf = () => readJournal(w.stateDir, key)
const touches = (name: string) => (e: string) => / /.test(e) && e.split(' ')[1] === name && !e.startsWith('create')

describe('single node: the standby gate before any handoff', () => {
  test('the standby exits at start-up: it is removed, the leader is never touched, the run is failed', async () => {
    w.images.set(NEW, { exitsWith: 1 })
    const ctx = w.context()
    const p = await prepared()
    await expect(rollSingle(ctx, p, upgrade, deps)).rejects.toThrow(GateError)
    expect(w.events).toContain('remove chainlink-rollout-next')
    expect(w.events.filter(touches('chainlink'))).toEqual([])
    expect(w.leader.info.State.Running).toBe(true)
    expect(w.holder).toBe(w.leader.appId)
    expect(ctx.report.timeline.map((s) => s.step)).toContain('standby removed')
    expect(ctx.report.logs.map((l) => l.container)).toEqual(['chainlink-rollout-next'])
    expect(journalOf()).toMatchObject({ phase: 'done', result: 'failed' })
  })

  test('the standby waits and the new leader passes: renamed into place, the old container removed', async () => {
    const ctx = w.context()
    // time for the observer's /health look (every few seconds) within the stable window
    const r = await rollSingle(ctx, await prepared(undefined, { ...FAST, readyMs: 8000 }), upgrade, deps)
    expect(r).toMatchObject({ result: 'upgraded', ok: true, outputs: { leader: 'chainlink', image: NEW } })
    expectInOrder(w.events, [
      'create chainlink-rollout-next ' + NEW,
      'start chainlink-rollout-next',
      'restart-policy chainlink no',
      'stop chainlink',
      'rename chainlink -> chainlink-rollout-previous',
      'rename chainlink-rollout-next -> chainlink',
      'remove chainlink-rollout-previous'
    ])
    expect(w.byName('chainlink')?.info.Config.Image).toBe(NEW)
    expect(journalOf()).toMatchObject({ phase: 'done', result: 'upgraded' })
  })
})

describe('single node: the new leader fails its health gate', () => {
  test('rolled back: plan chosen before the first stop, DB migrated down by the new image, old container leads again', async () => {
    w.images.set(NEW, { migratesTo: 200, neverReady: true })
    const ctx = w.context()
    const r = await rollSingle(ctx, await prepared(), upgrade, deps)
    expect(r).toMatchObject({ result: 'rolled-back', ok: false, outputs: { leader: 'chainlink', image: OLD } })
    expect(r.message).toMatch(/failed \(.*ready.*\); rolled back/)
    const from = w.events.indexOf('report: rollback')
    const rb = w.events.slice(from)
    expectInOrder(rb, [
      'report: rollback',
      'report: rollback plan',
      'stop chainlink-rollout-next',
      `run-once ${NEW} node -config /chainlink/config.toml -secrets /chainlink/secrets.toml db rollback 100`,
      'reset node_versions 2.18.0',
      'start chainlink',
      'remove chainlink-rollout-next'
    ])
    // the plan comes before the first stop of the rollback
    expect(rb.indexOf('report: rollback plan')).toBeLessThan(rb.findIndex((e) => e.startsWith('stop ')))
    expect(w.db.goose).toBe(100)
    expect(w.byName('chainlink')?.info.State.Running).toBe(true)
    expect(w.byName('chainlink')?.info.Config.Image).toBe(OLD)
    expect(w.byName('chainlink-rollout-next')).toBeUndefined()
    expect(journalOf()).toMatchObject({ phase: 'done', result: 'rolled-back' })
  })

  test('the lock left the leader before the handoff (the standby took it and migrated): rolled back, DB included', async () => {
    // the fault campaign's seed 7, run 12: the leader killed during the backup restarts under its
    // policy, the standby takes the lease first and migrates; removing the standby as "never
    // touched" left the old leader crash-looping on a migrated DB
    w.images.set(NEW, { migratesTo: 200, takesLeaseAtStart: true })
    const ctx = w.context()
    const p = await prepared(undefined, { ...FAST, readyMs: 8000 })
    const r = await rollSingle(ctx, p, upgrade, deps)
    expect(r).toMatchObject({ result: 'rolled-back', ok: false })
    expectInOrder(w.events, [
      'start chainlink-rollout-next',
      'migrate 200',
      'stop chainlink-rollout-next',
      `run-once ${NEW} node -config /chainlink/config.toml -secrets /chainlink/secrets.toml db rollback 100`,
      'start chainlink'
    ])
    expect(w.db.goose).toBe(100)
    expect(w.holder).toBe(w.byName('chainlink')?.appId)
    expect(w.byName('chainlink')?.info.Config.Image).toBe(OLD)
  })

  test('the tag moved since preflight: the standby and the final container run the verified image', async () => {
    // the tag now names a crashing image; preflight verified another one (review F19)
    w.images.set(NEW, { exitsWith: 1 })
    const verified = imageIdOf('smartcontract/chainlink@sha256:' + 'a'.repeat(64))
    const ctx = w.context()
    const p = await prepared(undefined, { ...FAST, readyMs: 8000 })
    const r = await rollSingle(ctx, p, { ...upgrade, imageId: verified }, deps)
    expect(r).toMatchObject({ result: 'upgraded', ok: true })
    expect(w.events).toContain('create chainlink-rollout-next ' + verified)
    expect(w.events.filter((e) => e.startsWith('create') && e.endsWith(NEW))).toEqual([])
  })

  test('the upgrade window closed while the standby started: it is removed, the leader never stopped', async () => {
    // a one-minute window twelve hours away: closed now, as if the backup had outlasted it (review N17)
    const at = new Date(Date.now() + 12 * 3600_000)
    const hhmm = (d: Date) => d.toISOString().slice(11, 16)
    const window = parseWindows(`daily ${hhmm(at)}-${hhmm(new Date(at.getTime() + 60_000))} UTC`)
    const ctx = w.context()
    const p = await prepared()
    await expect(rollSingle(ctx, p, { ...upgrade, window }, deps)).rejects.toThrow(WindowClosed)
    expect(w.events).toContain('remove chainlink-rollout-next')
    expect(w.events.filter(touches('chainlink'))).toEqual([])
    expect(w.leader.info.State.Running).toBe(true)
    expect(journalOf()).toMatchObject({ phase: 'done', result: 'deferred' })
  })

  test("with input 'rollback: false' the node is left as it is and the run fails naming the previous container", async () => {
    w.images.set(NEW, { neverReady: true })
    const ctx = w.context()
    const ch = { ...upgrade, ...changeSettings(w.inputs({ rollback: 'false' })) }
    await expect(rollSingle(ctx, await prepared(), ch, deps)).rejects.toThrow(
      /Rollback is off.*kept stopped as 'chainlink'/
    )
    expect(w.events).not.toContain('report: rollback')
    expect(w.events.filter((e) => e.startsWith('remove '))).toEqual([])
    expect(journalOf()).toMatchObject({ phase: 'done', result: 'failed' })
  })
})

describe('pair: the recreated standby fails its gate', () => {
  test('the old standby is put back under its name and started; the leader is never touched', async () => {
    const b = w.addStandby('chainlink-b')
    w.images.set(NEW, { exitsWith: 1 })
    const ctx = w.context()
    await expect(rollPair(ctx, await prepared(nodeContainer(b.info, b.appId)), upgrade, deps)).rejects.toThrow(
      GateError
    )
    expectInOrder(w.events, [
      'stop chainlink-b',
      'rename chainlink-b -> chainlink-b-rollout-previous',
      'create chainlink-b ' + NEW,
      'remove chainlink-b',
      'rename chainlink-b-rollout-previous -> chainlink-b',
      'start chainlink-b'
    ])
    expect(w.events.filter(touches('chainlink'))).toEqual([])
    expect(w.byName('chainlink-b')?.info.Config.Image).toBe(OLD)
    expect(journalOf()).toMatchObject({ phase: 'done', result: 'failed' })
  })
})

describe('rollback on its own', () => {
  /** the state after a handoff to a new container that then failed: it leads, the old one is stopped */
  async function afterFailedHandoff(migrated: boolean) {
    const ctx = w.context()
    const p = await prepared()
    const previous = memberOf(structuredClone(w.leader.info), w.leader.appId)
    const id = await w.docker.create({ name: 'chainlink-rollout-next', Image: NEW })
    await w.docker.stop(w.leader.info.Id, 1)
    await w.docker.start(id)
    if (migrated) w.images.set(NEW, { migratesTo: 200 })
    await w.dbApi.version() // the new node takes the lease (and migrates)
    const created = [memberOf((await w.docker.inspect(id))!)]
    w.events.length = 0
    const plan: RollbackPlan = {
      name: 'chainlink',
      previous,
      created,
      newImage: NEW,
      dbBefore: p.view.dbVersion,
      dbRollback: 'migrate-down',
      settings: upgrade.rollback
    }
    return { ctx, p, plan }
  }

  test('the DB does not answer: nothing is stopped', async () => {
    const { ctx, p, plan } = await afterFailedHandoff(false)
    w.dbDown = true
    await expect(rollback(ctx, p.link, plan, FAST, 'health gate failed', restoreForRollback)).rejects.toThrow(
      /does not answer.*nothing was stopped/
    )
    expect(w.events.filter((e) => e.startsWith('stop '))).toEqual([])
  })

  test('the DB moved and cannot be brought back (restore without a backup): nothing is stopped', async () => {
    const { ctx, p, plan } = await afterFailedHandoff(true)
    plan.dbRollback = 'restore'
    await expect(rollback(ctx, p.link, plan, FAST, 'health gate failed', restoreForRollback)).rejects.toThrow(
      /cannot be brought back \(no pre-upgrade backup was taken\); nothing was stopped/
    )
    expect(w.events.filter((e) => e.startsWith('stop '))).toEqual([])
    expect(w.byName('chainlink-rollout-next')?.info.State.Running).toBe(true)
  })

  test('the DB moved and is restored: the contents it replaced are dropped only once the previous container leads', async () => {
    // dropping them makes the server write out the whole restored database first (a checkpoint):
    // done while the node is down, that would be downtime
    const { ctx, p, plan } = await afterFailedHandoff(true)
    plan.dbRollback = 'restore'
    const file = backupSet('pre.dump.d')
    const restore = async (_c: Context, _l: unknown, f: string) => {
      w.events.push(`restore ${basename(f)}`)
      w.db = { ...w.db, goose: p.view.dbVersion.goose }
      return async () => void w.events.push('drop previous contents')
    }
    const restored = await rollback(ctx, p.link, { ...plan, backupFile: file }, FAST, 'health gate failed', restore)
    expect(restored.leader.name).toBe('chainlink')
    expectInOrder(w.events, [
      'stop chainlink-rollout-next',
      'restore pre.dump.d',
      'start chainlink',
      'report: rolled back',
      'drop previous contents'
    ])
  })

  test('the down-migration fails and a backup exists: restored instead, the previous container leads', async () => {
    const { ctx, p, plan } = await afterFailedHandoff(true)
    w.images.set(NEW, { migratesTo: 200, downFails: true })
    const file = backupSet('pre.dump')
    const restore = async (_c: Context, _l: unknown, f: string) => {
      w.events.push(`restore ${basename(f)}`)
      w.db = { ...p.view.dbVersion }
      return undefined
    }
    const r = await rollback(ctx, p.link, { ...plan, backupFile: file }, FAST, 'health gate failed', restore)
    expect(r.forward).toBeUndefined()
    expect(r.leader.name).toBe('chainlink')
    expect(r.db).toMatch(/down-migration failed \(.*exit 1.*\), so the database was restored from .*pre\.dump/)
    expectInOrder(w.events, [
      'stop chainlink-rollout-next',
      `run-once ${NEW} node -config /chainlink/config.toml -secrets /chainlink/secrets.toml db rollback 100`,
      'report: db rollback failed',
      'restore pre.dump',
      'start chainlink',
      'remove chainlink-rollout-next'
    ])
    expect(w.events).not.toContain('reset node_versions 2.18.0')
    expect(w.byName('chainlink')?.info.Config.Image).toBe(OLD)
  })

  test('the down-migration fails and no backup exists: the new version leads again under the node name', async () => {
    const { ctx, p, plan } = await afterFailedHandoff(true)
    w.images.set(NEW, { migratesTo: 200, downFails: true })
    w.events.length = 0
    const r = await rollback(ctx, p.link, plan, FAST, 'health gate failed', restoreForRollback)
    expect(r.forward).toMatch(/down-migration failed .* and no pre-upgrade backup was taken/)
    expect(r.leader.name).toBe('chainlink')
    expectInOrder(w.events, [
      'stop chainlink-rollout-next',
      'report: db rollback failed',
      'report: roll forward',
      'rename chainlink -> chainlink-rollout-previous',
      'rename chainlink-rollout-next -> chainlink',
      'start chainlink',
      'remove chainlink-rollout-previous',
      'report: rolled forward'
    ])
    // one container, the new image, named as the node, leading; never the old one on this DB
    expect([...w.boxes.values()].map((b) => b.info.Name)).toEqual(['/chainlink'])
    expect(w.byName('chainlink')?.info.Config.Image).toBe(NEW)
    expect(w.holder).toBe(w.byName('chainlink')?.appId)
    expect(w.db.goose).toBe(200)
  })

  test('the DB is restored but the node does not come back: the contents it replaced are kept and the error says how to swap them back', async () => {
    const { ctx, p, plan } = await afterFailedHandoff(true)
    const file = backupSet('pre.dump.d')
    const restore = async (_c: Context, _l: unknown, f: string) => {
      w.events.push(`restore ${basename(f)}`)
      w.db = { ...w.db, goose: p.view.dbVersion.goose }
      // the previous container is gone by the time the DB is back: nothing can lead on it
      await w.docker.remove(plan.previous.id)
      return async (nodeBack: boolean) => {
        w.events.push(nodeBack ? 'drop previous contents' : 'keep previous contents')
        return nodeBack ? undefined : 'kept as database chainlink_clr_old_1: ALTER DATABASE ...'
      }
    }
    await expect(
      rollback(ctx, p.link, { ...plan, backupFile: file, dbRollback: 'restore' }, FAST, 'health gate failed', restore)
    ).rejects.toThrow(/is gone; nothing to roll back to; kept as database chainlink_clr_old_1: ALTER DATABASE/)
    expect(w.events).toContain('keep previous contents')
    expect(w.events).not.toContain('drop previous contents')
  })

  test('the DB did not move: no DB step, the previous container restarted and proven leading', async () => {
    const { ctx, p, plan } = await afterFailedHandoff(false)
    const restored = await rollback(ctx, p.link, plan, FAST, 'health gate failed', restoreForRollback)
    expect(restored.leader.name).toBe('chainlink')
    expect(restored.forward).toBeUndefined()
    expect(restored.leader.appId).toBe(w.holder)
    expect(w.events.some((e) => e.startsWith('run-once') || e.startsWith('reset'))).toBe(false)
    expectInOrder(w.events, [
      'report: rollback plan',
      'stop chainlink-rollout-next',
      'start chainlink',
      'remove chainlink-rollout-next'
    ])
  })
})

describe('repair after a run interrupted at each step (single node, host network: the rename finish)', () => {
  // the repair's gates take their bounds from the inputs
  const REPAIR = {
    operation: 'repair',
    'database-url': 'postgres://chainlink:pw@127.0.0.1:5432/chainlink',
    'stable-for': '300ms',
    'ready-timeout': '8s'
  }
  test.each<[string, string, string, RegExp, string]>([
    ['before the standby starts', 'start chainlink-rollout-next', 'ok', /^undid/, OLD],
    ['before the leader is stopped', 'stop chainlink', 'ok', /^undid/, OLD],
    [
      'after the handoff, before the old leader leaves its name',
      'rename chainlink -> chainlink-rollout-previous',
      'upgraded',
      /^finished/,
      NEW
    ],
    [
      'with every name in place, before the old container is removed',
      'remove chainlink-rollout-previous',
      'upgraded',
      /^finished/,
      NEW
    ]
  ])('%s: %s -> %s', async (_, at, result, message, image) => {
    // time for the observer's /health look within the stable window (see above)
    const p = await prepared(undefined, { ...FAST, readyMs: 8000 })
    const ctx = w.context()
    w.interruptAt = at
    await expect(rollSingle(ctx, p, upgrade, deps)).rejects.toThrow(/cancel/i)
    expect(journalOf()?.phase).toBe('in-progress')
    const r = await repair(w.context(), w.inputs(REPAIR))
    expect(r).toMatchObject({ result, ok: true, outputs: { leader: 'chainlink' } })
    expect(r.message).toMatch(message)
    // one container of the node, named as before, leading and serving
    expect([...w.boxes.values()].map((b) => b.info.Name)).toEqual(['/chainlink'])
    expect(w.byName('chainlink')?.info.State.Running).toBe(true)
    expect(w.byName('chainlink')?.info.Config.Image).toBe(image)
    expect(w.holder).toBe(w.byName('chainlink')?.appId)
    expect(journalOf()?.phase).toBe('done')
  })

  test('interrupted during its own rollback: the repair rolls back again', async () => {
    w.images.set(NEW, { migratesTo: 200, neverReady: true })
    const ctx = w.context()
    w.interruptAt = 'start chainlink'
    await expect(rollSingle(ctx, await prepared(), upgrade, deps)).rejects.toThrow(/cancel/i)
    expect(journalOf()?.steps.map((s) => s.step)).toContain('rollback')
    const r = await repair(w.context(), w.inputs(REPAIR))
    expect(r).toMatchObject({ result: 'rolled-back', ok: false, outputs: { leader: 'chainlink', image: OLD } })
    expect(w.db.goose).toBe(100)
    expect([...w.boxes.values()].map((b) => b.info.Name)).toEqual(['/chainlink'])
    expect(w.byName('chainlink')?.info.State.Running).toBe(true)
    expect(journalOf()).toMatchObject({ phase: 'done', result: 'rolled-back' })
  })
})
