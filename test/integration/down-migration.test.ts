// The way back when the DB's way back fails (issue 21, items 2 and 3; review findings N3, N4):
// the new image's `node db rollback` fails (the simulator's SIM_FAIL_DOWN: a Down step failing
// in its own transaction, the DB left between the versions), and a rollback by restore is
// interrupted after it stopped every container. Each ends with one container named as the node
// serving on a DB its version runs, and a result, message and exit code that say which.
import { describe, expect, test } from '@jest/globals'
import { simImage, type TestDb } from '../support/bed.js'
import { atLine, runAction, visible, type ActionRun, type RunOptions } from '../support/action.js'
import { expectServing, oneNodePerTest, upgradeNode } from '../support/one-node.js'

const one = oneNodePerTest('clr-dm', 'dm')
let db: TestDb
let name: string
let stateDir: string

/** 2.18.0 on the docs' layout; `env` goes to the node (the action copies it to every clone). */
async function fresh(env: Record<string, string> = {}) {
  ;({ db, name, stateDir } = await one.fresh({ tag: '2.18.0', layout: 'ports', env }))
  // a row the operator's node wrote before the upgrade: it must survive whatever way back
  const c = await db.client()
  await c.query(`CREATE TABLE operator_marker (note text); INSERT INTO operator_marker VALUES ('before the upgrade')`)
  await c.end()
}

const upgrade = (tag: string, extra: Record<string, string> = {}, runOpts: RunOptions = {}): Promise<ActionRun> =>
  upgradeNode({ name, stateDir }, tag, extra, runOpts)

async function dbState() {
  const c = await db.client()
  try {
    const goose = (await c.query(`SELECT max(version_id)::int AS v FROM goose_migrations WHERE is_applied`)).rows[0].v
    const nodeVersions = (await c.query(`SELECT version FROM node_versions`)).rows.map((x) => x.version)
    const marker = (await c.query(`SELECT note FROM operator_marker`)).rows.map((x) => x.note)
    return { goose, nodeVersions, marker }
  } finally {
    await c.end()
  }
}

/** One container named as the node, running `tag` and ready, nothing else of ours, never two writers. */
const expectServingOn = (tag: string) => expectServing({ name, db }, tag)

// 2.18.0 is at goose 241; 2.20.0 adds 250, 255 and 256. `db rollback 241` undoes 256, then
// fails on 255's Down step: the DB stays at 255 with node_versions 2.20.0.
const DOWN_FAILS = { SIM_FAIL_DOWN: '255' }

