// The command line (dist/cli.js) drives the same engine as the action: upgrade, handoff and
// status of a failover pair on the bed, each compared with what the action reports; then an
// upgrade that rolls back exits 3. The node's textfile in state-dir and the webhook (a server on
// 127.0.0.1) follow every CLI run.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createDb, loadBed, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { runAction, visible } from '../support/action.js'
import { containerState, startNode } from '../support/node.js'
import { readPromText } from '../support/prom-text.js'

const root = resolve(import.meta.dirname, '../..')
const prefix = uniqueName('clr-cli')
const a = `${prefix}-a`
const b = `${prefix}-b`
let db: TestDb
const stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))

interface CliRun {
  code: number | null
  json: { result: string; ok: boolean; message?: string; outputs: Record<string, string> }
  stderr: string
}

function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((res) => {
    const child = spawn(loadBed().node24, [join(root, 'dist/cli.js'), ...args, '--json'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('exit', (code) => res({ code, json: JSON.parse(out.trim().split('\n').pop() ?? '{}'), stderr: err }))
  })
}

const common = ['--state-dir', stateDir, '--backup-dir', join(stateDir, 'backups'), '--stable-for', '2s']
const commonInputs = { 'state-dir': stateDir, 'backup-dir': join(stateDir, 'backups'), 'stable-for': '2s' }

/** The webhook's receiver: every document POSTed to it. */
const hooks: Array<{ url?: string; body: string }> = []
let hookServer: Server
let hookUrl: string

/** The node's textfile (the pair's key is its two names, sorted). */
function textfile() {
  const path = join(stateDir, `chainlink_rollout_${[a, b].sort().join('+')}.prom`)
  const text = readFileSync(path, 'utf8')
  const { problems, samples } = readPromText(text)
  expect(problems).toEqual([])
  const value = (name: string, labels: Record<string, string> = {}) =>
    samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))?.value
  return { path, text, samples, value }
}

