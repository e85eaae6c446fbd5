// Podman hosts (docs/podman.md): the action against Debian's podman (4.3 on Debian 12) serving
// the Docker-compatible API on a socket of the bed's own, nodes started through that API with
// host networking (they reach the bed's Postgres on 127.0.0.1). What Podman 4.3 cannot do for the
// handoff is refused before anything changes, never found out mid-handoff.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Docker from 'dockerode'
import { createDb, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { runAction, type ActionRun } from '../support/action.js'
import { containerState, nodeUrl, readyz, startNode, waitReady, writers } from '../support/node.js'
import { ensurePodman, podmanCli, podmanDockerHost, podmanMissing, stopPodman } from '../support/podman.js'

const missing = podmanMissing()
if (missing) console.warn(`SKIPPED test/integration/podman.test.ts: ${missing}`)
const describePodman = missing ? describe.skip : describe

const prefix = uniqueName('clr-pm')
let n = 0

describePodman('a node on Podman 4.3 through its Docker-compatible API', () => {
  let podman: Docker
  let startedPid: number | undefined
  const dbs: TestDb[] = []

  beforeAll(() => {
    ;({ api: podman, startedPid } = ensurePodman(['2.19.0', '2.20.0', '2.20.0-never-ready']))
  }, 300000)

  afterAll(async () => {
    if (podman) await removeContainers(prefix, podman)
    for (const db of dbs) await db.drop()
    try {
      podmanCli('pod', 'rm', '-f', `${prefix}-pod`)
    } catch {
      // no pod made
    }
    stopPodman(startedPid)
  })

  /** A node started by the podman CLI (what the Docker API cannot express: pods, network aliases). */
  function podmanRun(name: string, dbUrl: string, args: string[]) {
    const host = args.includes('host')
    const port = host ? 20000 + Math.floor(Math.random() * 20000) : 6688
    const config = `[Database.Lock]\nLeaseDuration = '3s'\nLeaseRefreshInterval = '500ms'\n[WebServer]\nHTTPPort = ${port}\n`
    podmanCli(
      'run',
      '-d',
      '--name',
      name,
      ...args,
      '-e',
      `CL_DATABASE_URL=${dbUrl}`,
      '-e',
      `CL_CONFIG=${config}`,
      simImage('2.19.0')
    )
  }

  async function node(opts: Partial<Parameters<typeof startNode>[0]> = {}) {
    const db = await createDb('pm')
    dbs.push(db)
    const name = `${prefix}-${++n}`
    await startNode({ name, tag: '2.19.0', db, layout: 'host', api: podman, restart: 'no', ...opts })
    return { name, db }
  }

  function upgrade(name: string, extra: Record<string, string> = {}, tag = '2.20.0'): Promise<ActionRun> {
    const stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
    return runAction({
      operation: 'upgrade',
      container: name,
      image: simImage(tag),
      'docker-host': podmanDockerHost,
      'state-dir': stateDir,
      'backup-dir': join(stateDir, 'backups'),
      backup: 'false',
      'stable-for': '2s',
      ...extra
    })
  }

  /** The refused run changed nothing: the same container, running, on its image, leading. */
  async function expectUntouched(name: string, before: Awaited<ReturnType<typeof containerState>>) {
    expect(await containerState(name, podman)).toEqual(before)
    expect(await readyz((await nodeUrl(name, podman))!)).toBe(200)
    const left = (await podman.listContainers({ all: true })).filter((c) =>
      c.Names.some((x) => x.replace(/^\//, '').startsWith(`${name}-`))
    )
    expect(left.map((c) => c.Names[0])).toEqual([])
  }

  test('upgrade: the summary names Podman, the node ends on the new image with one writer', async () => {
    const { name, db } = await node()
    const r = await upgrade(name)
    expect(r.outputs.result).toBe('upgraded')
    expect(r.exitCode).toBe(0)
    expect(r.summary).toMatch(/\| Engine \| Podman Engine 4\.\d+\.\d+ \(Docker API 1\.\d+\) \|/)
    const st = await containerState(name, podman)
    expect(st).toMatchObject({ running: true, image: simImage('2.20.0') })
    expect(await readyz((await nodeUrl(name, podman))!)).toBe(200)
    const w = await writers(db)
    expect(w.interleaved).toBe(false)
    expect(w.versions.at(-1)).toBe('2.20.0')
    // nothing of the run left beside the node
    const others = (await podman.listContainers({ all: true })).filter((c) =>
      c.Names.some((x) => x.replace(/^\//, '').startsWith(`${name}-`))
    )
    expect(others).toEqual([])
  }, 180000)

  test('a new image that never becomes ready: rolled back on Podman, the old container leads again', async () => {
    const { name, db } = await node()
    const before = await containerState(name, podman)
    const r = await upgrade(name, { 'ready-timeout': '8s' }, '2.20.0-never-ready')
    expect(r.outputs.result).toBe('rolled-back')
    expect(r.exitCode).toBe(1)
    expect(await containerState(name, podman)).toEqual(before)
    expect(await readyz((await nodeUrl(name, podman))!)).toBe(200)
    const w = await writers(db)
    expect(w.interleaved).toBe(false)
    expect(w.versions.at(-1)).toBe('2.19.0')
    // the new image migrated the DB first: its `node db rollback` ran as a one-off Podman container
    expect(r.summary).toMatch(/database rolled back/)
    const left = (await podman.listContainers({ all: true })).filter((c) =>
      c.Names.some((x) => x.replace(/^\//, '').startsWith(`${name}-`))
    )
    expect(left.map((c) => c.Names[0])).toEqual([])
  }, 240000)

  test('a --rm leader: its rollback copy is created with policy no (no update call), and the upgrade ends clean', async () => {
    const { name, db } = await node({ hostConfig: { AutoRemove: true } })
    const r = await upgrade(name)
    expect(r.outputs.result).toBe('upgraded')
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toMatch(/previous kept/)
    expect(await containerState(name, podman)).toMatchObject({ running: true, image: simImage('2.20.0') })
    expect((await writers(db)).interleaved).toBe(false)
  }, 180000)

  test('a node on a user network with an alias: the new node is on that network only, under that alias', async () => {
    const net = `${prefix}-net`
    podmanCli('network', 'create', net)
    try {
      const db = await createDb('pm')
      dbs.push(db)
      const name = `${prefix}-${++n}`
      // the bed's Postgres listens on the docker0 gateway, which a Podman network reaches through the host
      podmanRun(name, db.bridgeUrl, ['--network', net, '--network-alias', 'chainlink-node'])
      await waitReady({ name }, 30000, podman)
      const r = await upgrade(name)
      expect(r.outputs.result).toBe('upgraded')
      const info = await podman.getContainer(name).inspect()
      expect(info.Config.Image).toBe(simImage('2.20.0'))
      expect(Object.keys(info.NetworkSettings.Networks)).toEqual([net])
      expect(info.NetworkSettings.Networks[net].Aliases).toContain('chainlink-node')
      expect((await writers(db)).interleaved).toBe(false)
    } finally {
      await removeContainers(prefix, podman)
      podmanCli('network', 'rm', '-f', net)
    }
  }, 180000)

  test("restart policy 'always' on Podman 4: refused in preflight by name and reason, nothing changed", async () => {
    const { name } = await node({ restart: 'always' })
    const before = await containerState(name, podman)
    const r = await upgrade(name)
    expect(r.exitCode).not.toBe(0)
    expect(r.outputs.result).toBe('failed')
    expect(r.summary).toContain(
      `'${name}' has restart policy 'always' and Podman Engine 4.3.1 (Docker API 1.41) cannot change a container's restart policy`
    )
    expect(r.summary).toMatch(/Recreate '.*' with --restart=no, or move to Podman 5 or later/)
    // refused before the pull, the standby or any stop
    expect(r.stdout).not.toMatch(/standby started|pull:/)
    await expectUntouched(name, before)
    // status says so before anyone tries
    const st = await runAction({ operation: 'status', container: name, 'docker-host': podmanDockerHost })
    expect(st.exitCode).toBe(0)
    expect(st.summary).toMatch(/\| Engine \| Podman Engine 4\.3\.1 \(Docker API 1\.41\) \|/)
    expect(st.summary).toMatch(/\| An upgrade would be refused \| '.*' has restart policy 'always'/)
  }, 180000)

  test('a container a systemd unit owns (PODMAN_SYSTEMD_UNIT) is refused by name and unit', async () => {
    const { name } = await node({ labels: { PODMAN_SYSTEMD_UNIT: 'container-chainlink.service' } })
    const before = await containerState(name, podman)
    const r = await upgrade(name)
    expect(r.exitCode).not.toBe(0)
    expect(r.summary).toContain(
      `'${name}' is run by systemd unit 'container-chainlink.service' (label PODMAN_SYSTEMD_UNIT)`
    )
    await expectUntouched(name, before)
  }, 180000)

  test('a container in a pod is refused by name and pod', async () => {
    const db = await createDb('pm')
    dbs.push(db)
    const name = `${prefix}-${++n}`
    const pod = `${prefix}-pod`
    // no infra container: its pause image is not on this machine; the pod still owns the container
    podmanCli('pod', 'create', '--infra=false', '--name', pod)
    podmanRun(name, db.url, ['--pod', pod, '--network', 'host'])
    const before = await containerState(name, podman)
    const r = await upgrade(name)
    expect(r.exitCode).not.toBe(0)
    expect(r.summary).toContain(`'${name}' runs in Podman pod '${pod}'`)
    expect(await containerState(name, podman)).toEqual(before)
  }, 180000)
})
