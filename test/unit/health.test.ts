import { describe, expect, test } from '@jest/globals'
import { failingChecks, isReady, type HealthProbe } from '../../src/health.js'

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

describe('isReady: what the health gate accepts', () => {
  const p = (x: Partial<HealthProbe>): HealthProbe => ({ at: 0, failing: [], ...x })
  test.each<[string, HealthProbe, boolean]>([
    ['/readyz 200, /health 200', p({ readyz: 200, health: 200 }), true],
    ['/readyz 200, /health not probed', p({ readyz: 200 }), true],
    ['/readyz 503 (migrations)', p({ readyz: 503, health: 204 }), false],
    ['/readyz 200 but /health 207 (a check failing)', p({ readyz: 200, health: 207, failing: ['EVM.1.Txm'] }), false],
    [
      '/readyz 200, /health 200 but a check failing (old nodes send 200 regardless)',
      p({ readyz: 200, health: 200, failing: ['EVM.1.Txm'] }),
      false
    ],
    ['/health 204 from the start-up reporter is not ready', p({ readyz: 200, health: 204 }), false],
    ['/readyz 204', p({ readyz: 204, health: 200 }), false],
    ['nothing answered (waiting standby: connection refused)', p({ error: 'ECONNREFUSED' }), false]
  ])('%s -> %s', (_, probe, ready) => expect(isReady(probe)).toBe(ready))
})
