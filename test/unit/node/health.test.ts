import { describe, expect, test } from '@jest/globals'
import {
  failingChecks,
  isReady,
  judgeReadyAnswer,
  parseChecks,
  readiness,
  type Check,
  type HealthProbe,
  type ReadyRoute
} from '../../../src/node/health.js'

const check = (name: string, status: 'passing' | 'failing', output = '') => ({
  type: 'checks',
  id: name,
  attributes: { name, status, output }
})
const body = (...checks: unknown[]) => JSON.stringify({ data: checks })

describe('failingChecks: names of failing checks in a JSON:API /health body', () => {
  test.each<[string, string, string[]]>([
    ['all passing', body(check('EVM.1399100.HeadTracker', 'passing'), check('JobSpawner', 'passing')), []],
    [
      'one failing',
      body(check('EVM.1399100.HeadTracker', 'failing', 'no new heads'), check('JobSpawner', 'passing')),
      ['EVM.1399100.HeadTracker']
    ],
    [
      '?failing: only failing checks, in order',
      body(check('EVM.1.Txm', 'failing'), check('Mailbox.Monitor', 'failing')),
      ['EVM.1.Txm', 'Mailbox.Monitor']
    ],
    ['empty data', body(), []],
    ['no data', '{}', []],
    [
      'a failing check without a name',
      JSON.stringify({ data: [{ type: 'checks', id: 'x', attributes: { status: 'failing' } }] }),
      ['?']
    ],
    ['items without attributes', JSON.stringify({ data: [{ type: 'checks', id: 'x' }] }), []],
    ['empty body (204 from the start-up reporter)', '', []],
    ['text/plain body', 'ok JobSpawner\n!  EVM.1.Txm\n', []],
    ['HTML body', '<html><body>unhealthy</body></html>', []],
    ['JSON null', 'null', []],
    ['data is not a list', JSON.stringify({ data: { attributes: { status: 'failing', name: 'x' } } }), []]
  ])('%s', (_, text, want) => expect(failingChecks(text)).toEqual(want))
})

describe('isReady: plain /readyz 200, failing checks are judged by the health gate', () => {
  const p = (x: Partial<HealthProbe>): HealthProbe => ({ at: 0, failing: [], ...x })
  test.each<[string, HealthProbe, boolean]>([
    ['/readyz 200, /health 200', p({ readyz: 200, health: 200 }), true],
    ['/readyz 200, /health not probed', p({ readyz: 200 }), true],
    ['/readyz 503 (a service not ready)', p({ readyz: 503, health: 207 }), false],
    [
      '/readyz 200, /health 207 (a check failing: evidence, not a veto)',
      p({ readyz: 200, health: 207, failing: ['EVM.1.Txm'] }),
      true
    ],
    ['/readyz 404 from the start-up reporter (migrations)', p({ readyz: 404, health: 204 }), false],
    ['/readyz 429 (rate-limited: says nothing)', p({ readyz: 429 }), false],
    ['/readyz 204', p({ readyz: 204, health: 200 }), false],
    ['nothing answered (waiting standby: connection refused)', p({ error: 'ECONNREFUSED' }), false]
  ])('%s -> %s', (_, probe, ready) => expect(isReady(probe)).toBe(ready))
})

describe('parseChecks: failing checks with their output', () => {
  test.each<[string, string, Check[] | undefined]>([
    [
      'one failing with output',
      body(check('EVM.1.HeadTracker', 'failing', 'no new heads'), check('JobSpawner', 'passing')),
      [{ name: 'EVM.1.HeadTracker', output: 'no new heads' }]
    ],
    ['all passing', body(check('JobSpawner', 'passing')), []],
    ['empty body (204 from the start-up reporter): unknown', '', undefined],
    ['text/plain body: unknown', 'ok JobSpawner\n', undefined],
    ['JSON without data: unknown', '{}', undefined]
  ])('%s', (_, text, want) => expect(parseChecks(text)).toEqual(want))
})

