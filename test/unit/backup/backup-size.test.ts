import { linesLog } from '../../support/log.js'
import { describe, expect, test } from '@jest/globals'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { backupBase, dumpName, manifestPathFor, parseDumpName, type BackupEntry } from '../../../src/backup/manifest.js'
import { listingDigest } from '../../../src/backup/dirformat.js'
import { Progress } from '../../../src/backup/progress.js'
import { DEFAULT_RATIO, ensureSpace, freeBytes, measuredRatios } from '../../../src/backup/space.js'

describe('directory layout names', () => {
  test('<base>.dump.d is ours, parses back as a directory, and has its manifest beside it', () => {
    const base = backupBase('db', new Date(Date.UTC(2026, 10, 30, 4, 0, 0, 0)), 'scheduled')
    const d = dumpName(base, 'zstd', false, 'directory')
    expect(d).toBe(`${base}.dump.d`)
    expect(parseDumpName(d)).toMatchObject({ base, layout: 'directory', encrypted: false })
    expect(parseDumpName(`${base}.dump.zst`)).toMatchObject({ layout: 'file' })
    expect(manifestPathFor(`/b/${d}`)).toBe(`/b/${base}.json`)
    expect(manifestPathFor(`/b/${d}/`)).toBe(`/b/${base}.json`)
    expect(parseDumpName(`${base}.dump.d.123.tmp`)).toBeUndefined()
  })

  test('the listing digest is that of sha256sum output, so it can be checked by hand', () => {
    const files = [
      { name: '3412.dat.zst', bytes: 3, sha256: 'a'.repeat(64) },
      { name: 'toc.dat', bytes: 5, sha256: 'b'.repeat(64) }
    ]
    // printf '%s  %s\n' ... | sha256sum
    expect(listingDigest(files)).toBe(
      createHash('sha256')
        .update(`${'a'.repeat(64)}  3412.dat.zst\n${'b'.repeat(64)}  toc.dat\n`)
        .digest('hex')
    )
  })
})

describe('space', () => {
  const entry = (dump: object, dbBytes: number) =>
    ({ manifest: { dump, database: { bytes: dbBytes } } }) as unknown as BackupEntry

  test('ratios come from the newest backup with a manifest, else the defaults', () => {
    expect(measuredRatios([]).ratio).toBe(DEFAULT_RATIO)
    const r = measuredRatios([
      { manifest: undefined } as BackupEntry,
      entry({ file: 'x.dump.zst', bytes: 250, rawBytes: 900 }, 1000),
      entry({ file: 'old.dump.zst', bytes: 700 }, 1000)
    ])
    expect(r).toEqual({ ratio: 0.25, rawRatio: 0.9, source: 'measured on x.dump.zst' })
  })

  test('refused with the directory named, the need and what is free; a missing directory counts its parent', async () => {
    const d = await mkdtemp(join(tmpdir(), 'clr-space-'))
    try {
      const missing = join(d, 'not', 'yet')
      const { free, at } = await freeBytes(missing)
      expect(at).toBe(d)
      expect(free).toBeGreaterThan(0)
      await expect(ensureSpace(missing, 10, 'a small thing')).resolves.toBeUndefined()
      await expect(ensureSpace(missing, free * 2, 'the backup of db (x)')).rejects.toThrow(
        new RegExp(
          `^not enough free space in backup-dir ${missing}: the backup of db \\(x\\) needs about \\d+ MB .* MB free; nothing was written`
        )
      )
    } finally {
      await rm(d, { recursive: true, force: true })
    }
  })
})

describe('progress', () => {
  test('counts tables from --verbose lines, consumes them, keeps errors for the message', () => {
    const out: string[] = []
    let bytes = 0
    const p = new Progress({
      what: 'pg_dump of db',
      log: linesLog(out),
      tables: 4,
      bytes: () => bytes,
      totalBytes: 400 * 1048576,
      everyMs: 3600000
    })
    try {
      expect(p.onLine('pg_dump: dumping contents of table "evm.logs"')).toBe(true)
      expect(p.onLine('pg_dump: dumping contents of table "public.pipeline_runs"')).toBe(true)
      expect(p.onLine('pg_dump: finished item 3412 TABLE DATA logs')).toBe(true)
      expect(p.onLine('pg_dump: error: query failed: ERROR:  canceling statement due to lock timeout')).toBe(false)
      expect(p.onLine('pg_dump: detail: Query was: LOCK TABLE public.x')).toBe(false)
      bytes = 100 * 1048576
      p.report()
      expect(out[0]).toMatch(/^pg_dump of db: \d+ s, 1\/4 tables, 100 of ~400 MB, [\d.]+ MB\/s, about \d+ s left$/)
    } finally {
      p.stop()
    }
  })

  test('pg_restore -j: finished items and indexes', () => {
    const out: string[] = []
    const p = new Progress({ what: 'restore', log: linesLog(out), tables: 2, everyMs: 3600000 })
    try {
      p.onLine('pg_restore: launching item 3412 TABLE DATA logs')
      p.onLine('pg_restore: finished item 3412 TABLE DATA logs')
      p.onLine('pg_restore: finished item 3420 INDEX evm_logs_idx')
      p.report()
      expect(out[0]).toMatch(/^restore: \d+ s, 1\/2 tables, 1 indexes$/)
    } finally {
      p.stop()
    }
  })
})
