import { describe, expect, test } from '@jest/globals'
import { describePgError, parseApplicationName } from '../../../src/postgres/database.js'

const UUID = '0f8e4b8a-3c1d-4e5f-9a7b-6c5d4e3f2a1b'

describe('parseApplicationName', () => {
  test.each([
    [`Chainlink 2.19.0 |App|${UUID}`, { version: '2.19.0', appId: UUID }],
    [`Chainlink 1.13.3 |App|${UUID}`, { version: '1.13.3', appId: UUID }],
    [`Chainlink 2.20.0-rc.1 |App|${UUID}`, { version: '2.20.0-rc.1', appId: UUID }],
    // as the node writes it for a long version: cut at 63 characters
    [
      `Chainlink 2.17.0-ccip1.5.16 |App|${UUID}`.slice(0, 63),
      { version: '2.17.0-ccip1.5.16', appId: UUID.slice(0, 63 - 'Chainlink 2.17.0-ccip1.5.16 |App|'.length) }
    ]
  ])('%s', (name, want) => expect(parseApplicationName(name)).toEqual(want))

  test.each([
    ['the action itself', 'chainlink-rollout'],
    ['psql', 'psql'],
    ['empty', ''],
    ["a node's other pools (no app id)", 'Chainlink 2.19.0 |Keystore'],
    ['a different consumer name', `Chainlink 2.19.0 |Other|${UUID}`],
    ['uppercase is not what uuid.String() writes', `Chainlink 2.19.0 |App|${UUID.toUpperCase()}`],
    ['trailing junk', `Chainlink 2.19.0 |App|${UUID} x`],
    ['leading junk', `xChainlink 2.19.0 |App|${UUID}`]
  ])('not a node session: %s', (_, name) => expect(parseApplicationName(name)).toBeUndefined())

  // Regression (was a bug, fixed): a node built without a version (static.Version 'unset', e.g. built from source
  // without ldflags) names itself 'Chainlink |App|<uuid>' (buildPrettyVersion returns ' '). The
  // SQL filter LIKE 'Chainlink %|App|%' selects it, but parseApplicationName rejects it, so the
  // node is invisible to the action.
  test('a node with an unset version', () => {
    expect(parseApplicationName(`Chainlink |App|${UUID}`)?.appId).toBe(UUID)
  })
})

describe('describePgError: never a postgres:// URL', () => {
  const URLS = [
    'postgres://chainlink:hunter2@db:5432/chainlink?sslmode=require',
    'postgresql://chainlink:p%40ss@10.0.0.5/chainlink'
  ]
  test.each([
    ['a message that ends with the URL', (u: string) => new Error(`connect ECONNREFUSED for ${u}`)],
    [
      'a message with the URL in the middle',
      (u: string) => new Error(`invalid connection string ${u} (check the host)`)
    ],
    ['a quoted URL', (u: string) => new Error(`could not parse '${u}'`)],
    ['the URL twice', (u: string) => new Error(`${u} -> ${u}`)],
    ['a thrown string', (u: string) => `failed: ${u}`],
    [
      'a pg error with a code',
      (u: string) => Object.assign(new Error(`password authentication failed (${u})`), { code: '28P01' })
    ]
  ])('%s', (_, make) => {
    for (const u of URLS) {
      const text = describePgError(make(u))
      expect(text).not.toMatch(/postgres(ql)?:\/\//)
      expect(text).not.toContain('hunter2')
      expect(text).not.toContain('p%40ss')
      expect(text).toContain('<database-url>')
    }
  })

  test.each([
    [
      Object.assign(new Error('password authentication failed for user "chainlink"'), { code: '28P01' }),
      'password authentication failed for user "chainlink" (28P01)'
    ],
    [new Error('connect ECONNREFUSED 127.0.0.1:5432'), 'connect ECONNREFUSED 127.0.0.1:5432'],
    [
      Object.assign(new Error('database "chainlink" does not exist'), { code: '3D000' }),
      'database "chainlink" does not exist (3D000)'
    ],
    ['timeout expired', 'timeout expired']
  ])('keeps what helps: %s', (e, want) => expect(describePgError(e)).toBe(want))
})