describe('judgeReadyAnswer: what one answer of a readiness route says', () => {
  test.each<[string, ReadyRoute, { status?: number; error?: string }, string]>([
    ['/public-readyz 200', '/public-readyz', { status: 200 }, 'ready'],
    ['/public-readyz 503 (not ready, or the start-up reporter)', '/public-readyz', { status: 503 }, 'not-ready'],
    ['/public-readyz 404: a node older than the route, ask /readyz', '/public-readyz', { status: 404 }, 'elsewhere'],
    ['/public-readyz 401: ask /readyz', '/public-readyz', { status: 401 }, 'elsewhere'],
    ['/readyz 200', '/readyz', { status: 200 }, 'ready'],
    ['/readyz 503', '/readyz', { status: 503 }, 'not-ready'],
    ['/readyz 404 (an older start-up reporter: every path but /health)', '/readyz', { status: 404 }, 'not-ready'],
    ['/readyz 401 (behind authentication): ask the other route', '/readyz', { status: 401 }, 'elsewhere'],
    ['/readyz 403 (a proxy forbids it): ask the other route', '/readyz', { status: 403 }, 'elsewhere'],
    ['429: says nothing', '/public-readyz', { status: 429 }, 'unknown'],
    ['timeout: says nothing', '/readyz', { error: 'timeout' }, 'unknown'],
    ['connection refused: not ready (a waiting standby)', '/public-readyz', { error: 'ECONNREFUSED' }, 'not-ready']
  ])('%s -> %s', (_, route, a, want) => expect(judgeReadyAnswer(route, a)).toBe(want))
})

describe('readiness: the status-only route where the node has it, /readyz where not, 401/403 no evidence', () => {
  /** a node answering each route with a fixed status; the routes asked, in order */
  const node = (answers: Partial<Record<ReadyRoute, number>>) => {
    const asked: ReadyRoute[] = []
    return {
      asked,
      get: async (r: ReadyRoute) => {
        asked.push(r)
        return answers[r] === undefined ? { error: 'ECONNREFUSED' } : { status: answers[r] }
      }
    }
  }
  test.each<[string, ReadyRoute, Partial<Record<ReadyRoute, number>>, string, ReadyRoute[], ReadyRoute]>([
    [
      'a newer node: /public-readyz alone',
      '/public-readyz',
      { '/public-readyz': 200, '/readyz': 200 },
      'ready',
      ['/public-readyz'],
      '/public-readyz'
    ],
    [
      'a newer node, not ready',
      '/public-readyz',
      { '/public-readyz': 503, '/readyz': 503 },
      'not-ready',
      ['/public-readyz'],
      '/public-readyz'
    ],
    [
      'an older node: 404, then /readyz, kept for next time',
      '/public-readyz',
      { '/public-readyz': 404, '/readyz': 200 },
      'ready',
      ['/public-readyz', '/readyz'],
      '/readyz'
    ],
    [
      'an older node known: /readyz alone',
      '/readyz',
      { '/public-readyz': 404, '/readyz': 503 },
      'not-ready',
      ['/readyz'],
      '/readyz'
    ],
    [
      '/readyz behind authentication on a newer node: /public-readyz',
      '/readyz',
      { '/public-readyz': 200, '/readyz': 401 },
      'ready',
      ['/readyz', '/public-readyz'],
      '/public-readyz'
    ],
    [
      'both behind authentication: unknown, never not ready',
      '/public-readyz',
      { '/public-readyz': 403, '/readyz': 401 },
      'unknown',
      ['/public-readyz', '/readyz'],
      '/public-readyz'
    ],
    [
      'an older node with /readyz behind authentication: unknown',
      '/public-readyz',
      { '/public-readyz': 404, '/readyz': 401 },
      'unknown',
      ['/public-readyz', '/readyz'],
      '/public-readyz'
    ],
    [
      'an older start-up reporter (404 on both): not ready',
      '/public-readyz',
      { '/public-readyz': 404, '/readyz': 404 },
      'not-ready',
      ['/public-readyz', '/readyz'],
      '/readyz'
    ],
    [
      'nothing listening: not ready, one request',
      '/public-readyz',
      {},
      'not-ready',
      ['/public-readyz'],
      '/public-readyz'
    ]
  ])('%s', async (_, prefer, answers, kind, asked, next) => {
    const n = node(answers)
    const r = await readiness(prefer, n.get)
    expect({ kind: r.kind, asked: n.asked, next: r.next }).toEqual({ kind, asked, next })
  })

  test('no second request when the budget refuses it: unknown, the other route next', async () => {
    const n = node({ '/public-readyz': 404, '/readyz': 200 })
    const r = await readiness('/public-readyz', n.get, async () => false)
    expect({ kind: r.kind, asked: n.asked, next: r.next }).toEqual({
      kind: 'unknown',
      asked: ['/public-readyz'],
      next: '/readyz'
    })
  })
})
