import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { notifyRunEnd } from '../../../src/notify/run-end.js'
import { Report } from '../../../src/report.js'
import { Redactor } from '../../../src/trust/secrets.js'
import { readPromText } from '../../support/prom-text.js'

const DB_URL = 'postgres://chainlink:db-pass-9f3e@db:5432/chainlink'
const RPC = 'wss://rpc.example.com/ws?apikey=rpc-key-77aa'

let server: Server
let base: string
const bodies: string[] = []
beforeAll(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => (body += d.toString()))
    req.on('end', () => {
      bodies.push(body)
      res.writeHead(req.url === '/fail' ? 503 : 200).end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
})

function setup() {
  const warnings: string[] = []
  const log = { info: () => {}, debug: () => {}, warning: (m: string) => warnings.push(m), mask: () => {} }
  const secrets = new Redactor()
  secrets.add(DB_URL)
  secrets.add('db-pass-9f3e')
  const report = new Report()
  // text a run may carry: an error quoting the DB URL, a node log line with its RPC URL
  report.step('preflight', `connect ${DB_URL} failed`)
  report.note(`the new node said: dial ${RPC} failed`)
  const dir = mkdtempSync(join(tmpdir(), 'clr-run-end-'))
  return { warnings, log, redact: (t: string) => secrets.redact(t), report, stateDir: join(dir, 'state'), dir }
}

const result = { result: 'rolled-back' as const, ok: false, message: `rolled back: ${DB_URL}`, outputs: {} }

describe('notifyRunEnd', () => {
  it('posts the redacted document and writes the textfile (0600, no temp file left)', async () => {
    const s = setup()
    await notifyRunEnd(
      {
        stateDir: s.stateDir,
        backupDir: join(s.dir, 'backups'),
        node: 'chainlink',
        operation: 'upgrade',
        dryRun: false,
        webhookUrl: `${base}/ok`,
        step: 'cli',
        result,
        report: s.report
      },
      s.log,
      s.redact
    )
    expect(s.warnings).toEqual([])
    const body = bodies.at(-1)!
    expect(JSON.parse(body)).toMatchObject({ operation: 'upgrade', result: 'rolled-back' })
    expect(body).not.toContain('db-pass-9f3e')
    expect(body).not.toContain('rpc-key-77aa')
    expect(body).toContain('apikey=***')
    expect(readdirSync(s.stateDir).sort()).toEqual(['chainlink.metrics.json', 'chainlink_rollout_chainlink.prom'])
    const prom = join(s.stateDir, 'chainlink_rollout_chainlink.prom')
    expect(statSync(prom).mode & 0o777).toBe(0o600)
    expect(readPromText(readFileSync(prom, 'utf8')).problems).toEqual([])
    expect(readFileSync(prom, 'utf8')).toContain('chainlink_rollout_rollbacks_total{node="chainlink"} 1')
  })

  it('an endpoint that fails: a warning without the URL; a dry run writes no textfile', async () => {
    const s = setup()
    await notifyRunEnd(
      {
        stateDir: s.stateDir,
        backupDir: join(s.dir, 'backups'),
        node: 'chainlink',
        operation: 'upgrade',
        dryRun: true,
        webhookUrl: `${base}/fail`,
        step: 'main',
        result: { result: 'planned', ok: true, outputs: {} },
        report: s.report
      },
      s.log,
      s.redact
    )
    expect(s.warnings).toEqual(['the webhook was not delivered (webhook-url): the endpoint answered HTTP 503'])
    expect(existsSync(s.stateDir)).toBe(false)
  })

  it('a state dir it cannot write: a warning, no throw', async () => {
    const s = setup()
    // below a regular file: no directory can be made there
    writeFileSync(join(s.dir, 'file'), '')
    const stateDir = join(s.dir, 'file', 'state')
    await notifyRunEnd(
      {
        stateDir,
        backupDir: join(s.dir, 'backups'),
        node: 'chainlink',
        operation: 'status',
        dryRun: false,
        step: 'cli',
        result: { result: 'ok', ok: true, outputs: {} },
        report: s.report
      },
      s.log,
      s.redact
    )
    expect(s.warnings).toHaveLength(1)
    expect(s.warnings[0]).toMatch(
      /^could not write the metrics textfile .*\/file\/state\/chainlink_rollout_chainlink\.prom: ENOTDIR/
    )
  })
})
