import { describe, expect, test } from '@jest/globals'
import {
  compareVersions,
  directionOf,
  downgradeRefusal,
  newestMigration,
  type Direction
} from '../../../src/rollout/downgrade.js'

describe('compareVersions: semver as the node version gate reads it', () => {
  test.each<[string, string, number]>([
    ['2.18.0', '2.19.0', -1],
    ['2.19.0', '2.19.0', 0],
    ['v2.19.0', '2.19.0', 0],
    ['2.10.0', '2.9.3', 1],
    ['2.30.1-cre', '2.30.1', -1],
    ['2.30.1-beta.2', '2.30.1-beta.10', -1],
    ['2.30.1-beta', '2.30.1-beta.1', -1],
    ['2.30.1-1', '2.30.1-alpha', -1],
    ['2.19.0+build.5', '2.19.0', 0]
  ])('%s vs %s -> %d', (a, b, want) => expect(compareVersions(a, b)).toBe(want))
  test('not a version throws', () => expect(() => compareVersions('latest', '2.19.0')).toThrow(/latest/))
})

describe('directionOf: is the target older than the database?', () => {
  test.each<[string, Parameters<typeof directionOf>[0], Direction]>([
    ['newer than node_versions', { target: '2.20.0', dbNodeVersion: '2.19.0' }, { kind: 'up' }],
    ['the same version (a rebuilt image)', { target: '2.19.0', dbNodeVersion: '2.19.0' }, { kind: 'up' }],
    [
      'older than node_versions: the version gate would refuse it',
      { target: '2.18.0', dbNodeVersion: '2.19.0', running: '2.19.0' },
      { kind: 'down', from: '2.19.0', to: '2.18.0', source: 'node_versions' }
    ],
    [
      'a pre-release of the same version is older (2.30.1-cre < 2.30.1)',
      { target: '2.30.1-cre', dbNodeVersion: '2.30.1' },
      { kind: 'down', from: '2.30.1', to: '2.30.1-cre', source: 'node_versions' }
    ],
    [
      'node_versions wins over the running version',
      { target: '2.18.0', dbNodeVersion: '2.17.0', running: '2.19.0' },
      { kind: 'up' }
    ],
    [
      'no node_versions row: the running version decides',
      { target: '2.18.0', running: '2.19.0' },
      { kind: 'down', from: '2.19.0', to: '2.18.0', source: 'running' }
    ],
    [
      'node_versions not semver (skipped by the gate too): the running version',
      { target: '2.18.0', dbNodeVersion: 'dev', running: '2.18.0' },
      { kind: 'up' }
    ],
    [
      'target version unknown',
      { dbNodeVersion: '2.19.0' },
      { kind: 'unknown', why: "the target's version is not known" }
    ],
    [
      'target tag not a version',
      { target: 'latest', dbNodeVersion: '2.19.0' },
      { kind: 'unknown', why: "the target's version is not known ('latest')" }
    ],
    ['nothing to compare with', { target: '2.18.0' }, { kind: 'up' }]
  ])('%s', (_, o, want) => expect(directionOf(o)).toEqual(want))
})

describe('downgradeRefusal: says why and what to do', () => {
  test('names the version gate and allow-downgrade', () => {
    const m = downgradeRefusal('repo:2.18.0@sha256:x', {
      kind: 'down',
      from: '2.19.0',
      to: '2.18.0',
      source: 'node_versions'
    })
    expect(m).toMatch(/is lower than database version \(2\.19\.0\)/)
    expect(m).toMatch(/the node's version gate/)
    expect(m).toMatch(/Nothing was changed\. To go back deliberately set 'allow-downgrade: true'/)
  })
})

describe("newestMigration: from the older image's `node db status`", () => {
  const line = (v: number, state = 'applied') =>
    `2026-12-04T11:00:00.000Z [INFO] version:${v}, path:${String(v).padStart(4, '0')}_x.sql, type:sql, state:${state}, appliedAt: 2026-12-04`
  test.each<[string, string, number | undefined]>([
    ['the last migration the binary ships', [line(1), line(78), line(241, 'applied')].join('\n'), 241],
    ['pending ones count (a DB behind the binary)', [line(1), line(250, 'pending')].join('\n'), 250],
    ['out of order lines', [line(241), line(95)].join('\n'), 241],
    [
      'no status lines (an older binary without db status)',
      'usage: chainlink ...\nunknown db command: status',
      undefined
    ],
    ['a "Database version" line is not a migration', '[INFO] Database version: 250', undefined]
  ])('%s', (_, out, want) => expect(newestMigration(out)).toBe(want))
})
