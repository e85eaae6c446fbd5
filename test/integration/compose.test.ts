// A compose-managed node, run as the runner runs the action against the real bed: the node is
// brought up by `docker compose` (the v2 plugin when installed, else Debian's docker-compose
// 1.29, which finds a service's containers by the same labels; docs/compose.md). During the
// upgrade the standby is no second replica of the service; afterwards the operator's compose
// commands (docs/reliability.md, "Compose-managed nodes") neither recreate nor downgrade the node.
import { afterAll, describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb, docker, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { runAction, visible } from '../support/action.js'
import { nodeUrl, readyz, waitReady, writers } from '../support/node.js'
import { freePort } from '../../src/docker/client.js'

const project = uniqueName('clrcmp').replace(/-/g, '')
const service = 'chainlink'
const dir = mkdtempSync(join(tmpdir(), 'clr-compose-'))
const file = join(dir, 'compose.yml')
let db: TestDb | undefined

/** `docker compose` (v2) when the plugin is there, else `docker-compose` (v1). */
const cli: [string, string[]] = (() => {
  try {
    execFileSync('docker', ['compose', 'version'], { stdio: 'ignore' })
    return ['docker', ['compose']]
  } catch {
    return ['docker-compose', []]
  }
})()

function compose(...args: string[]): string {
  return execFileSync(cli[0], [...cli[1], '-p', project, '-f', file, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe']
  })
}

function writeCompose(tag: string, port: number, dbUrl: string) {
  writeFileSync(
    file,
    `version: '3.8'
services:
  ${service}:
    image: ${simImage(tag)}
    network_mode: bridge
    restart: unless-stopped
    ports: ['127.0.0.1:${port}:6688']
    labels: { test.chainlink-rollout: 'yes' }
    environment:
      CL_DATABASE_URL: '${dbUrl}'
      LEASE_LOCK_DURATION: 3s
      LEASE_LOCK_REFRESH_INTERVAL: 500ms
      CL_CONFIG: |
        [Database.Lock]
        LeaseDuration = '3s'
        LeaseRefreshInterval = '500ms'
`
  )
}

/** The containers compose counts as the service's replicas (its own labels, as compose filters). */
async function replicas(): Promise<string[]> {
  const list = await docker.listContainers({
    all: true,
    filters: {
      label: [`com.docker.compose.project=${project}`, `com.docker.compose.service=${service}`]
    }
  })
  return list.filter((c) => c.Labels['com.docker.compose.oneoff'] !== 'True').map((c) => c.Names[0].slice(1))
}

afterAll(async () => {
  try {
    compose('down', '--remove-orphans')
  } catch {
    // already gone
  }
  for (const c of await docker.listContainers({ all: true }))
    if (c.Names.some((n) => n.startsWith(`/${project}`)))
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined)
  rmSync(dir, { recursive: true, force: true })
  await db?.drop()
})

describe('a compose-managed node', () => {
  test('upgrade: the standby is no replica; afterwards compose neither recreates nor downgrades the node', async () => {
    db = await createDb('cmp')
    const port = await freePort('127.0.0.1')
    writeCompose('2.18.0', port, db.bridgeUrl)
    compose('up', '-d')
    const ids = compose('ps', '-q').trim().split('\n')
    expect(ids.length).toBe(1)
    const name = (await docker.getContainer(ids[0]).inspect()).Name.slice(1)
    await waitReady({ name })
    const stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))

    // during the run: how many replicas compose would count once the standby is up
    let duringRun: string[] | undefined
    const r = await runAction(
      {
        operation: 'upgrade',
        container: name,
        image: simImage('2.19.0'),
        'state-dir': stateDir,
        'backup-dir': join(stateDir, 'backups'),
        'stable-for': '2s'
      },
      {
        hooks: [
          {
            when: (out) => /standby started/.test(out),
            do: async () => {
              duringRun = await replicas()
            }
          }
        ]
      }
    )
    expect(r.outputs.result).toBe('upgraded')
    expect(r.exitCode).toBe(0)
    expect(duringRun).toEqual([name])
    // preflight said the compose file still names the old image (docs/other-updaters.md)
    expect(visible(r.stdout)).toContain(
      `::warning::'${name}' belongs to compose project '${project}' (${file}): update the service's image in that file too`
    )

    // after the run: compose sees exactly the node, serving the new image
    const leader = await docker.getContainer(name).inspect()
    expect(leader.Config.Image).toBe(simImage('2.19.0'))
    expect(await replicas()).toEqual([name])
    expect(compose('ps', '-q').trim()).toBe(leader.Id)

    // `compose up -d` before the file is updated: no downgrade, no recreation
    compose('up', '-d')
    let now = await docker.getContainer(name).inspect()
    expect(now.Id).toBe(leader.Id)
    expect(now.Config.Image).toBe(simImage('2.19.0'))
    expect(now.State.Running).toBe(true)

    // the file updated to the new image, then `compose up -d --no-recreate` (README): untouched
    writeCompose('2.19.0', port, db.bridgeUrl)
    compose('up', '-d', '--no-recreate')
    now = await docker.getContainer(name).inspect()
    expect(now.Id).toBe(leader.Id)
    expect(now.State.Running).toBe(true)
    expect(await readyz((await nodeUrl(name))!)).toBe(200)
    expect(await replicas()).toEqual([name])
    expect((await writers(db)).interleaved).toBe(false)
  })
})
