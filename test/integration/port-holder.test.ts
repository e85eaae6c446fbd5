// Input `port-holder` against the real bed (docs/port-holder.md): the conversion of a docs-layout
// node into the port-holder layout and back, the runs in that layout (upgrade, restart), a bad
// target and a dead runner during the conversion, and the holder's own failures. After each:
// one leader serving on the published port, no second writer, nothing of ours left over.
import { afterAll, afterEach, describe, expect, test } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createDb,
  docker,
  removeContainers,
  simImage,
  sleep,
  uniqueName,
  waitFor,
  type TestDb
} from '../support/bed.js'
import { atLine, runAction, type ActionRun, type RunOptions } from '../support/action.js'
import { readyz, startNode, writers } from '../support/node.js'
import { freePort } from '../../src/docker/client.js'
import { startDedicatedDockerd } from '../support/dedicated-dockerd.js'

const prefix = uniqueName('clr-ph')
let n = 0
let db: TestDb
let name: string
let stateDir: string
/** the published host ports: 6688 and a second one standing for P2P */
let port: number
let p2p: number

afterAll(async () => {
  await removeContainers(prefix)
})

afterEach(async () => {
  await removeContainers(name)
  await db?.drop()
})

async function fresh(tag = '2.18.0') {
  db = await createDb('ph')
  name = `${prefix}-${++n}`
  stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
  port = await freePort('127.0.0.1')
  p2p = await freePort('127.0.0.1', new Set([port]))
  await startNode({
    name,
    tag,
    db,
    layout: 'ports',
    labels: { 'op.label': 'kept' },
    env: { OPERATOR_ENV: 'kept' },
    hostConfig: {
      PortBindings: {
        '6688/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }],
        '6690/tcp': [{ HostIp: '127.0.0.1', HostPort: String(p2p) }]
      },
      ExtraHosts: ['example.internal:192.0.2.10']
    }
  })
}

function run(operation: string, extra: Record<string, string> = {}, opts: RunOptions = {}): Promise<ActionRun> {
  return runAction(
    {
      operation,
      container: name,
      'state-dir': stateDir,
      'backup-dir': join(stateDir, 'backups'),
      'stable-for': '2s',
      'health-url': 'http://127.0.0.1:{port}',
      ...extra
    },
    opts
  )
}

const inspect = (x: string) =>
  docker
    .getContainer(x)
    .inspect()
    .catch(() => undefined)
const url = () => `http://127.0.0.1:${port}`

/** The node in the holder layout: joined to `<name>-port-holder`, which has the node's ports. */
async function expectHolderLayout(tag: string) {
  const node = (await inspect(name))!
  const holder = (await inspect(`${name}-port-holder`))!
  expect(holder?.State.Running).toBe(true)
  expect(node.State.Running).toBe(true)
  expect(node.Config.Image).toBe(simImage(tag))
  expect(node.HostConfig.NetworkMode).toBe(`container:${holder.Id}`)
  expect(Object.keys(holder.HostConfig.PortBindings ?? {}).sort()).toEqual(['6688/tcp', '6690/tcp'])
  expect(holder.HostConfig.PortBindings?.['6690/tcp']?.[0]?.HostPort).toBe(String(p2p))
  expect(holder.HostConfig.ExtraHosts).toEqual(['example.internal:192.0.2.10'])
  expect(holder.HostConfig.RestartPolicy?.Name).toBe('unless-stopped')
  // what the node keeps: name, env, labels, restart policy
  expect(node.Config.Env).toContain('OPERATOR_ENV=kept')
  expect(node.Config.Labels['op.label']).toBe('kept')
  expect(node.HostConfig.RestartPolicy?.Name).toBe('unless-stopped')
  expect(await readyz(url())).toBe(200)
  return { node, holder }
}

/** The node on its own ports again, no holder. */
async function expectOwnPorts(tag: string) {
  const node = (await inspect(name))!
  expect(node.State.Running).toBe(true)
  expect(node.Config.Image).toBe(simImage(tag))
  expect(node.HostConfig.PortBindings?.['6688/tcp']?.[0]?.HostPort).toBe(String(port))
  expect(node.HostConfig.PortBindings?.['6690/tcp']?.[0]?.HostPort).toBe(String(p2p))
  expect(await inspect(`${name}-port-holder`)).toBeUndefined()
  expect(await readyz(url())).toBe(200)
}

async function leftovers(): Promise<string[]> {
  return (await docker.listContainers({ all: true }))
    .flatMap((c) => c.Names)
    .filter((x) => x.startsWith(`/${name}-`) && x !== `/${name}-port-holder`)
}

