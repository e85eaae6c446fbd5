// One update path (docs/other-updaters.md): a Watchtower container that watches the node, or
// podman's io.containers.autoupdate label on it, is found in preflight and the upgrade refused,
// naming it, with nothing changed; a node Watchtower excludes by its label goes ahead; the
// operator's allow-other-updaters goes ahead with a warning naming it. Run as the runner runs the
// action, against the real bed. The fake Watchtower is the simulator image under a local tag
// named like Watchtower's (or carrying Watchtower's own label), idling; it watches only its own
// scope, so the other tests running beside this one on the same Docker host are not refused.
import { afterAll, afterEach, describe, expect, test } from '@jest/globals'
import { mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb, docker, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { annotationTitles, runAction, visible, type ActionRun } from '../support/action.js'
import { containerState, startNode } from '../support/node.js'

const prefix = uniqueName('clr-updaters')
const WT = 'com.centurylinklabs.watchtower'
/** Watchtower's scope of this file's fakes: only nodes labelled with it are watched */
const scope = prefix
const fakeRepo = `${prefix}/watchtower`
let n = 0
let db: TestDb | undefined
let name: string
let stateDir: string

afterAll(async () => {
  await removeContainers(prefix)
  await docker
    .getImage(`${fakeRepo}:fake`)
    .remove()
    .catch(() => undefined)
})

afterEach(async () => {
  await removeContainers(prefix)
  await db?.drop()
  db = undefined
})

async function fresh(labels: Record<string, string>): Promise<void> {
  db = await createDb('updaters')
  name = `${prefix}-${++n}`
  stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
  await startNode({ name, tag: '2.18.0', db, layout: 'ports', labels })
}

/** A container that looks like Watchtower to the action: by image name, or by Watchtower's own label. */
async function fakeWatchtower(by: 'image' | 'label', env: Record<string, string> = {}): Promise<string> {
  let image = simImage('2.18.0')
  if (by === 'image') {
    await docker.getImage(image).tag({ repo: fakeRepo, tag: 'fake' })
    image = `${fakeRepo}:fake`
  }
  const wt = `${prefix}-wt-${++n}`
  const c = await docker.createContainer({
    name: wt,
    Image: image,
    Entrypoint: ['node', '-e', 'setTimeout(() => {}, 600000)'],
    Env: Object.entries({ WATCHTOWER_SCOPE: scope, ...env }).map(([k, v]) => `${k}=${v}`),
    Labels: by === 'label' ? { [WT]: 'true' } : {},
    Healthcheck: { Test: ['NONE'] }
  })
  await c.start()
  return wt
}

const inputs = (extra: Record<string, string> = {}) => ({
  container: name,
  'state-dir': stateDir,
  'backup-dir': join(stateDir, 'backups'),
  'stable-for': '2s',
  ...extra
})

const errorLines = (r: ActionRun) =>
  visible(r.stdout)
    .split('\n')
    .filter((l) => l.startsWith('::error'))

/** Nothing changed: the same container, running, on the old image; no run containers, no journal. */
async function expectUntouched(id: string): Promise<void> {
  expect(await containerState(name)).toEqual({ id, running: true, image: simImage('2.18.0') })
  const ours = (await docker.listContainers({ all: true }))
    .flatMap((c) => c.Names.map((x) => x.replace(/^\//, '')))
    .filter((x) => x.startsWith(`${name}-rollout`))
  expect(ours).toEqual([])
  expect(readdirSync(stateDir).filter((f) => f.endsWith('.journal.json'))).toEqual([])
}

describe('another updater of the node: refused by name before anything changes', () => {
  test.each(['image', 'label'] as const)(
    'a Watchtower container (found by its %s) watching the node: refused naming it, nothing changed',
    async (by) => {
      await fresh({ [`${WT}.scope`]: scope })
      const id = (await containerState(name))!.id
      const wt = await fakeWatchtower(by)
      const r = await runAction({ operation: 'upgrade', image: simImage('2.19.0'), ...inputs() })
      expect(r.exitCode).toBe(1)
      expect(r.outputs.result).toBe('failed')
      const err = errorLines(r)[0]
      expect(err).toContain(`Watchtower '${wt}'`)
      expect(err).toContain(`watches '${name}'`)
      expect(err).toContain('allow-other-updaters: true')
      expect(r.summary).toContain(`Watchtower '${wt}'`)
      // the job log: the run's steps in a group, the error annotation titled with operation, node and result
      expect(r.stdout).toContain(`::group::chainlink-rollout upgrade of ${name}\n`)
      expect(r.stdout).toMatch(/^::endgroup::$/m)
      expect(annotationTitles(r.stdout, 'error')).toEqual([`chainlink-rollout upgrade of ${name}: failed`])
      await expectUntouched(id)
    }
  )

  test('the node excluded by its label com.centurylinklabs.watchtower.enable=false: the upgrade goes ahead', async () => {
    await fresh({ [`${WT}.scope`]: scope, [`${WT}.enable`]: 'false' })
    await fakeWatchtower('image')
    const r = await runAction({ operation: 'upgrade', image: simImage('2.19.0'), ...inputs() })
    expect(r.outputs.result).toBe('upgraded')
    expect(r.exitCode).toBe(0)
    expect((await containerState(name))?.image).toBe(simImage('2.19.0'))
  })

  test('Watchtower with WATCHTOWER_LABEL_ENABLE and the node not opted in: the upgrade goes ahead', async () => {
    await fresh({ [`${WT}.scope`]: scope })
    await fakeWatchtower('label', { WATCHTOWER_LABEL_ENABLE: 'true' })
    const r = await runAction({ operation: 'upgrade', image: simImage('2.19.0'), ...inputs() })
    expect(r.outputs.result).toBe('upgraded')
  })

  test('the io.containers.autoupdate label on the node: refused naming it; allow-other-updaters goes ahead with a warning', async () => {
    await fresh({ 'io.containers.autoupdate': 'registry' })
    const id = (await containerState(name))!.id
    const r = await runAction({ operation: 'upgrade', image: simImage('2.19.0'), ...inputs() })
    expect(r.exitCode).toBe(1)
    expect(errorLines(r)[0]).toContain(`'${name}' carries io.containers.autoupdate=registry`)
    await expectUntouched(id)

    const allowed = await runAction({
      operation: 'upgrade',
      image: simImage('2.19.0'),
      ...inputs({ 'allow-other-updaters': 'true' })
    })
    expect(allowed.outputs.result).toBe('upgraded')
    expect(
      visible(allowed.stdout)
        .split('\n')
        .filter((l) => l.startsWith('::warning'))
        .join('\n')
    ).toContain('io.containers.autoupdate=registry')
    expect(annotationTitles(allowed.stdout, 'warning')).toContain(`chainlink-rollout upgrade of ${name}`)
    expect((await containerState(name))?.image).toBe(simImage('2.19.0'))
  })
})
