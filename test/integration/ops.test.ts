// Operator safeguards end to end on the bed, run as the runner runs the action: the quarantine
// of a rolled-back image, the upgrade window and the migration rehearsal.
import { describe, expect, test } from '@jest/globals'
import { mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { docker, simImage, type TestDb } from '../support/bed.js'
import { atLine, runAction, visible, type ActionRun } from '../support/action.js'
import { containerState } from '../support/node.js'
import { oneNodePerTest, upgradeNode } from '../support/one-node.js'

const one = oneNodePerTest('clr-ops', 'ops')
let db: TestDb | undefined
let name: string
let stateDir: string

async function fresh(tag = '2.19.0', env?: Record<string, string>) {
  // host networking: the layout-independent logic under test needs no bridge network
  ;({ db, name, stateDir } = await one.fresh({ tag, layout: 'host', env }))
}

const upgrade = (tag: string, extra: Record<string, string> = {}): Promise<ActionRun> =>
  upgradeNode({ name, stateDir }, tag, extra)

/** What the operator would compare: the container's id, start time and image. */
async function fingerprint() {
  const info = await docker.getContainer(name).inspect()
  const ours = (await docker.listContainers({ all: true })).filter((c) =>
    c.Names.some((x) => x.startsWith(`/${name}-`))
  )
  return { id: info.Id, startedAt: info.State.StartedAt, image: info.Config.Image, others: ours.map((c) => c.Names[0]) }
}

describe('quarantine of a rolled-back image', () => {
  test('an upgrade to a digest that just rolled back is refused at once; the retry input tries it again', async () => {
    await fresh('2.19.0')
    const bad = await upgrade('2.20.0-never-ready', { 'ready-timeout': '6s' })
    expect(bad.outputs.result).toBe('rolled-back')
    expect(bad.exitCode).toBe(1)
    expect(bad.summary).toMatch(/is quarantined/)

    const status = await runAction({ operation: 'status', container: name, 'state-dir': stateDir })
    expect(status.exitCode).toBe(0)
    expect(status.summary).toMatch(/### Quarantine/)
    expect(status.summary).toMatch(/chainlink:2\.20\.0-never-ready@sha256:[0-9a-f]{64} \| quarantined \|/)

    const before = await fingerprint()
    const again = await upgrade('2.20.0-never-ready', { 'ready-timeout': '6s' })
    expect(again.outputs.result).toBe('failed')
    expect(again.exitCode).toBe(1)
    // names the earlier run and its reason
    const runId = /\| quarantined \| ([0-9a-z]+) \|/.exec(status.summary)![1]
    expect(visible(again.stdout)).toMatch(
      new RegExp(`::error::.*is quarantined: .*run ${runId} .*not ready within ready-timeout`)
    )
    expect(visible(again.stdout)).toMatch(/retry-quarantined: true/)
    // "at once": refused before any step that costs time or touches the node: no backup, no
    // standby of the quarantined image, no gate (its duration is the machine's load, not the
    // refusal's: speed goes in the bench)
    expect(visible(again.stdout)).not.toMatch(/backup: pg_dump|standby started|gate [a-z-]+:/)
    expect(await fingerprint()).toEqual(before)

    const retry = await upgrade('2.20.0-never-ready', { 'ready-timeout': '6s', 'retry-quarantined': 'true' })
    expect(visible(retry.stdout)).not.toMatch(/::error::.*is quarantined/)
    expect(retry.outputs.result).toBe('rolled-back') // tried again, and the bad image rolls back again

    // a good release goes out; the quarantine stays as history and blocks nothing
    const good = await upgrade('2.20.0')
    expect(good.outputs.result).toBe('upgraded')
    expect((await containerState(name))?.image).toBe(simImage('2.20.0'))
    const after = await runAction({ operation: 'status', container: name, 'state-dir': stateDir })
    expect(after.summary).toMatch(/no quarantined digest/)
    expect(after.summary).toMatch(/2\.20\.0-never-ready@sha256:[0-9a-f]{64} \| history: cleared /)
  })
})

describe('upgrade window', () => {
  test('a run outside its window ends deferred, exit 0, with nothing touched and the next opening named', async () => {
    await fresh('2.19.0')
    // a one-hour window that closed an hour ago today (UTC): the run is outside it whenever it runs
    const h = (new Date().getUTCHours() + 22) % 24
    const p = (x: number) => String(x).padStart(2, '0')
    const window = `daily ${p(h)}:00-${p((h + 1) % 24)}:00 UTC`
    const before = await fingerprint()
    const r = await upgrade('2.20.0', { window })
    expect(r.exitCode).toBe(0)
    expect(r.outputs.result).toBe('deferred')
    expect(r.summary).toMatch(new RegExp(`window opens ... ${p(h)}:00 UTC \\(\\d{4}-\\d\\d-\\d\\dT${p(h)}:00:00Z, in `))
    expect(await fingerprint()).toEqual(before)
    // nothing on the host either: no journal, no host lock, no backup; only the node's metrics
    // textfile (and its state) records the deferred run (docs/metrics.md)
    expect(readdirSync(stateDir).filter((f) => !/\.prom$|\.metrics\.json$/.test(f))).toEqual([])
  })

  test('the window closes while the standby starts: it is removed, the leader never stopped, deferred', async () => {
    await fresh('2.19.0')
    // a window that ends at a minute boundary at least 20 s away (review N17)
    let end = Math.ceil((Date.now() + 1000) / 60_000) * 60_000
    if (end - Date.now() < 20_000) end += 60_000
    const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16)
    const window = `daily ${hhmm(end - 3600_000)}-${hhmm(end)} UTC`
    const before = await fingerprint()
    // the run is held (SIGSTOP, as a slow backup would hold it) once its standby started, until the window closed
    const r = await runAction(
      {
        operation: 'upgrade',
        container: name,
        image: simImage('2.20.0'),
        'state-dir': stateDir,
        'backup-dir': join(stateDir, 'backups'),
        'stable-for': '2s',
        window
      },
      {
        hooks: [
          {
            when: atLine('standby started'),
            do: async (child) => {
              child.kill('SIGSTOP')
              await new Promise((res) => setTimeout(res, Math.max(0, end - Date.now()) + 1000))
              child.kill('SIGCONT')
            }
          }
        ]
      }
    )
    expect(r.outputs.result).toBe('deferred')
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toMatch(/closed before the first stop/)
    expect(await fingerprint()).toEqual(before)
    expect((await containerState(name))?.running).toBe(true)
  })

  test('a malformed window is refused naming the input, before anything is touched', async () => {
    name = `${one.prefix}-none`
    stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
    const r = await upgrade('2.20.0', { window: 'Mon-Fri 08:00-18:00 Europe/Berlln' })
    expect(r.exitCode).toBe(1)
    expect(visible(r.stdout)).toMatch(/::error::Input 'window' unknown time zone 'Europe\/Berlln'/)
  })
})

describe('migration rehearsal', () => {
  /** the scratch database this run's rehearsal made, as its log names it */
  const scratchOf = (r: ActionRun) => /scratch database (clr_rehearsal_[0-9a-f]+)/.exec(visible(r.stdout))?.[1]

  async function scratchDatabases(): Promise<string[]> {
    const c = await db!.client()
    try {
      const r = await c.query("SELECT datname FROM pg_database WHERE datname LIKE 'clr_rehearsal_%'")
      return r.rows.map((x: { datname: string }) => x.datname)
    } finally {
      await c.end()
    }
  }

  test('a migration that fails on the copy refuses the upgrade: leader untouched, scratch database gone', async () => {
    await fresh('2.19.0')
    // a database the new binary cannot migrate: goose reports out-of-order (missing) migrations
    const c = await db!.client()
    await c.query('INSERT INTO goose_migrations (version_id, is_applied) VALUES (999999, true)')
    await c.end()
    const before = await fingerprint()
    const r = await upgrade('2.20.0', { 'rehearse-migration': 'true' })
    expect(r.outputs.result).toBe('failed')
    expect(r.exitCode).toBe(1)
    expect(visible(r.stdout)).toMatch(
      /::error::migration rehearsal failed: .*chainlink:2\.20\.0 'node db migrate' .*exited 1/
    )
    expect(r.stdout).toMatch(/missing \(out-of-order\) migrations/)
    expect(await fingerprint()).toEqual(before)
    // this run's copy is gone (other files' rehearsals may run on the shared server meanwhile)
    expect(scratchOf(r)).toMatch(/^clr_rehearsal_/)
    expect(await scratchDatabases()).not.toContain(scratchOf(r))
    // the run ended cleanly: the next operation needs no repair
    const s = await runAction({ operation: 'status', container: name, 'state-dir': stateDir })
    expect(s.exitCode).toBe(0)
  })

  test('a cancel during the rehearsal ends it: its container and scratch database gone, leader untouched', async () => {
    // every migration of the copy takes 20 s (the rehearsal runs with the node's own env): the
    // runner's cancel (SIGINT, then SIGKILL 10 s later) comes long before they end (review N11)
    await fresh('2.19.0', { SIM_SLOW_MIGRATION_MS: '20000' })
    const before = await fingerprint()
    const r = await runAction(
      {
        operation: 'upgrade',
        container: name,
        image: simImage('2.20.0-slow-migrations'),
        'state-dir': stateDir,
        'backup-dir': join(stateDir, 'backups'),
        'rehearse-migration': 'true'
      },
      { cancelWhen: atLine(/rehearsal: .* db migrate against/) }
    )
    expect(r.stdout).not.toMatch(/migrated a copy of the database/)
    // nothing new after the cancel
    expect(visible(r.stdout).split('--- post ---')[0]).not.toMatch(/standby started/)
    const rehearsals = (await docker.listContainers({ all: true })).filter((c) =>
      c.Names.some((x) => x.startsWith(`/${name}-rehearsal-`))
    )
    expect(rehearsals).toEqual([])
    // this run's copy is gone (other files' rehearsals may run on the shared server meanwhile)
    expect(scratchOf(r)).toMatch(/^clr_rehearsal_/)
    expect(await scratchDatabases()).not.toContain(scratchOf(r))
    expect(await fingerprint()).toEqual(before)
  })

  test('the runner killed during the rehearsal: repair removes its container and scratch database', async () => {
    // each migration of the copy takes 20 s: the kill lands while `db migrate` runs (review N11)
    await fresh('2.19.0', { SIM_SLOW_MIGRATION_MS: '20000' })
    const before = await fingerprint()
    const scratchBefore = await scratchDatabases()
    const ours = async () => (await scratchDatabases()).filter((d) => !scratchBefore.includes(d))
    const rehearsals = async () =>
      (await docker.listContainers({ all: true })).filter((c) =>
        c.Names.some((x) => x.startsWith(`/${name}-rehearsal-`))
      )
    const r = await runAction(
      {
        operation: 'upgrade',
        container: name,
        image: simImage('2.20.0-slow-migrations'),
        'state-dir': stateDir,
        'backup-dir': join(stateDir, 'backups'),
        'rehearse-migration': 'true'
      },
      // a few seconds after the step's line: its container runs `db migrate` by then
      { hooks: [{ when: atLine(/rehearsal: .* db migrate against/), do: 'sigkill', delayMs: 4000 }] }
    )
    expect(r.killed).toBe(true)
    // what the kill left: the one-off container migrating, the scratch copy
    expect((await rehearsals()).length).toBe(1)
    expect((await ours()).length).toBe(1)
    const rep = await runAction({ operation: 'repair', container: name, 'state-dir': stateDir })
    expect(rep.exitCode).toBe(0)
    expect(await rehearsals()).toEqual([])
    expect(await ours()).toEqual([])
    expect(await fingerprint()).toEqual(before)
  })

  test('a good rehearsal reports its duration as the expected start-up time, then the upgrade goes through', async () => {
    await fresh('2.19.0')
    const r = await upgrade('2.20.0', { 'rehearse-migration': 'true' })
    expect(r.outputs.result).toBe('upgraded')
    expect(r.exitCode).toBe(0)
    expect(r.summary).toMatch(
      /\| Migration rehearsal \| .*chainlink:2\.20\.0 migrated a copy of the database in [\d.]+ (ms|s): expect about that long before the new node's StartUpHealthReport/
    )
    expect(r.summary).toMatch(/ db migrate against clr_rehearsal_/)
    // this run's copy is gone (other files' rehearsals may run on the shared server meanwhile)
    expect(scratchOf(r)).toMatch(/^clr_rehearsal_/)
    expect(await scratchDatabases()).not.toContain(scratchOf(r))
    expect((await containerState(name))?.image).toBe(simImage('2.20.0'))
  })
})
