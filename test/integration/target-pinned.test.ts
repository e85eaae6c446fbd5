// The image that runs is the image that was verified (review F19): the target's tag is pulled and
// its digest checked before the backup, which may take hours; a tag moved on the host meanwhile
// (another pull, a `docker tag`) must not put another image on the node.
import { afterAll, afterEach, expect, test } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb, docker, dockerCli, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { atLine, runAction } from '../support/action.js'
import { containerState, nodeUrl, readyz, startNode, writers } from '../support/node.js'

const name = uniqueName('clr-pin')
const tag = name.replace(/^clr-/, 'pin-')
let db: TestDb

afterEach(async () => {
  await removeContainers(name)
  await db?.drop()
})
afterAll(() => {
  dockerCli('rmi', '-f', simImage(tag))
})

test('a tag moved during the backup: the node runs the verified image, not what the tag names now', async () => {
  // a tag of the test's own, in the bed's registry, naming 2.19.0
  dockerCli('tag', simImage('2.19.0'), simImage(tag))
  dockerCli('push', '-q', simImage(tag))
  const verified = (await docker.getImage(simImage('2.19.0')).inspect()).Id
  const crashing = (await docker.getImage(simImage('2.20.0-crash-before-lock')).inspect()).Id
  db = await createDb('pin')
  const stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
  await startNode({ name, tag: '2.18.0', db, layout: 'ports' })
  const r = await runAction(
    {
      operation: 'upgrade',
      container: name,
      image: simImage(tag),
      'state-dir': stateDir,
      'backup-dir': join(stateDir, 'backups'),
      'stable-for': '2s'
    },
    // the tag now names an image that crashes at start: what `docker create <tag>` would run
    {
      hooks: [
        {
          when: atLine('backup:'),
          do: () => void dockerCli('tag', simImage('2.20.0-crash-before-lock'), simImage(tag))
        }
      ]
    }
  )
  expect((await docker.getImage(simImage(tag)).inspect()).Id).toBe(crashing)
  expect(r.outputs.result).toBe('upgraded')
  expect(r.exitCode).toBe(0)
  const running = await docker.getContainer(name).inspect()
  expect(running.Image).toBe(verified)
  expect((await containerState(name))?.running).toBe(true)
  expect(await readyz((await nodeUrl(name))!)).toBe(200)
  expect((await writers(db)).interleaved).toBe(false)
})
