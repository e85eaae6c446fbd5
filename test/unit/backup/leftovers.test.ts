// A killed backup's temp files are removed by the next backup, and only those (review N11).
import { describe, expect, test } from '@jest/globals'
import { existsSync, mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { removeStaleTemps } from '../../../src/backup/leftovers.js'

describe('removeStaleTemps', () => {
  test('removes old temp files and directories of dead processes; keeps live, fresh and foreign ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'leftovers-'))
    const dead = 2 ** 22 + 12345 // above Linux's default pid_max: no process has it
    const old = new Date(Date.now() - 4 * 3600_000)
    const put = (name: string, age?: Date, asDir = false) => {
      const p = join(dir, name)
      if (asDir) mkdirSync(p)
      else writeFileSync(p, 'x')
      if (age) utimesSync(p, age, age)
      return p
    }
    const killedFile = put(`chainlink-rollout-db-20261204T000000000Z-scheduled.dump.zst.${dead}.tmp`, old)
    const killedDir = put(`chainlink-rollout-db-20261204T000000000Z-scheduled.dump.d.${dead}.tmp`, old, true)
    const killedManifest = put(`chainlink-rollout-db-20261204T000000000Z-scheduled.json.${dead}.1764806400000.tmp`, old)
    const live = put(`chainlink-rollout-db-20261204T010000000Z-scheduled.dump.zst.${process.pid}.tmp`, old)
    const fresh = put(`chainlink-rollout-db-20261204T020000000Z-scheduled.dump.zst.${dead}.tmp`)
    const foreign = put(`someone-else.${dead}.tmp`, old)
    const removed = await removeStaleTemps(dir)
    expect(removed.sort()).toHaveLength(3)
    for (const p of [killedFile, killedDir, killedManifest]) expect(existsSync(p)).toBe(false)
    for (const p of [live, fresh, foreign]) expect(existsSync(p)).toBe(true)
  })
  test('a backup-dir that does not exist yet: nothing to do', async () => {
    expect(await removeStaleTemps(join(tmpdir(), 'no-such-backup-dir-here'))).toEqual([])
  })
})
