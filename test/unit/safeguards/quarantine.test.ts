import { afterEach, beforeEach, describe, expect, it, test } from '@jest/globals'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  active,
  ciRunLabel,
  clearQuarantine,
  history,
  notTheImage,
  quarantined,
  quarantinePath,
  readQuarantine,
  recordQuarantine,
  type QuarantineEntry
} from '../../../src/safeguards/quarantine.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'clr-q-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const D1 = `sha256:${'1'.repeat(64)}`
const D2 = `sha256:${'2'.repeat(64)}`
const entry = (digest: string, runId = 'r1'): QuarantineEntry => ({
  digest,
  image: `chainlink:2.20.0@${digest}`,
  runId,
  at: '2026-11-30T00:00:00.000Z',
  reason: 'never ready'
})

describe('quarantine file', () => {
  it('is empty when nothing was recorded, and no file is created by a clear', () => {
    expect(readQuarantine(dir, 'chainlink').entries).toEqual([])
    expect(clearQuarantine(dir, 'chainlink', 'run x')).toBe(0)
    expect(existsSync(quarantinePath(dir, 'chainlink'))).toBe(false)
  })

  it('records a digest beside the journal, readable only by the owner, and finds it again', () => {
    recordQuarantine(dir, 'chainlink', entry(D1))
    expect(statSync(quarantinePath(dir, 'chainlink')).mode & 0o777).toBe(0o600)
    const f = readQuarantine(dir, 'chainlink')
    expect(quarantined(f, D1)?.runId).toBe('r1')
    expect(quarantined(f, D2)).toBeUndefined()
    expect(quarantined(f, undefined)).toBeUndefined()
    // another container on the same host has its own quarantine
    expect(readQuarantine(dir, 'other').entries).toEqual([])
  })

  it('a second rollback of the same digest replaces the active entry', () => {
    recordQuarantine(dir, 'chainlink', entry(D1, 'r1'))
    recordQuarantine(dir, 'chainlink', entry(D1, 'r2'))
    const f = readQuarantine(dir, 'chainlink')
    expect(active(f).map((e) => e.runId)).toEqual(['r2'])
  })

  it('a successful upgrade moves every active entry to history, which blocks nothing', () => {
    recordQuarantine(dir, 'chainlink', entry(D1))
    expect(clearQuarantine(dir, 'chainlink', 'run r3 upgraded to D2')).toBe(1)
    const f = readQuarantine(dir, 'chainlink')
    expect(quarantined(f, D1)).toBeUndefined()
    expect(history(f)).toHaveLength(1)
    expect(history(f)[0]).toMatchObject({ digest: D1, clearedBy: 'run r3 upgraded to D2' })
    // a later rollback of the same digest quarantines it again, history kept
    recordQuarantine(dir, 'chainlink', entry(D1, 'r4'))
    const g = readQuarantine(dir, 'chainlink')
    expect(quarantined(g, D1)?.runId).toBe('r4')
    expect(history(g)).toHaveLength(1)
  })

  it('names the CI run from the runner environment, when there is one', () => {
    expect(ciRunLabel({})).toBeUndefined()
    expect(ciRunLabel({ GITHUB_RUN_ID: '77', GITHUB_REPOSITORY: 'o/r', GITHUB_WORKFLOW: 'bump' })).toBe(
      'o/r run 77 (bump)'
    )
  })
})

describe('notTheImage: only what the image did quarantines it (review N16)', () => {
  const base = {
    reason: "gate health: 'chainlink' not ready within ready-timeout 5m",
    dbRestarted: false,
    daemonOutages: 0
  }
  test.each<[string, Partial<Parameters<typeof notTheImage>[0]>, RegExp | undefined]>([
    ['the new image never got ready: quarantined', {}, undefined],
    ['the standby exited: quarantined', { reason: "standby 'x-rollout-next' exited 1" }, undefined],
    ['the DB server restarted during the run', { dbRestarted: true }, /database server restarted/],
    [
      'the new container stopped gracefully by the host (a daemon restart between two calls)',
      { reason: "'chainlink' exited (exited, exit code 0) before becoming ready; last: not answering yet" },
      /stopped from outside the run/
    ],
    [
      'the leader stopped with the standby in the standby gate (a daemon restart the paused run never met)',
      {
        reason:
          "standby 'x-rollout-next' is not running (exited, exit code 1) before taking the lock; 'x' stopped as well (a Docker daemon restart?): the run rolls back"
      },
      /the host stopped both/
    ],
    [
      'the new container crashed: quarantined',
      { reason: "'chainlink' exited (exited, exit code 1) before becoming ready" },
      undefined
    ],
    [
      'the leader lost the lock before the handoff',
      {
        reason:
          "the lock moved to app x before the handoff; the lock or the database had already left 'chainlink', so ..."
      },
      /leader lost the lock/
    ],
    ['the daemon was out of reach during the run', { daemonOutages: 2 }, /Docker daemon was out of reach/],
    [
      "the gate's typed host fault (a daemon restart the paused run never met)",
      {
        reason: "'chainlink' lost the lock (the lease expired)",
        hostFault: 'the Docker daemon started the new container again during the health gate'
      },
      /the Docker daemon started the new container again/
    ],
    [
      'the run lost the DB (connection refused)',
      { reason: 'lock check: connect ECONNREFUSED 127.0.0.1:5432' },
      /lost the database/
    ],
    [
      'the DB went down under the gate',
      { reason: 'terminating connection due to administrator command' },
      /lost the database/
    ]
  ])('%s', (_, over, expected) => {
    const why = notTheImage({ ...base, ...over })
    if (expected) expect(why).toMatch(expected)
    else expect(why).toBeUndefined()
  })
})
