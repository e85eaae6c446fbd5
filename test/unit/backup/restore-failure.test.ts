import { describe, expect, test } from '@jest/globals'
import { restoreFailure } from '../../../src/backup/restore.js'

// A one-transaction restore is four parts settled together: the archive fed to pg_restore,
// pg_restore, its SQL piped into psql, psql. Which error the operator is shown, if any.
const ok: PromiseSettledResult<unknown> = { status: 'fulfilled', value: undefined }
const no = (reason: unknown): PromiseSettledResult<unknown> => ({ status: 'rejected', reason })
const closed = Object.assign(new Error('zstd decompression failed: Premature close'), {
  code: 'ERR_STREAM_PREMATURE_CLOSE'
})
const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })
const corrupt = new Error('zstd decompression failed: Unknown frame descriptor (the file is corrupt or truncated)')
const psqlErr = new Error('psql exited 3: ERROR: canceling statement due to lock timeout')
const pgRestoreErr = new Error('pg_restore exited 1: input file does not appear to be a valid archive')

describe('restoreFailure: the root cause of a failed restore, and no failure where none happened', () => {
  test.each([
    ['all four succeeded', [ok, ok, ok, ok], undefined],
    // pg_restore may exit 0 before reading the archive's last bytes (seen under load with an
    // encrypted backup): the restore is complete, the feed's premature close is not a failure
    [
      'pg_restore stopped reading before the last bytes, and it and psql succeeded',
      [no(closed), ok, ok, ok],
      undefined
    ],
    ['the same with EPIPE', [no(epipe), ok, ok, ok], undefined],
    [
      'a corrupt archive comes first, whatever failed after it',
      [no(corrupt), no(pgRestoreErr), ok, no(psqlErr)],
      corrupt
    ],
    ["psql's error before pg_restore's EPIPE", [no(epipe), no(pgRestoreErr), no(epipe), no(psqlErr)], psqlErr],
    ["pg_restore's error when psql succeeded", [no(closed), no(pgRestoreErr), ok, ok], pgRestoreErr],
    ['the SQL pipe failed alone', [ok, ok, no(epipe), ok], epipe]
  ])('%s', (_name, rs, expected) => {
    expect(restoreFailure(rs as PromiseSettledResult<unknown>[])?.reason).toBe(expected)
  })
})