beforeAll(async () => {
  hookServer = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => (body += d.toString()))
    req.on('end', () => {
      hooks.push({ url: req.url, body })
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r))
  hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook/s3cret-hook-token`
  db = await createDb('cli')
  await startNode({ name: a, tag: '2.19.0', db })
  await startNode({ name: b, tag: '2.19.0', db, noWait: true })
})
afterAll(async () => {
  hookServer.closeAllConnections()
  hookServer.close()
  await removeContainers(prefix)
  await db.drop()
})

describe('the command line', () => {
  test('status: the same result and outputs as the action', async () => {
    const c = await runCli(['status', '--container', a, '--standby', b, ...common])
    expect(c.code).toBe(0)
    expect(c.json.result).toBe('ok')
    // a leads unless a loaded host let its 3 s lease lapse to b: either way both tools must agree
    expect([a, b]).toContain(c.json.outputs.leader)
    const r = await runAction({ operation: 'status', container: a, standby: b, ...commonInputs })
    expect(r.outputs.result).toBe(c.json.result)
    const same = (o: Record<string, string | undefined>) => ({
      leader: o.leader,
      image: o.image,
      layout: o.layout,
      'leader-host': o['leader-host']
    })
    expect(same(r.outputs)).toEqual(same(c.json.outputs))
    expect(same(r.outputs)).toMatchObject({ layout: 'ports', 'leader-host': 'local' })
    // with --json, stdout is the JSON alone and progress goes to stderr; the DB password is never printed
    expect(c.stderr).toMatch(/database URL from container env CL_DATABASE_URL/)
    expect(c.stderr).not.toContain('bed-test-password')
  })

  test('handoff through the CLI, back through the action: the same results', async () => {
    const c = await runCli(['handoff', '--container', a, '--standby', b, ...common])
    expect(c.code).toBe(0)
    expect(c.json.result).toBe('ok')
    expect(c.json.outputs.leader).toBe(b)
    const r = await runAction({ operation: 'handoff', container: b, standby: a, ...commonInputs })
    expect(r.exitCode).toBe(0)
    expect(r.outputs.result).toBe('ok')
    expect(r.outputs.leader).toBe(a)
  })

  test('upgrade through the CLI; the action then finds it unchanged, and so does the CLI', async () => {
    const c = await runCli([
      'upgrade',
      '--container',
      a,
      '--standby',
      b,
      '--image',
      simImage('2.20.0'),
      '--webhook-url',
      hookUrl,
      ...common
    ])
    expect(c.code).toBe(0)
    expect(c.json.result).toBe('upgraded')
    // the webhook got one document: the outputs, the timeline, the digests
    expect(hooks).toHaveLength(1)
    expect(hooks[0].url).toBe('/hook/s3cret-hook-token')
    const doc = JSON.parse(hooks[0].body)
    expect(doc).toMatchObject({ schema: 1, operation: 'upgrade', step: 'cli', result: 'upgraded', ok: true })
    expect(doc.outputs).toEqual(c.json.outputs)
    expect(doc.digests.image).toBe(/@(sha256:[0-9a-f]{64})$/.exec(c.json.outputs.image)?.[1])
    expect(doc.timeline.length).toBeGreaterThan(3)
    expect(doc.handoffs.length).toBeGreaterThan(0)
    // the webhook URL is a secret (its token): never printed
    expect(c.stderr + JSON.stringify(c.json)).not.toContain('s3cret-hook-token')
    expect(hooks[0].body).not.toContain(loadBed().pg.password)
    // the textfile: valid, private as all of state-dir, the upgrade and its measured leader gap
    const t = textfile()
    expect(statSync(t.path).mode & 0o777).toBe(0o600)
    expect(t.value('chainlink_rollout_last_result', { operation: 'upgrade', result: 'upgraded' })).toBe(1)
    expect(t.value('chainlink_rollout_last_success', { operation: 'upgrade' })).toBe(1)
    expect(t.value('chainlink_rollout_leader_gap_seconds')).toBeCloseTo(
      Number(c.json.outputs['leader-gap-ms']) / 1000,
      3
    )
    expect(t.value('chainlink_rollout_rollbacks_total')).toBe(0)
    expect(t.value('chainlink_rollout_quarantined_digests')).toBe(0)
    // the pre-upgrade backup is the newest
    expect(t.value('chainlink_rollout_backup_newest_size_bytes', { kind: 'pre-upgrade' })).toBeGreaterThan(0)
    const at = t.value('chainlink_rollout_backup_newest_timestamp_seconds')!
    expect(Date.now() / 1000 - at).toBeGreaterThan(0)
    expect(Date.now() / 1000 - at).toBeLessThan(600)
    // the earlier status and handoff runs are there too
    expect(t.value('chainlink_rollout_last_result', { operation: 'status', result: 'ok' })).toBe(1)
    expect(t.value('chainlink_rollout_last_result', { operation: 'handoff', result: 'ok' })).toBe(1)
    expect(c.json.outputs.image).toMatch(/chainlink:2\.20\.0@sha256:[0-9a-f]{64}$/)
    expect(c.json.outputs['previous-image']).toBe(simImage('2.19.0'))
    expect((await containerState(a))?.image).toBe(simImage('2.20.0'))
    expect((await containerState(b))?.image).toBe(simImage('2.20.0'))
    const r = await runAction({
      operation: 'upgrade',
      container: a,
      standby: b,
      image: simImage('2.20.0'),
      ...commonInputs
    })
    expect(r.outputs.result).toBe('unchanged')
    expect(r.outputs.image).toBe(c.json.outputs.image)
    const again = await runCli(['upgrade', '--container', a, '--standby', b, '--image', simImage('2.20.0'), ...common])
    expect(again.json.result).toBe('unchanged')
    expect(again.code).toBe(0)
  })

  test('a bad flag value: exit 2 naming the input; the action fails with 1, as the runner expects', async () => {
    const c = await runCli(['upgrade', '--container', a, '--image', simImage('2.20.0'), '--window', 'Mon 25:00-26:00'])
    expect(c.code).toBe(2)
    expect(c.json.message).toMatch(/^Input 'window' /)
    const r = await runAction({
      operation: 'upgrade',
      container: a,
      image: simImage('2.20.0'),
      window: 'Mon 25:00-26:00'
    })
    expect(r.exitCode).toBe(1)
    expect(visible(r.stdout)).toContain(`::error::${c.json.message}`)
  })

  test('an upgrade that rolls back: exit 3, the old image serves; the textfile counts it', async () => {
    const before = (await containerState(a))?.image
    const c = await runCli([
      'upgrade',
      '--container',
      a,
      '--standby',
      b,
      '--image',
      simImage('2.20.0-never-ready'),
      '--ready-timeout',
      '8s',
      '--webhook-url',
      hookUrl,
      ...common
    ])
    expect(c.json.result).toBe('rolled-back')
    expect(c.code).toBe(3)
    expect(c.json).toMatchObject({ ok: false, exitCode: 3 })
    expect((await containerState(a))?.image).toBe(before)
    expect((await containerState(b))?.image).toBe(before)
    const t = textfile()
    expect(t.value('chainlink_rollout_last_result', { operation: 'upgrade', result: 'rolled-back' })).toBe(1)
    expect(t.value('chainlink_rollout_last_result', { operation: 'upgrade', result: 'upgraded' })).toBeUndefined()
    expect(t.value('chainlink_rollout_last_success', { operation: 'upgrade' })).toBe(0)
    expect(t.value('chainlink_rollout_rollbacks_total')).toBe(1)
    expect(t.value('chainlink_rollout_quarantined_digests')).toBe(1)
    const doc = JSON.parse(hooks.at(-1)!.body)
    expect(doc).toMatchObject({ result: 'rolled-back', ok: false })
    expect(doc.digests.quarantined).toHaveLength(1)
  })
})
