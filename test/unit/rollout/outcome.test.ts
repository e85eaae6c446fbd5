// How a failed rollout journals its rollback (src/rollout/outcome.ts). A journal with `rollback`
// is always rolled back by the post step and `repair` (src/operations/repair.ts), so it is
// written only when the rollback is about to change something on the host: a rollback that
// stopped at its checks (the DB or the Docker daemon not answering) leaves the node to be judged
// as it is, and a healthy new leader is finished, not rolled back.
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals'
import type { DockerApi } from '../../../src/docker/client.js'
import { OperationError } from '../../../src/errors.js'
import { GateError, memberOf } from '../../../src/handoff/types.js'
import { readJournal } from '../../../src/journal/journal.js'
import { recover } from '../../../src/rollout/outcome.js'
import { openRecord, type Change, type Prepared, type RolloutDeps } from '../../../src/rollout/plan.js'
import { FakeNode, FAST, upgradeTo } from '../fixtures/fake-node.js'

const NEW = 'smartcontract/chainlink:2.19.0'
const upgrade: Change = upgradeTo(NEW)

let w: FakeNode
beforeEach(async () => {
  w = new FakeNode()
  await w.listen()
})
afterEach(async () => {
  await w.close()
})

function prepared(): Prepared {
  const info = w.leader.info
  const leader = { info, name: info.Name.slice(1), image: info.Config.Image, session: { appId: w.leader.appId } }
  const view = { containers: [leader], lock: { sessions: [], holder: w.holder }, dbVersion: { ...w.db }, mode: 'lease' }
  const keys = { write: 'db-test', read: ['db-test'] }
  const node = { container: 'chainlink', stateDir: w.stateDir }
  return { view, leader, link: w.link(), t: FAST, keys, node } as unknown as Prepared
}

const steps = () => readJournal(w.stateDir, 'db-test')?.steps.map((s) => s.step) ?? []

async function recoverWith(rollback: RolloutDeps['rollback'], e: Error = new Error('gate health: /readyz 503')) {
  const ctx = w.context()
  const p = prepared()
  const r = openRecord(ctx, p, upgrade, memberOf(p.leader.info, w.leader.appId))
  const out = recover(ctx, p, upgrade, r, e, rollback)
  return { out }
}

describe('a failed rollout journals its rollback only when something is about to change', () => {
  test('the rollback stops at its checks (the DB does not answer): no `rollback` in the journal, the message says nothing was stopped', async () => {
    const { out } = await recoverWith(async (c) => {
      await c.docker.inspect('chainlink')
      throw new OperationError(
        "the node's database does not answer (connect ECONNREFUSED); nothing was stopped: the node is as the failed step left it"
      )
    })
    await expect(out).rejects.toThrow(/rollback failed too: .*nothing was stopped/)
    expect(steps()).not.toContain('rollback')
    expect(readJournal(w.stateDir, 'db-test')?.phase).toBe('in-progress')
  })

  test('the Docker daemon stays away during the checks: no `rollback`, and the message says nothing was changed', async () => {
    const { out } = await recoverWith(async (c) => {
      await c.docker.inspect('chainlink')
      throw new Error('inspect of chainlink: the Docker Engine at unix:///run/docker.sock did not answer for 90 s')
    })
    await expect(out).rejects.toThrow(/did not answer for 90 s.*nothing of the node was changed by the rollback/i)
    expect(steps()).not.toContain('rollback')
  })

  test.each<[string, (d: DockerApi) => Promise<unknown>]>([
    ['a stop', (d) => d.stop('abc', 1)],
    ['a remove', (d) => d.remove('abc')],
    ['a rename', (d) => d.rename('abc', 'chainlink')],
    ['a start', (d) => d.start('abc')],
    ['a restart policy', (d) => d.setRestartPolicy('abc', { Name: 'unless-stopped' })],
    ['a one-off db rollback', (d) => d.runOnce({ name: 'x' }, 1000)],
    ['a signal', (d) => d.signal('abc', 'SIGTERM')]
  ])('%s of the rollback is journaled `rollback` first', async (_what, change) => {
    let seenBefore: string[] | undefined
    const { out } = await recoverWith(async (c) => {
      await c.docker.inspect('chainlink')
      await c.docker.listByLabel('x')
      seenBefore = steps()
      await change(c.docker).catch(() => undefined)
      // the first change is what counts: the step is written once
      await c.docker.stop('abc', 1).catch(() => undefined)
      throw new OperationError('stopped for the test')
    })
    await expect(out).rejects.toThrow(/rollback failed too/)
    expect(seenBefore).not.toContain('rollback')
    const s = steps()
    expect(s.filter((x) => x === 'rollback')).toHaveLength(1)
    expect(s.indexOf('rollback')).toBeLessThan(s.indexOf('rollback-failed'))
  })

  test('a rollback that went through is journaled and ends `rolled-back`', async () => {
    const { out } = await recoverWith(async (c) => {
      await c.docker.stop(w.leader.info.Id, 1)
      return { leader: memberOf(w.leader.info, w.leader.appId) }
    })
    await expect(out).resolves.toMatchObject({ result: 'rolled-back', ok: false })
    expect(steps()).toContain('rollback')
    expect(readJournal(w.stateDir, 'db-test')).toMatchObject({
      phase: 'done',
      result: 'rolled-back'
    })
  })

  // the upgrade's quarantine decides on this field, not on the reason's text (src/operations/upgrade.ts)
  test.each<[string, Error, string | undefined]>([
    [
      "the health gate's host fault",
      new GateError('health', "'chainlink' was started again", 'abc', undefined, 'the Docker daemon restarted'),
      'the Docker daemon restarted'
    ],
    ["a gate's failure of the image", new GateError('health', '/readyz 503', 'abc'), undefined],
    ['an error of no gate', new Error('gate health: /readyz 503'), undefined]
  ])('%s: the rolled-back result carries it as hostFault', async (_what, e, hostFault) => {
    const { out } = await recoverWith(async (c) => {
      await c.docker.stop(w.leader.info.Id, 1)
      return { leader: memberOf(w.leader.info, w.leader.appId) }
    }, e)
    const r = await out
    expect(r.result).toBe('rolled-back')
    expect(r.hostFault).toBe(hostFault)
  })
})
