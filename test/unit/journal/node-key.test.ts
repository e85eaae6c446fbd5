// The node's journal and host lock are keyed by its database (review N10): however a workflow
// names the node's containers, and whatever user or password its URL carries.
import { describe, expect, test } from '@jest/globals'
import { dbKey } from '../../../src/journal/journal.js'

const URL_A = 'postgresql://chainlink:s3cret@172.17.0.1:5432/chainlink?sslmode=disable'

describe('dbKey: one key per DB server and database', () => {
  test.each<[string, string, string | undefined, string | undefined]>([
    ['another user and password', 'postgresql://other:pw2@172.17.0.1:5432/chainlink', undefined, undefined],
    ['other parameters', 'postgres://chainlink:s3cret@172.17.0.1:5432/chainlink?sslmode=require', undefined, undefined],
    ['the default port left out', 'postgresql://chainlink:s3cret@172.17.0.1/chainlink', undefined, undefined],
    ['the port as a parameter', 'postgresql://chainlink:s3cret@172.17.0.1/chainlink?port=5432', undefined, undefined],
    [
      'the database as a parameter',
      'postgresql://chainlink:s3cret@172.17.0.1:5432/?dbname=chainlink',
      undefined,
      undefined
    ]
  ])('the same DB: %s', (_, url, hostKey, hostKeyA) => {
    expect(dbKey(url, hostKey)).toBe(dbKey(URL_A, hostKeyA))
  })

  test.each<[string, string, string | undefined, string | undefined]>([
    [
      'another database on the server',
      'postgresql://chainlink:s3cret@172.17.0.1:5432/chainlink2',
      undefined,
      undefined
    ],
    ['another port', 'postgresql://chainlink:s3cret@172.17.0.1:5433/chainlink', undefined, undefined],
    ['another server', 'postgresql://chainlink:s3cret@172.17.0.9:5432/chainlink', undefined, undefined],
    ['another socket directory', 'postgresql://chainlink:s3cret@/chainlink?host=/run/pg2', undefined, undefined]
  ])('another DB: %s', (_, url, hostKey, hostKeyA) => {
    expect(dbKey(url, hostKey)).not.toBe(dbKey(URL_A, hostKeyA))
  })

  test('a server reached by a Docker DNS name is keyed by its container, whatever address it has today', () => {
    const c = 'container 0123456789ab'
    expect(dbKey('postgresql://u:p@172.20.0.5:5432/chainlink', c)).toBe(
      dbKey('postgresql://u:p@172.20.0.9:5432/chainlink', c)
    )
    expect(dbKey('postgresql://u:p@172.20.0.5:5432/chainlink', c)).not.toBe(
      dbKey('postgresql://u:p@172.20.0.5:5432/chainlink')
    )
  })

  test('host names are not case sensitive; localhost is the loopback address', () => {
    expect(dbKey('postgresql://u@DB.example.com/x')).toBe(dbKey('postgresql://u@db.example.com/x'))
    expect(dbKey('postgresql://u@localhost/x')).toBe(dbKey('postgresql://u@127.0.0.1/x'))
  })

  test('no database named: the user name is the database (as libpq does)', () => {
    expect(dbKey('postgresql://chainlink:pw@172.17.0.1')).toBe(dbKey('postgresql://x:y@172.17.0.1/chainlink'))
  })

  test.each([URL_A, 'postgresql://u:p@db/x', 'not a url: password=s3cret', 'postgresql://u:p@[fd00::7]:5432/x'])(
    'a file name, with nothing of the URL in it: %s',
    (url) => {
      const k = dbKey(url)
      expect(k).toMatch(/^db-[0-9a-f]{16}$/)
      expect(k).not.toMatch(/s3cret|chainlink|172/)
    }
  )
})
