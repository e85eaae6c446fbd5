import { afterEach, describe, expect, test } from '@jest/globals'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Observers, RequestBudget, retryAfterMs, urlKey } from '../../../src/node/observer.js'

describe('RequestBudget: never more than `limit` requests in any window', () => {
  test('refuses the request over the limit until the oldest leaves the window', () => {
    let now = 0
    const b = new RequestBudget(3, 60_000, 0.7, () => now)
    expect([b.take(), b.take(), b.take()]).toEqual([0, 0, 0])
    now = 10_000
    expect(b.take()).toBe(50_000)
    now = 60_000
    expect(b.take()).toBe(0)
    expect(b.maxInWindow()).toBe(3)
    expect(b.total).toBe(4)
  })

  test('fast polling stops at its share of the budget; the rest is kept for slow polling', () => {
    let now = 0
    const b = new RequestBudget(10, 60_000, 0.7, () => now)
    for (let i = 0; i < 6; i++) b.take()
    expect(b.fastAllowed()).toBe(true)
    b.take()
    expect(b.fastAllowed()).toBe(false)
    now = 60_001
    expect(b.fastAllowed()).toBe(true)
  })

  test.each<[string, number[], number]>([
    ['spread out', [0, 30_000, 60_000, 90_000], 2],
    ['a burst', [0, 1, 2, 3, 70_000], 4],
    ['the window slides', [0, 50_000, 55_000, 111_000, 112_000], 3]
  ])('maxInWindow: %s', (_, times, want) => {
    let now = 0
    const b = new RequestBudget(100, 60_000, 0.7, () => now)
    for (const t of times) {
      now = t
      b.take()
    }
    expect(b.maxInWindow()).toBe(want)
  })
})

describe('retryAfterMs: the wait a 429 asks for', () => {
  const h = (x: Record<string, string>) => new Headers(x)
  test.each<[string, Headers | undefined, number]>([
    ['Retry-After seconds', h({ 'retry-after': '7' }), 7000],
    ['X-RateLimit-Reset as a Unix time (ulule/limiter)', h({ 'x-ratelimit-reset': '1030' }), 30_000],
    ['capped at a minute', h({ 'retry-after': '3600' }), 60_000],
    ['a reset already past: the default', h({ 'x-ratelimit-reset': '900' }), 10_000],
    ['no header: the default', h({}), 10_000],
    ['no headers at all', undefined, 10_000]
  ])('%s', (_, headers, want) => expect(retryAfterMs(headers, 1_000_000)).toBe(want))
})

describe('urlKey: what the limiter counts by', () => {
  test.each<[string, string]>([
    ['http://127.0.0.1:6688', '127.0.0.1:6688'],
    ['http://127.0.0.1:6688/', '127.0.0.1:6688'],
    ['http://172.17.0.2:6688', '172.17.0.2:6688'],
    ['https://node.example', 'node.example:443']
  ])('%s', (url, want) => expect(urlKey(url)).toBe(want))
})

describe('Observer against a rate-limited HTTP server', () => {
  let server: Server | undefined
  afterEach(async () => {
    await new Promise((r) => server?.close(r))
    server = undefined
  })

  /** a node-like server: /readyz 200 until `limit` requests, then 429 with Retry-After 1 */
  async function node(limit: number): Promise<{ url: string; hits: () => number }> {
    let hits = 0
    server = createServer((req, res) => {
      hits++
      if (hits > limit) {
        res.writeHead(429, { 'retry-after': '1' })
        return res.end()
      }
      if (req.url?.startsWith('/health')) {
        res.writeHead(207, { 'content-type': 'application/vnd.api+json' })
        return res.end(
          JSON.stringify({
            data: [
              {
                type: 'checks',
                id: 'x',
                attributes: { name: 'EVM.5.HeadTracker', status: 'failing', output: 'no heads' }
              }
            ]
          })
        )
      }
      res.writeHead(200)
      res.end()
    })
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r))
    return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, hits: () => hits }
  }

  test('one observer per URL: two readers share its requests', async () => {
    const n = await node(1000)
    const obs = new Observers()
    expect(obs.of(n.url)).toBe(obs.of(`${n.url}/`))
    const o = obs.of(n.url)
    const stopA = o.watch()
    const stopB = o.watch()
    const release = obs.fast()
    await new Promise((r) => setTimeout(r, 500))
    release()
    await stopA()
    await stopB()
    expect(o.ready.length).toBe(n.hits())
    expect(o.latest?.kind).toBe('ready')
  })

  test('a 429 is unknown, not "not ready", and the observer waits for the reset', async () => {
    const n = await node(2)
    const obs = new Observers()
    const o = obs.of(n.url)
    const stop = o.watch({ health: true })
    const release = obs.fast()
    await new Promise((r) => setTimeout(r, 600))
    release()
    await stop()
    expect(o.ready[0].kind).toBe('ready')
    expect(o.checks).toMatchObject({ kind: 'checks', failing: [{ name: 'EVM.5.HeadTracker', output: 'no heads' }] })
    expect(o.ready.slice(1).map((x) => x.kind)).toEqual(['unknown'])
    // Retry-After 1 s: nothing more was sent within the 600 ms
    expect(n.hits()).toBe(3)
  })

  test('the budget holds across URLs: no more than `limit` requests in the window', async () => {
    const a = await node(10_000)
    const obs = new Observers(new RequestBudget(5, 60_000, 1))
    const o = obs.of(a.url)
    const stop = o.watch()
    const release = obs.fast()
    await new Promise((r) => setTimeout(r, 1200))
    release()
    await stop()
    expect(a.hits()).toBe(5)
    expect(obs.budget.maxInWindow()).toBe(5)
  })

  /** routes -> status; the paths asked, in order */
  async function routed(routes: Record<string, number>): Promise<{ url: string; asked: string[] }> {
    const asked: string[] = []
    server = createServer((req, res) => {
      asked.push(req.url ?? '')
      res.writeHead(routes[req.url ?? ''] ?? 404)
      res.end()
    })
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r))
    return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, asked }
  }

  async function poll(url: string, ms: number, health = false) {
    const obs = new Observers()
    const o = obs.of(url)
    const stop = o.watch({ health })
    const release = obs.fast()
    await new Promise((r) => setTimeout(r, ms))
    release()
    await stop()
    return o
  }

  test('a node without /public-readyz: asked once, then /readyz alone', async () => {
    const n = await routed({ '/readyz': 200, '/health?failing': 200 })
    const o = await poll(n.url, 450)
    expect(n.asked.slice(0, 3)).toEqual(['/public-readyz', '/readyz', '/readyz'])
    expect(n.asked.filter((p) => p === '/public-readyz')).toHaveLength(1)
    expect(o.ready.every((x) => x.kind === 'ready' && x.route === '/readyz')).toBe(true)
  })

  test('/readyz and /health behind authentication: /public-readyz decides, /health is hidden, not failing', async () => {
    const n = await routed({ '/public-readyz': 200, '/readyz': 401, '/health?failing': 403 })
    const o = await poll(n.url, 300, true)
    expect(n.asked).not.toContain('/readyz')
    expect(o.ready.every((x) => x.kind === 'ready' && x.route === '/public-readyz')).toBe(true)
    expect(o.checks).toMatchObject({ kind: 'hidden', status: 403, failing: [] })
  })
})