describe('port-holder: conversion', () => {
  test('upgrade with port-holder: true converts, the next upgrade and a restart hand off inside the holder, false converts back', async () => {
    await fresh()
    const r = await run('upgrade', { image: simImage('2.19.0'), 'port-holder': 'true' })
    expect(r.outputs.result).toBe('upgraded')
    expect(r.outputs.layout).toBe('holder')
    const { holder } = await expectHolderLayout('2.19.0')
    expect(await leftovers()).toEqual([])

    // an upgrade in the holder layout: a standby in the holder's namespace, no container start
    const r2 = await run('upgrade', { image: simImage('2.20.0') })
    expect(r2.outputs.result).toBe('upgraded')
    expect(r2.outputs.layout).toBe('holder')
    expect(r2.summary).toMatch(/in the network of '.*-port-holder'/)
    const after = await expectHolderLayout('2.20.0')
    // the holder was not touched: same container, same start
    expect(after.holder.Id).toBe(holder.Id)
    expect(after.holder.State.StartedAt).toBe(holder.State.StartedAt)
    expect(await leftovers()).toEqual([])

    const r3 = await run('restart', { 'port-holder': 'true' })
    expect(r3.outputs.result).toBe('ok')
    expect(r3.outputs.layout).toBe('holder')
    expect((await expectHolderLayout('2.20.0')).holder.State.StartedAt).toBe(holder.State.StartedAt)

    const st = await run('status')
    expect(st.outputs.layout).toBe('holder')

    const back = await run('handoff', { 'port-holder': 'false' })
    expect(back.outputs.result).toBe('ok')
    expect(back.outputs.layout).toBe('ports')
    await expectOwnPorts('2.20.0')
    expect(await leftovers()).toEqual([])
    expect((await writers(db)).interleaved).toBe(false)
  }, 240_000)

  test('a bad target during the conversion rolls back to the node on its own ports, no holder left', async () => {
    await fresh('2.19.0')
    const r = await run('upgrade', {
      image: simImage('2.20.0-never-ready'),
      'port-holder': 'true',
      'ready-timeout': '8s'
    })
    if (r.outputs.result !== 'rolled-back') console.log(r.stdout.split('\n').slice(-30).join('\n'))
    expect({ result: r.outputs.result }).toMatchObject({
      result: 'rolled-back'
    })
    expect(r.exitCode).not.toBe(0)
    await expectOwnPorts('2.19.0')
    expect(await leftovers()).toEqual([])
    expect((await writers(db)).interleaved).toBe(false)
  }, 180_000)

  test('the runner killed at the conversion swap: repair leaves a serving node', async () => {
    await fresh()
    const inputs = { image: simImage('2.19.0'), 'port-holder': 'true' }
    const r = await run('upgrade', inputs, {
      hooks: [{ when: atLine(/^swap \S+ -> /), do: 'sigkill', delayMs: 150 }]
    })
    expect(r.killed).toBe(true)
    const rep = await run('repair', { 'port-holder': 'true' })
    expect(['rolled-back', 'upgraded']).toContain(rep.outputs.result)
    // whichever way repair went, the node serves on the published port under its name
    await waitFor('published port ready', async () => (await readyz(url())) === 200, 30_000, 200)
    const node = (await inspect(name))!
    expect(node.State.Running).toBe(true)
    if (rep.outputs.result === 'upgraded') await expectHolderLayout('2.19.0')
    else await expectOwnPorts('2.18.0')
    expect(await leftovers()).toEqual([])
    expect((await writers(db)).interleaved).toBe(false)
  }, 180_000)
})

describe('port-holder: the holder fails', () => {
  test('the holder crashed: it comes back by its restart policy, status names the stranded node, repair starts it inside the holder again', async () => {
    await fresh()
    expect((await run('restart', { 'port-holder': 'true' })).outputs.layout).toBe('holder')
    // a crash, not `docker kill` (which Docker counts as a manual stop: no restart)
    process.kill((await inspect(`${name}-port-holder`))!.State.Pid, 'SIGKILL')
    await waitFor('holder back', async () => !!(await inspect(`${name}-port-holder`))?.State.Running, 20_000, 200)
    // the node still runs, in the old namespace, whose interface went with the holder: the
    // published port is dark and the node cannot renew its lease
    await sleep(500)
    expect(await readyz(url())).toBeUndefined()
    expect((await inspect(name))?.State.Running).toBe(true)
    // (status may still find the lease unexpired, or already expired: its exit code varies)
    const st = await run('status')
    expect(st.summary).toMatch(/started again .* old network namespace/)
    const r = await run('repair')
    expect(r.outputs.result).toBe('ok')
    expect(r.stdout).toMatch(/stranded: /)
    await expectHolderLayout('2.18.0')
    expect((await writers(db)).interleaved).toBe(false)
  }, 180_000)
})

describe('port-holder: a node started before its holder', () => {
  test('left exited with "cannot join network of a non running container" (as a daemon restart leaves it): repair starts it inside the holder', async () => {
    await fresh()
    expect((await run('restart', { 'port-holder': 'true' })).outputs.layout).toBe('holder')
    // the state a daemon restart leaves when it tries the node first: holder down, node's start failed
    await docker.getContainer(`${name}-port-holder`).stop()
    await docker.getContainer(name).stop({ t: 10 })
    await expect(docker.getContainer(name).start()).rejects.toThrow(/cannot join network/)
    expect((await inspect(name))?.State.Error).toMatch(/cannot join network of a non running container/)
    await docker.getContainer(`${name}-port-holder`).start()
    const rep = await run('repair')
    expect(rep.outputs.result).toBe('ok')
    expect(rep.stdout).toMatch(/stranded: .*could not start before its port holder/)
    await expectHolderLayout('2.18.0')
    expect((await writers(db)).interleaved).toBe(false)
  }, 180_000)
})

