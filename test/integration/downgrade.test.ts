// A deliberate downgrade (issue 24, item 1): an image older than the DB's node_versions is
// refused in preflight, naming the node's version gate, and nothing changes; with
// `allow-downgrade: true` the running image's `node db rollback` takes the DB to the older image's
// newest migration (the older image's own `node db status` names it), node_versions is set to the
// older version, and the older image takes over through the same standby, swap and gates. A
// failure brings the newer image back, which migrates the DB up again. Real simulator images:
// 2.18.0 ships migrations up to 241, 2.19.0 adds 250, 2.20.0 adds 255 and 256.
import { describe, expect, test } from '@jest/globals'
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { simImage, type TestDb } from '../support/bed.js'
import { visible, type ActionRun } from '../support/action.js'
import { type Layout } from '../support/node.js'
import { expectServing, oneNodePerTest, upgradeNode } from '../support/one-node.js'

const one = oneNodePerTest('clr-dg', 'dg')
let db: TestDb
let name: string
let stateDir: string

async function fresh(tag: string, layout: Layout = 'ports', env: Record<string, string> = {}) {
  ;({ db, name, stateDir } = await one.fresh({ tag, layout, env }))
  // a row the operator's node wrote: a down-migration keeps it
  const c = await db.client()
  await c.query(`CREATE TABLE operator_marker (note text); INSERT INTO operator_marker VALUES ('kept')`)
  await c.end()
}

const upgrade = (
  tag: string,
  extra: Record<string, string> = {},
  env: Record<string, string> = {}
): Promise<ActionRun> => upgradeNode({ name, stateDir }, tag, extra, { env })

async function dbState() {
  const c = await db.client()
  try {
    const goose = (await c.query(`SELECT max(version_id)::int AS v FROM goose_migrations WHERE is_applied`)).rows[0].v
    const nodeVersions = (await c.query(`SELECT version FROM node_versions`)).rows.map((x) => x.version)
    const marker = (await c.query(`SELECT note FROM operator_marker`)).rows.map((x) => x.note)
    const m250 = (await c.query(`SELECT to_regclass('sim_m0250')::text AS t`)).rows[0].t
    return { goose, nodeVersions, marker, m250: m250 !== null }
  } finally {
    await c.end()
  }
}

/** One container named as the node, running `tag` and ready, nothing else of ours, never two writers. */
const expectServingOn = (tag: string) => expectServing({ name, db }, tag)

const REFUSED =
  /::error::Input '(image|image-file)': .*chainlink:2\.18\.0@sha256:[0-9a-f]{64} is Chainlink 2\.18\.0, older than 2\.19\.0 \(the database's node_versions\): Chainlink 2\.18\.0 would refuse to start on this database \("Application version \(2\.18\.0\) is lower than database version \(2\.19\.0\)\. Only Chainlink 2\.19\.0 or higher can be run on this database": the node's version gate\), so the upgrade would end in a rollback\. Nothing was changed\. To go back deliberately set 'allow-downgrade: true'/

