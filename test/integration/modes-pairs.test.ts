// Every lock mode and topology operators run: v1 advisorylock and dual, v2 TOML,
// failover pairs with and without hand-back, handoff and rolling restart. After each: one
// leader serving, no second writer ever, the measured gap per handoff in the summary.
import { afterEach, describe, expect, test } from '@jest/globals'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { runAction, visible } from '../support/action.js'
import { containerState, nodeUrl, readyz, startNode, writers } from '../support/node.js'

const prefix = uniqueName('clr-mp')
let db: TestDb | undefined
let stateDir: string

afterEach(async () => {
  await removeContainers(prefix)
  await db?.drop()
  db = undefined
})

async function setup() {
  db = await createDb('mp')
  stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
  return db
}

function act(inputs: Record<string, string>) {
  return runAction({ 'state-dir': stateDir, 'backup-dir': join(stateDir, 'backups'), 'stable-for': '2s', ...inputs })
}

/** Exactly one of `names` serves; it is `leader`; every container runs `tag`; never two writers. */
async function expectPair(names: string[], leader: string, tag: string) {
  for (const n of names) {
    const st = await containerState(n)
    expect(st?.running).toBe(true)
    expect(st?.image).toBe(simImage(tag))
  }
  const ready = []
  for (const n of names) if ((await readyz((await nodeUrl(n))!)) === 200) ready.push(n)
  expect(ready).toEqual([leader])
  expect((await writers(db!)).interleaved).toBe(false)
}

describe('lock modes', () => {
  test('v1 advisorylock: upgrade 1.2.0 -> 1.13.0, the advisory lock proven before and after', async () => {
    const d = await setup()
    const name = `${prefix}-adv`
    await startNode({
      name,
      tag: '1.2.0',
      db: d,
      layout: 'bridge',
      env: { DATABASE_LOCKING_MODE: 'advisorylock', ADVISORY_LOCK_CHECK_INTERVAL: '500ms' }
    })
    const r = await act({ operation: 'upgrade', container: name, image: simImage('1.13.0') })
    expect(r.outputs.result).toBe('upgraded')
    expect(r.summary).toMatch(/lock \(advisorylock\) held by/)
    await expectPair([name], name, '1.13.0')
  })

  test('v1 dual: handoff of a single node through a temporary standby on the same image', async () => {
    const d = await setup()
    const name = `${prefix}-dual`
    await startNode({ name, tag: '1.13.0', db: d, layout: 'ports' })
    const before = await containerState(name)
    const r = await act({ operation: 'handoff', container: name })
    expect(r.exitCode).toBe(0)
    expect(r.outputs.result).toBe('ok')
    expect(r.summary).toMatch(/mode|dual/)
    expect(r.summary).toMatch(/lock \(dual\) held by/)
    await expectPair([name], name, '1.13.0')
    expect((await containerState(name))!.id).not.toBe(before!.id)
    // docs layout, default finish (swap): one new process took over on the original ports
    expect((await writers(d)).writers.length).toBe(2)
  })

  test('v1 dual -> v2: the new leader holds the lease, which v2 uses instead', async () => {
    const d = await setup()
    const name = `${prefix}-dual2`
    await startNode({ name, tag: '1.13.0', db: d, layout: 'bridge' })
    const r = await act({ operation: 'upgrade', container: name, image: simImage('2.18.0') })
    expect(r.outputs.result).toBe('upgraded')
    expect(r.summary).toMatch(/lock \(lease\) held by/)
    await expectPair([name], name, '2.18.0')
  })

  test('v2 node configured by TOML on a mounted volume: upgraded, settings read from the TOML', async () => {
    const d = await setup()
    const dir = mkdtempSync(join(tmpdir(), 'clr-toml-'))
    writeFileSync(
      join(dir, 'config.toml'),
      "[Database.Lock]\nLeaseDuration = '4s'\nLeaseRefreshInterval = '400ms'\n[WebServer]\nHTTPPort = 6688\n"
    )
    writeFileSync(join(dir, 'secrets.toml'), `[Database]\nURL = '${d.bridgeUrl}'\n`)
    chmodSync(dir, 0o755)
    for (const f of ['config.toml', 'secrets.toml']) chmodSync(join(dir, f), 0o644)
    const name = `${prefix}-toml`
    await startNode({
      name,
      tag: '2.19.0',
      db: d,
      env: { CL_DATABASE_URL: '', LEASE_LOCK_DURATION: '', LEASE_LOCK_REFRESH_INTERVAL: '' },
      binds: [`${dir}:/chainlink`],
      cmd: ['node', '-config', '/chainlink/config.toml', '-secrets', '/chainlink/secrets.toml', 'start']
    })
    const r = await act({ operation: 'upgrade', container: name, image: simImage('2.20.0') })
    expect(r.outputs.result).toBe('upgraded')
    expect(r.summary).toMatch(/lease 4\.00 s, refresh 400 ms/)
    expect(r.summary).toMatch(/v2 TOML/)
    expect(visible(r.stdout)).not.toContain('bed-test-password')
    await expectPair([name], name, '2.20.0')
  })
})

