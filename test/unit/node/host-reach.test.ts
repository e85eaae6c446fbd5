import { describe, expect, test } from '@jest/globals'
import { hbaLine, hbaRefusal, hostRoutes, unreachableMessage } from '../../../src/node/host-reach.js'

const local = ['127.0.0.1', '192.0.2.2', '172.17.0.1']
const URL_GW = 'postgres://clr:s3cret@172.17.0.1:5433/node?sslmode=disable'

describe('hostRoutes: other ways to a server at an address of this host', () => {
  test('the docker0 gateway: loopback at the same port, then the socket where one exists', () => {
    const r = hostRoutes(URL_GW, local, (p) => p === '/var/run/postgresql/.s.PGSQL.5433')
    expect(r.map((x) => x.how)).toEqual(['127.0.0.1:5433', 'the socket /var/run/postgresql/.s.PGSQL.5433'])
    expect(r[0].url).toBe('postgres://clr:s3cret@127.0.0.1:5433/node?sslmode=disable')
    expect(r[1].url).toBe('postgres://clr:s3cret@%2Fvar%2Frun%2Fpostgresql:5433/node?sslmode=disable')
  })
  test.each<[string, string]>([
    ['an address of another host', 'postgres://clr:s@10.0.0.5:5432/node'],
    ['loopback already', 'postgres://clr:s@127.0.0.1:5432/node'],
    ['a host name', 'postgres://clr:s@db:5432/node'],
    ['not a URL', 'host=/tmp dbname=node']
  ])('none for %s', (_what, url) => expect(hostRoutes(url, local, () => true)).toEqual([]))
  test('the default port when the URL has none', () => {
    expect(hostRoutes('postgres://clr:s@192.0.2.2/node', local, () => false).map((x) => x.how)).toEqual([
      '127.0.0.1:5432'
    ])
  })
})

describe('what the server saw, and the line that admits it', () => {
  const refusal =
    'cannot connect to the node\'s database: no pg_hba.conf entry for host "192.0.2.2", user "clr", database "node", no encryption (28000)'
  test('parsed from the server error', () => {
    expect(hbaRefusal(refusal)).toEqual({ host: '192.0.2.2', user: 'clr', database: 'node' })
    expect(hbaRefusal('connect ECONNREFUSED 127.0.0.1:5433')).toBeUndefined()
    expect(hbaLine({ host: '192.0.2.2', user: 'clr', database: 'node' })).toBe(
      'host node clr 192.0.2.2/32 scram-sha-256'
    )
    expect(hbaLine({ host: 'fd00::2', user: 'clr', database: 'node' })).toBe('host node clr fd00::2/128 scram-sha-256')
  })
  test('the message names every way tried, the address and the line', () => {
    const m = unreachableMessage('172.17.0.1:5433', [
      { how: '172.17.0.1:5433', error: refusal },
      { how: '127.0.0.1:5433', error: 'no pg_hba.conf entry for host "127.0.0.1", user "clr", database "node"' }
    ])
    expect(m).toContain('172.17.0.1:5433 is an address of this host')
    expect(m).toContain('127.0.0.1:5433: no pg_hba.conf entry for host "127.0.0.1"')
    expect(m).toContain('come from 192.0.2.2')
    expect(m).toContain('"host node clr 192.0.2.2/32 scram-sha-256"')
  })
})
