// The way back from a bad target across hosts (src/operations/host-back.ts), on plain values:
// which host takes the DB back, which waits for it, and which newer processes keep it migrated.
import { describe, expect, test } from '@jest/globals'
import { newerProcesses, wayBack } from '../../../src/operations/host-back.js'
import type { NodeSession } from '../../../src/postgres/database.js'

describe('wayBack', () => {
  const migrated = { goose: 256, nodeVersion: '2.20.0', nodeVersionsTable: true }
  test.each([
    ['the host with the newer image, nobody serving', '2.19.0', migrated, '2.20.0', false, 'back'],
    ['a newer image than the one that migrated', '2.19.0', migrated, '2.21.0', false, 'back'],
    ['the old instance (the leader host), nobody serving', '2.19.0', migrated, '2.19.0', false, 'wait'],
    ['a new version serves (migrated for good)', '2.19.0', migrated, '2.20.0', true, 'none'],
    [
      'the DB not migrated',
      '2.19.0',
      { goose: 250, nodeVersion: '2.19.0', nodeVersionsTable: true },
      '2.20.0',
      false,
      'none'
    ],
    ['an upgrade, not a way back', '2.20.0', migrated, '2.19.0', false, 'none'],
    ['versions unknown', undefined, migrated, '2.20.0', false, 'none']
  ])('%s', (_, targetVersion, db, localVersion, served, kind) => {
    expect(wayBack({ targetVersion, db, localVersion, served })).toBe(kind)
  })
})

describe('newerProcesses', () => {
  const s = (appId: string, version: string, clientAddr = '10.0.2.7'): NodeSession =>
    ({ appId, version, clientAddr, pid: 1, applicationName: '', clientPort: null }) as unknown as NodeSession
  test('one entry per newer app, older and equal left out', () => {
    const got = newerProcesses(
      [s('a', '2.20.0'), s('a', '2.20.0'), s('b', '2.19.0'), s('c', '2.21.0', '10.0.3.9')],
      '2.19.0'
    )
    expect(got.map((x) => [x.appId, x.clientAddr])).toEqual([
      ['a', '10.0.2.7'],
      ['c', '10.0.3.9']
    ])
  })
})