describe('an image older than the database', () => {
  test('refused in preflight without allow-downgrade (image and image-file), nothing changed', async () => {
    await fresh('2.19.0')
    const before = await expectServingOn('2.19.0')
    const db0 = await dbState()
    expect(db0).toEqual({ goose: 250, nodeVersions: ['2.19.0'], marker: ['kept'], m250: true })
    const r = await upgrade('2.18.0')
    expect(r.exitCode).toBe(1)
    expect(r.outputs.result).toBe('failed')
    expect(visible(r.stdout)).toMatch(REFUSED)
    // a pull request that changes the desired-state file to an older tag: the same refusal
    const ws = mkdtempSync(join(tmpdir(), 'clr-ws-'))
    writeFileSync(join(ws, 'chainlink.env'), `CHAINLINK_IMAGE=${simImage('2.18.0')}\n`)
    const f = await upgrade('2.18.0', { image: '', 'image-file': join(ws, 'chainlink.env') }, { GITHUB_WORKSPACE: ws })
    expect(f.exitCode).toBe(1)
    expect(visible(f.stdout)).toMatch(REFUSED)
    expect(visible(f.stdout)).toMatch(/::error::Input 'image-file'/)
    const after = await expectServingOn('2.19.0')
    expect(after.id).toBe(before.id)
    expect(after.writers).toEqual(before.writers)
    expect(await dbState()).toEqual(db0)
    // refused before the backup: nothing written to the backup dir
    expect(() => readdirSync(join(stateDir, 'backups'))).toThrow()
  })

  test.each<[Layout]>([['ports'], ['host']])(
    'allow-downgrade (%s): 2.19.0 -> 2.18.0 on 2.18.0 migrations, then up to 2.19.0 again',
    async (layout) => {
      await fresh('2.19.0', layout)
      const r = await upgrade('2.18.0', { 'allow-downgrade': 'true' })
      const out = visible(r.stdout)
      expect(out).toMatch(/db status: .*chainlink:2\.18\.0 .*db status/)
      expect(r.summary).toMatch(/Downgrade.*2\.19\.0 -> 2\.18\.0 \('allow-downgrade'\)/)
      expect(out).toMatch(/db rollback: .*chainlink:2\.19\.0 \(sha256:[0-9a-f]{12}\) .*db rollback 241/)
      expect(out).toMatch(/database rolled back: goose 241, node_versions 2\.18\.0/)
      expect(r.outputs.result).toBe('upgraded')
      expect(r.exitCode).toBe(0)
      expect(r.outputs['previous-image']).toBe(simImage('2.19.0'))
      expect(r.outputs.image).toMatch(/chainlink:2\.18\.0@sha256:[0-9a-f]{64}$/)
      expect(out).toMatch(
        /downgraded from .*2\.19\.0 \(2\.19\.0\) to .*2\.18\.0.*, the database at goose 241 and node_versions 2\.18\.0/
      )
      const w = await expectServingOn('2.18.0')
      expect(w.versions).toEqual(['2.19.0', '2.18.0'])
      expect(await dbState()).toEqual({ goose: 241, nodeVersions: ['2.18.0'], marker: ['kept'], m250: false })
      // and up again: an ordinary upgrade, 2.19.0 migrates 250 again
      const up = await upgrade('2.19.0')
      expect(up.outputs.result).toBe('upgraded')
      expect(up.exitCode).toBe(0)
      expect(up.summary).not.toMatch(/Downgrade/)
      const w2 = await expectServingOn('2.19.0')
      expect(w2.versions).toEqual(['2.19.0', '2.18.0', '2.19.0'])
      expect(await dbState()).toEqual({ goose: 250, nodeVersions: ['2.19.0'], marker: ['kept'], m250: true })
    }
  )

  test('a failed down-migration rolls back to the newer image, which migrates the database up again', async () => {
    // 2.20.0 -> 2.19.0: `db rollback 250` undoes 256, then 255's Down step fails (SIM_FAIL_DOWN,
    // copied from the node's env to the one-off container): the DB stays at 255
    await fresh('2.20.0', 'ports', { SIM_FAIL_DOWN: '255' })
    const r = await upgrade('2.19.0', { 'allow-downgrade': 'true' })
    const out = visible(r.stdout)
    expect(out).toMatch(/'node db rollback 250' with the running image .*2\.20\.0 failed \(exit 1\)/)
    expect(out).toMatch(/rollback plan: restart the previous container: a downgrade/)
    expect(r.outputs.result).toBe('rolled-back')
    expect(r.exitCode).toBe(1)
    const w = await expectServingOn('2.20.0')
    expect(w.versions).toEqual(['2.20.0', '2.20.0'])
    expect(await dbState()).toMatchObject({ goose: 256, nodeVersions: ['2.20.0'], marker: ['kept'] })
  })
})