describe('port-holder: a failover pair sharing the holder', () => {
  test("the docs' pair on one port: a handoff and an upgrade inside the holder, then the leader killed and the port answers from the secondary", async () => {
    await fresh()
    expect((await run('restart', { 'port-holder': 'true' })).outputs.layout).toBe('holder')
    const holder = (await inspect(`${name}-port-holder`))!
    // the secondary, laid out by hand as docs/port-holder.md shows: joined to the same holder
    const secondary = `${name}-b`
    await startNode({
      name: secondary,
      tag: '2.18.0',
      db,
      layout: 'bridge',
      noWait: true,
      hostConfig: { NetworkMode: `container:${holder.Id}` }
    })
    const c = await db.client()
    const sessions = async () =>
      (
        await c.query<{ n: string }>(
          `SELECT count(DISTINCT application_name)::text AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'Chainlink %'`
        )
      ).rows[0].n
    const leaseApp = async () =>
      (await c.query<{ id: string }>('SELECT client_id::text AS id FROM lease_lock WHERE expires_at > now()')).rows[0]
        ?.id
    try {
      await waitFor('secondary waiting', async () => (await sessions()) === '2', 20_000, 200)
      const h = await run('handoff', { standby: secondary })
      expect(h.outputs.result).toBe('ok')
      expect(h.outputs.leader).toBe(secondary)
      expect(await readyz(url())).toBe(200)
      const up = await run('upgrade', { standby: secondary, image: simImage('2.19.0') })
      expect(up.outputs.result).toBe('upgraded')
      expect(await readyz(url())).toBe(200)
      for (const x of [name, secondary]) {
        const i = (await inspect(x))!
        expect(i.HostConfig.NetworkMode).toBe(`container:${holder.Id}`)
        expect(i.Config.Image).toBe(simImage('2.19.0'))
      }
      // failover: the leader dies without releasing; the other takes the lease when it runs out
      // and serves on the same published port
      const leader = up.outputs.leader
      const before = await leaseApp()
      await docker.getContainer(leader).kill()
      await waitFor(
        'the other instance leads',
        async () => {
          const now = await leaseApp()
          return !!now && now !== before
        },
        20_000,
        200
      )
      await waitFor('the published port answers again', async () => (await readyz(url())) === 200, 20_000, 100)
      expect((await writers(db)).interleaved).toBe(false)
    } finally {
      await c.end()
      await removeContainers(secondary)
    }
  }, 240_000)
})

describe('port-holder: the Docker daemon restarts', () => {
  test('a daemon stop and start (no live-restore): the holder comes back; a node Docker started before it is started inside it by repair', async () => {
    const d = await startDedicatedDockerd()
    try {
      d.cli('pull', '-q', simImage('2.18.0'))
      db = await createDb('ph')
      name = `${prefix}-${++n}`
      stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
      const node = await startNode({ name, tag: '2.18.0', db, layout: 'ports', api: d.api })
      port = node.port!
      const env = { DOCKER_HOST: d.host }
      const conv = await run('restart', { 'port-holder': 'true' }, { env })
      expect(conv.outputs.layout).toBe('holder')
      await d.down()
      await d.start()
      const state = async (x: string) => (await d.api.getContainer(x).inspect()).State
      await waitFor('holder back', async () => (await state(`${name}-port-holder`)).Running, 60_000, 500)
      // what Docker did with the node: started it after the holder, or left it (recorded)
      await sleep(3000)
      const nodeState = await state(name)
      const holderState = await state(`${name}-port-holder`)
      console.log(
        `daemon restart: holder started ${holderState.StartedAt}; node ${nodeState.Status} (started ${nodeState.StartedAt}, error '${nodeState.Error}')`
      )
      // Docker tries the node before its holder and leaves it exited ("cannot join network of a
      // non running container"); repair starts it inside the holder, held to the gates
      const rep = await run('repair', {}, { env })
      if (!nodeState.Running) {
        expect(rep.outputs.result).toBe('ok')
        expect(rep.stdout).toMatch(/stranded: .*could not start before its port holder/)
      }
      let last = ''
      await waitFor(
        'one leader in the holder layout',
        async () => {
          const st = await run('status', {}, { env })
          last = `${rep.stdout.split('\n').slice(-15).join('\n')}\n---\n${st.stdout.split('\n').slice(-10).join('\n')}`
          return st.outputs.layout === 'holder'
        },
        90_000,
        2000
      ).catch((e: Error) => {
        throw new Error(`${e.message}\n${last}`)
      })
      expect((await writers(db)).interleaved).toBe(false)
    } finally {
      await removeContainers(name, d.api).catch(() => undefined)
      await d.stop()
    }
  }, 300_000)
})
