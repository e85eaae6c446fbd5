import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { postWebhook, webhookDocument } from '../../../src/notify/webhook.js'
import { Report } from '../../../src/report.js'

const D1 = 'sha256:' + '1'.repeat(64)
const D0 = 'sha256:' + '0'.repeat(64)

describe('webhookDocument', () => {
  it('carries the outputs, the timeline, the gates and the digests', () => {
    const report = new Report()
    report.step('standby', 'chainlink-next started')
    report.gate('standby-ready', true, '/readyz 200')
    report.handoffs.push({ from: 'a', to: 'b', gapMs: 140, stop: 'graceful' })
    const doc = webhookDocument({
      node: 'chainlink',
      operation: 'upgrade',
      step: 'cli',
      result: {
        result: 'upgraded',
        ok: true,
        outputs: {
          image: `repo/chainlink:2.20.0@${D1}`,
          'previous-image': `repo/chainlink:2.19.0@${D0}`,
          'leader-gap-ms': '140'
        }
      },
      report,
      quarantined: [],
      endedAt: report.started + 1000
    })
    expect(doc).toMatchObject({
      schema: 1,
      node: 'chainlink',
      operation: 'upgrade',
      result: 'upgraded',
      ok: true,
      outputs: { 'leader-gap-ms': '140' },
      digests: { image: D1, previous: D0, quarantined: [] },
      gates: [{ name: 'standby-ready', passed: true }],
      handoffs: [{ from: 'a', to: 'b', gapMs: 140 }],
      timeline: [{ step: 'standby', detail: 'chainlink-next started' }]
    })
    expect(new Date(doc.endedAt as string).getTime() - new Date(doc.startedAt as string).getTime()).toBe(1000)
  })
})

describe('postWebhook: delivered or a reason, never a throw', () => {
  let server: Server
  let base: string
  const got: Array<{ url?: string; type?: string; body: string }> = []
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = ''
      req.on('data', (d: Buffer) => (body += d.toString()))
      req.on('end', () => {
        got.push({ url: req.url, type: req.headers['content-type'], body })
        if (req.url === '/hang') return // never answers
        if (req.url === '/redirect') return res.writeHead(302, { location: '/ok' }).end()
        res.writeHead(req.url === '/fail' ? 500 : 204).end()
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  })

  it('POSTs the JSON body', async () => {
    expect(await postWebhook(`${base}/ok`, '{"a":1}')).toBeUndefined()
    expect(got.at(-1)).toEqual({ url: '/ok', type: 'application/json', body: '{"a":1}' })
  })
  it.each([
    ['/fail', 1000, /HTTP 500/],
    ['/hang', 300, /no answer within 0.3 s/],
    ['/redirect', 1000, /./]
  ])('%s: a reason', async (path, timeout, reason) => {
    expect(await postWebhook(`${base}${path}`, '{}', timeout)).toMatch(reason)
  })
  it('a port nobody listens on: a reason', async () => {
    const closed = createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
    const port = (closed.address() as AddressInfo).port
    await new Promise((r) => closed.close(r))
    expect(await postWebhook(`http://127.0.0.1:${port}/x`, '{}', 1000)).toMatch(/ECONNREFUSED/)
  })
})
