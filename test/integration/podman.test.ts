// Podman hosts (docs/podman.md): the action against Debian's podman 4.3 serving the
// Docker-compatible API on a socket of its own (test/support/podman.ts starts it).
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { createDb, simImage, uniqueName, removeContainers, type TestDb } from '../support/bed.js'
import { runAction, visible } from '../support/action.js'
import { containerState, nodeUrl, readyz, startNode, writers } from '../support/node.js'

const SOCK = process.env.CLR_PODMAN_SOCK ?? '/run/clr-podman/podman.sock'
const podman = new Docker({ socketPath: SOCK })
const prefix = uniqueName('clr-pm')
let n = 0
let db: TestDb
let name: string
let stateDir: string

afterAll(async () => {
  await removeContainers(prefix, podman)
})

test('scratch', async () => {
  db = await createDb('pm')
  name = `${prefix}-${++n}`
  stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
  await startNode({ name, tag: '2.19.0', db, layout: 'host', api: podman, restart: 'no' })
  const r = await runAction({
    operation: 'upgrade',
    container: name,
    image: simImage('2.20.0'),
    'docker-host': `unix://${SOCK}`,
    'state-dir': stateDir,
    backup: 'false',
    'stable-for': '2s'
  })
  console.log(visible(r.stdout), r.summary)
  await db.drop()
}, 180000)
