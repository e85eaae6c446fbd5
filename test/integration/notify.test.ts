// The end of a run through the action (the bundle, run as the runner runs it): a node configured
// with a secret in every place a node keeps one (support/secret-node.ts) is upgraded, then
// upgraded to an image that never gets ready (it prints its RPC URL, key and all) and rolls back.
// Each run POSTs one JSON document to a webhook server on 127.0.0.1 and rewrites the node's
// node_exporter textfile in state-dir; no secret is ever in a document; a webhook that cannot be
// delivered is a warning, not a failed run.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { runAction, visible } from '../support/action.js'
import { containerState } from '../support/node.js'
import { readPromText } from '../support/prom-text.js'
import { startSecretNode, type SecretNode } from '../support/secret-node.js'

const prefix = uniqueName('clr-notify')
const name = `${prefix}-node`
let db: TestDb
let sn: SecretNode
let stateDir: string
let server: Server
let hookUrl: string
const hooks: Array<{ url?: string; type?: string; body: string }> = []

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => (body += d.toString()))
    req.on('end', () => {
      hooks.push({ url: req.url, type: req.headers['content-type'], body })
      res.writeHead(200).end('ok')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T0/B0/hook-token-${prefix}`
  db = await createDb('notify')
  stateDir = mkdtempSync(join(tmpdir(), 'clr-notify-state-'))
  sn = await startSecretNode({ name, tag: '2.19.0', db })
})
afterAll(async () => {
  server?.closeAllConnections()
  server?.close()
  await removeContainers(prefix)
  await db?.drop()
})

const common = () => ({
  container: name,
  'state-dir': stateDir,
  'backup-dir': join(stateDir, 'backups'),
  'stable-for': '2s',
  'webhook-url': hookUrl
})

function textfile() {
  const file = readdirSync(stateDir).find((f) => f.endsWith('.prom'))
  expect(file).toBe(`chainlink_rollout_${name}.prom`)
  // the collector reads *.prom: no temp file is ever left under that name
  expect(readdirSync(stateDir).filter((f) => f.includes('.prom'))).toEqual([file])
  const { problems, samples } = readPromText(readFileSync(join(stateDir, file!), 'utf8'))
  expect(problems).toEqual([])
  return (metric: string, labels: Record<string, string> = {}) =>
    samples.find(
      (x) => x.name === metric && x.labels.node === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)
    )?.value
}

/** Which of the node's secrets (and the webhook's token) a text contains. */
const secretsIn = (text: string) =>
  Object.entries({ ...sn.secrets, webhookToken: `hook-token-${prefix}` })
    .filter(([, s]) => text.includes(s))
    .map(([k]) => k)

describe('the end of a run: textfile and webhook', () => {
  test('a real upgrade: one document with the outputs, timeline and digests; the textfile', async () => {
    const r = await runAction({ ...common(), image: simImage('2.20.0') })
    expect(r.outputs.result).toBe('upgraded')
    expect(r.exitCode).toBe(0)
    expect(hooks).toHaveLength(1)
    expect(hooks[0].type).toBe('application/json')
    const doc = JSON.parse(hooks[0].body)
    expect(doc).toMatchObject({
      schema: 1,
      node: name,
      operation: 'upgrade',
      step: 'main',
      result: 'upgraded',
      ok: true
    })
    const { result: _result, ...outputs } = r.outputs
    expect(doc.outputs).toEqual(outputs)
    expect(doc.digests.image).toBe(/@(sha256:[0-9a-f]{64})$/.exec(r.outputs.image)?.[1])
    expect(doc.digests.image).toMatch(/^sha256:/)
    expect(doc.timeline.map((e: { step: string }) => e.step).length).toBeGreaterThan(3)
    expect(doc.gates.every((g: { passed: boolean }) => g.passed)).toBe(true)
    expect(secretsIn(hooks[0].body)).toEqual([])
    // the webhook URL is masked like any secret: never shown in the job log
    const shown = r.stdout
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'))
      .join('\n')
    expect(secretsIn(shown)).toEqual([])
    const metric = textfile()
    expect(metric('chainlink_rollout_last_result', { operation: 'upgrade', result: 'upgraded' })).toBe(1)
    expect(metric('chainlink_rollout_leader_gap_seconds')).toBeCloseTo(Number(r.outputs['leader-gap-ms']) / 1000, 3)
    expect(metric('chainlink_rollout_rollbacks_total')).toBe(0)
    expect(metric('chainlink_rollout_backup_newest_size_bytes', { kind: 'pre-upgrade' })).toBeGreaterThan(0)
  })

  test('a rollback (the new node prints its RPC key): the document says so and holds no secret', async () => {
    const before = (await containerState(name))?.image
    const r = await runAction({ ...common(), image: simImage('2.20.0-never-ready'), 'ready-timeout': '8s' })
    expect(r.outputs.result).toBe('rolled-back')
    // the action's own exit stays 1 on a rollback, as the runner expects of a failed step
    expect(r.exitCode).toBe(1)
    expect((await containerState(name))?.image).toBe(before)
    expect(hooks).toHaveLength(2)
    const doc = JSON.parse(hooks[1].body)
    expect(doc).toMatchObject({ operation: 'upgrade', result: 'rolled-back', ok: false })
    expect(doc.digests.quarantined).toHaveLength(1)
    expect(secretsIn(hooks[1].body)).toEqual([])
    expect(secretsIn(readFileSync(join(stateDir, `chainlink_rollout_${name}.prom`), 'utf8'))).toEqual([])
    const metric = textfile()
    expect(metric('chainlink_rollout_last_result', { operation: 'upgrade', result: 'rolled-back' })).toBe(1)
    expect(metric('chainlink_rollout_rollbacks_total')).toBe(1)
    expect(metric('chainlink_rollout_quarantined_digests')).toBe(1)
    // the last measured gap stays (the rollback's own handoff may have measured a new one)
    expect(metric('chainlink_rollout_leader_gap_seconds')).toBeDefined()
  })

  test('a webhook nobody answers: a warning, the run still succeeds', async () => {
    const closed = createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
    const port = (closed.address() as AddressInfo).port
    await new Promise((r) => closed.close(r))
    const r = await runAction({ ...common(), operation: 'status', 'webhook-url': `http://127.0.0.1:${port}/x` })
    expect(r.outputs.result).toBe('ok')
    expect(r.exitCode).toBe(0)
    expect(visible(r.stdout)).toMatch(/^::warning::the webhook was not delivered \(webhook-url\): ECONNREFUSED/m)
    const metric = textfile()
    expect(metric('chainlink_rollout_last_result', { operation: 'status', result: 'ok' })).toBe(1)
    expect(metric('chainlink_rollout_last_result', { operation: 'upgrade', result: 'rolled-back' })).toBe(1)
  })
})
