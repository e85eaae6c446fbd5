import { describe, expect, test } from '@jest/globals'
import { Readable } from 'node:stream'
import { restoreFailure } from '../../../src/backup/restore.js'
import { FinalCommitHeld } from '../../../src/backup/archive.js'

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
    ['the SQL pipe failed alone', [ok, ok, no(epipe), ok], epipe],
    // a staged directory's decompression feed that broke is the cause, even though pg_restore
    // read its cut-short file as a shorter table and exited 0
    ['a staged feed broke, everything else exited 0', [ok, ok, ok, ok, no(corrupt)], corrupt],
    ['a staged feed broke and psql failed', [ok, ok, ok, no(psqlErr), no(corrupt)], corrupt],
    ['every part succeeded and the staged feeds too', [ok, ok, ok, ok, ok], undefined]
  ])('%s', (_name, rs, expected) => {
    expect(restoreFailure(rs as PromiseSettledResult<unknown>[])?.reason).toBe(expected)
  })

  test("every part exited 0 but pg_restore's SQL did not reach its final COMMIT: a failure", () => {
    const f = restoreFailure([ok, ok, ok, ok], false)
    expect(String((f?.reason as Error).message)).toMatch(/output ended before the end of the archive/)
  })
})

// pg_restore --single-transaction's SQL as it streams to psql, in chunks cut anywhere: what psql
// receives, and whether the restore was written to its end (only then does the caller COMMIT).
const TRAILER = '\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict AbC123\n\n'
const HEAD = '--\n-- PostgreSQL database dump\n--\n\n\\restrict AbC123\n\nBEGIN;\n\nCREATE TABLE t (x text);\n'
const COPY = 'COPY public.t (x) FROM stdin;\na\nCOMMIT;\nb\n\\.\n'

async function through(sql: string, chunk: number): Promise<{ out: string; complete: boolean }> {
  const parts: Buffer[] = []
  const b = Buffer.from(sql, 'latin1')
  for (let i = 0; i < b.length; i += chunk) parts.push(b.subarray(i, i + chunk))
  const f = new FinalCommitHeld()
  let out = ''
  Readable.from(parts).pipe(f)
  for await (const c of f) out += (c as Buffer).toString('latin1')
  return { out, complete: f.complete }
}

describe('FinalCommitHeld: pg_restore -1 output without its final COMMIT', () => {
  const whole = `${HEAD}${COPY}\nCOMMIT;\n${TRAILER}`
  test.each([1, 3, 8, 9, 64, 100000])('whole output in chunks of %i: COMMIT removed, nothing else', async (n) => {
    const r = await through(whole, n)
    expect(r.complete).toBe(true)
    expect(r.out).toBe(`${HEAD}${COPY}\n${TRAILER}`)
    // the COPY row that reads "COMMIT;" is data and stays
    expect(r.out).toContain('a\nCOMMIT;\nb')
  })
  test.each([
    ['cut before the final COMMIT', `${HEAD}${COPY}`],
    ['cut inside the final COMMIT', `${HEAD}${COPY}\nCOMM`],
    [
      'cut in the middle of the COPY, right after a data row "COMMIT;"',
      `${HEAD}COPY public.t (x) FROM stdin;\na\nCOMMIT;\nb`
    ],
    ['cut in the trailer after the COMMIT', `${HEAD}${COPY}\nCOMMIT;\n\n\\unrestr`],
    ['nothing at all', '']
  ])('%s: not complete, and psql is never sent a COMMIT line at the end', async (_name, sql) => {
    for (const n of [1, 7, 100000]) {
      const r = await through(sql, n)
      expect(r.complete).toBe(false)
      expect(r.out.endsWith('\nCOMMIT;\n')).toBe(false)
      expect(/\nCOMMIT;\n\n?(\\unrestr|$)/.test(r.out)).toBe(false)
    }
  })
  test('a "COMMIT;" data row far from the end passes unchanged', async () => {
    const big = `${HEAD}COPY public.t (x) FROM stdin;\nCOMMIT;\n${'row\n'.repeat(5000)}\\.\n\nCOMMIT;\n${TRAILER}`
    const r = await through(big, 1000)
    expect(r.complete).toBe(true)
    expect(r.out).toBe(`${HEAD}COPY public.t (x) FROM stdin;\nCOMMIT;\n${'row\n'.repeat(5000)}\\.\n\n${TRAILER}`)
  })
})
