import { describe, expect, test } from '@jest/globals'
import { failingChecks, isReady, parseChecks, type Check, type HealthProbe } from '../../../src/node/health.js'

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