describe('failover pairs', () => {
  async function pair(tag = '2.18.0') {
    const d = await setup()
    const primary = `${prefix}-p`
    const secondary = `${prefix}-s`
    await startNode({ name: primary, tag, db: d, layout: 'ports' })
    await startNode({ name: secondary, tag, db: d, layout: 'ports', noWait: true })
    return { primary, secondary }
  }

  test('upgrade without hand-back: the secondary leads on the new image, the primary waits', async () => {
    const { primary, secondary } = await pair()
    const r = await act({ operation: 'upgrade', container: primary, standby: secondary, image: simImage('2.19.0') })
    expect(r.outputs.result).toBe('upgraded')
    expect(r.outputs.leader).toBe(secondary)
    expect(r.summary.match(/\| [^|]+ \| [^|]+ \| graceful \|/g)?.length).toBe(1)
    await expectPair([primary, secondary], secondary, '2.19.0')
  })

  test('upgrade with prefer-primary: handed back, the primary leads on the new image', async () => {
    const { primary, secondary } = await pair()
    const r = await act({
      operation: 'upgrade',
      container: primary,
      standby: secondary,
      image: simImage('2.19.0'),
      'prefer-primary': 'true'
    })
    expect(r.outputs.result).toBe('upgraded')
    expect(r.outputs.leader).toBe(primary)
    expect(r.summary.match(/\| [^|]+ \| [^|]+ \| graceful \|/g)?.length).toBe(2)
    await expectPair([primary, secondary], primary, '2.19.0')
  })

  test('handoff: leadership moves to the secondary, the old leader comes back as the standby', async () => {
    const { primary, secondary } = await pair('2.19.0')
    const r = await act({ operation: 'handoff', container: primary, standby: secondary })
    expect(r.exitCode).toBe(0)
    expect(r.outputs.leader).toBe(secondary)
    await expectPair([primary, secondary], secondary, '2.19.0')
  })

  test('rolling restart: both processes restarted, one leader throughout', async () => {
    const { primary, secondary } = await pair('2.19.0')
    const r = await act({ operation: 'restart', container: primary, standby: secondary })
    expect(r.exitCode).toBe(0)
    await expectPair([primary, secondary], secondary, '2.19.0')
  })

  test('a pair upgrade cancelled mid-way: the post step leaves one leader and a waiting standby', async () => {
    const { primary, secondary } = await pair()
    const r = await runAction(
      {
        operation: 'upgrade',
        container: primary,
        standby: secondary,
        image: simImage('2.19.0'),
        'state-dir': stateDir,
        'backup-dir': join(stateDir, 'backups'),
        'stable-for': '2s'
      },
      { cancelWhen: (out: string) => /stopped[^\n]*exited gracefully/.test(out) }
    )
    expect(r.stdout).toMatch(/SIGINT received/)
    expect(r.stdout).toMatch(/--- post ---[\s\S]*(finished|undid|rolled back)/)
    const images = new Set<string>()
    for (const n of [primary, secondary]) images.add((await containerState(n))!.image)
    expect(images.size).toBe(1)
    const tag = [...images][0].endsWith('2.19.0') ? '2.19.0' : '2.18.0'
    const ready = []
    for (const n of [primary, secondary]) if ((await readyz((await nodeUrl(n))!)) === 200) ready.push(n)
    expect(ready.length).toBe(1)
    await expectPair([primary, secondary], ready[0], tag)
  })

  test('a pair whose standby is dead is refused in preflight, nothing changed', async () => {
    const { primary, secondary } = await pair()
    const { docker } = await import('../support/bed.js')
    await docker.getContainer(secondary).stop({ t: 5 })
    const before = await containerState(primary)
    const r = await act({ operation: 'upgrade', container: primary, standby: secondary, image: simImage('2.19.0') })
    expect(r.exitCode).toBe(1)
    expect(visible(r.stdout)).toMatch(/::error::Input 'standby': .* not waiting for the lock/)
    expect(await containerState(primary)).toEqual(before)
  })
})