describe('the new image migrated and its down-migration fails', () => {
  test('default inputs (backup on): rolled back from the pre-upgrade backup, old image on the pre-upgrade data', async () => {
    await fresh(DOWN_FAILS)
    const r = await upgrade('2.20.0-migrate-then-crash')
    const out = visible(r.stdout)
    expect(out).toMatch(/db rollback failed: 'node db rollback 241' with the new image failed \(exit 1\)/)
    expect(r.outputs.result).toBe('rolled-back')
    expect(r.exitCode).toBe(1)
    expect(r.outputs.image).toBe(simImage('2.18.0'))
    expect(r.outputs.leader).toBe(name)
    expect(out).toMatch(
      /::error::.*rolled back: .* leads on .*2\.18\.0; the down-migration failed \(.*failed to run SQL migration.*\), so the database was restored from the pre-upgrade backup .*pre-upgrade/
    )
    await expectServingOn('2.18.0')
    expect(await dbState()).toEqual({ goose: 241, nodeVersions: ['2.18.0'], marker: ['before the upgrade'] })
    expect(r.summary).toMatch(
      /The down-migration failed .*; instead the database was restored from the pre-upgrade backup/
    )
  })

  test('backup: false: the new version serves again on its own migrations, and the result says so', async () => {
    // a new version that serves but fails the gate: a check that passed before starts failing
    await fresh({ ...DOWN_FAILS, SIM_NEW_CHECK_AFTER_MS: '3000' })
    const r = await upgrade('2.20.0-new-check-fails', { backup: 'false', 'stable-for': '8s', 'ready-timeout': '15s' })
    const out = visible(r.stdout)
    expect(out).toMatch(/check EVM\.1337\.LogPoller|EVM\.1337\.LogPoller/)
    expect(out).toMatch(/db rollback failed: 'node db rollback 241' with the new image failed \(exit 1\)/)
    expect(r.outputs.result).toBe('failed')
    expect(r.exitCode).toBe(1)
    expect(r.outputs.image).toMatch(/chainlink:2\.20\.0-new-check-fails@sha256:[0-9a-f]{64}$/)
    expect(r.outputs['previous-image']).toBe(simImage('2.18.0'))
    expect(r.outputs.leader).toBe(name)
    expect(out).toMatch(
      /::error::upgrade to .*2\.20\.0-new-check-fails.* failed \(.*\) and it could not be rolled back: the new image's down-migration failed \(.*\) and no pre-upgrade backup was taken, so the old version cannot run on this database\. '.*' serves again on .*2\.20\.0-new-check-fails.*, the new version, on its own migrations/
    )
    const w = await expectServingOn('2.20.0-new-check-fails')
    expect(w.versions.at(-1)).toBe('2.20.0')
    // its start-up migrated up again from where the failed down-migration stopped
    expect(await dbState()).toEqual({ goose: 256, nodeVersions: ['2.20.0'], marker: ['before the upgrade'] })
    expect(r.summary).toMatch(/rolled forward/)
    // the journal is closed: nothing for a repair to roll back again
    const again = await runAction({ operation: 'repair', container: name, 'state-dir': stateDir })
    expect(again.outputs.result).toBe('ok')
    expect(visible(again.stdout)).toMatch(/nothing to repair/)
    await expectServingOn('2.20.0-new-check-fails')
  })
})

describe('a rollback by restore (db-rollback: restore) interrupted after it stopped the containers', () => {
  // printed once the rollback stopped every container, before the DB is touched
  const atRollbackStop = () => atLine('database moved: ')

  test('the job cancelled: the post step restores the journaled backup and the old image serves', async () => {
    await fresh()
    const at = atRollbackStop()
    const r = await upgrade('2.20.0-migrate-then-crash', { 'db-rollback': 'restore' }, { cancelWhen: at })
    expect(r.stdout).toMatch(/SIGINT received/)
    const post = r.stdout.split('--- post ---')[1] ?? ''
    expect(post).toMatch(/pre-upgrade backup .* \(from its journal\)/)
    expect(post).toMatch(/database restored/)
    expect(r.outputs.result).toBe('rolled-back')
    expect(r.exitCode).not.toBe(0)
    await expectServingOn('2.18.0')
    expect(await dbState()).toEqual({ goose: 241, nodeVersions: ['2.18.0'], marker: ['before the upgrade'] })
  })

  test('the runner killed (no post step): repair without backup-file restores the journaled backup', async () => {
    await fresh()
    const at = atRollbackStop()
    const r = await upgrade(
      '2.20.0-migrate-then-crash',
      { 'db-rollback': 'restore' },
      { post: false, cancelSignal: 'SIGKILL', cancelWhen: at }
    )
    expect(r.killed).toBe(true)
    // the repair names neither the backup nor db-rollback: both come from the run's journal
    const rep = await runAction({ operation: 'repair', container: name, 'state-dir': stateDir })
    const out = visible(rep.stdout)
    expect(out).toMatch(/pre-upgrade backup .* \(from its journal\)/)
    expect(out).toMatch(/database restored/)
    expect(rep.outputs.result).toBe('rolled-back')
    expect(rep.exitCode).toBe(1)
    expect(out).toMatch(
      /::error::rolled back the interrupted upgrade: .*the database was restored from the pre-upgrade backup/
    )
    await expectServingOn('2.18.0')
    expect(await dbState()).toEqual({ goose: 241, nodeVersions: ['2.18.0'], marker: ['before the upgrade'] })
  })
})
