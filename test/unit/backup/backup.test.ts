import { describe, expect, test } from '@jest/globals'
import { tarPack, tarUnpack } from '../../../src/backup/codec.js'
import {
  backupBase,
  dumpName,
  manifestPathFor,
  parseDumpName,
  stampToIso,
  type BackupEntry,
  type Kind
} from '../../../src/backup/manifest.js'
import { parseConn, parseToolVersion, redact } from '../../../src/backup/pgtools.js'
import { planPrune } from '../../../src/backup/retention.js'

describe('backup names', () => {
  test('are prefixed, sortable by UTC time, and parse back', () => {
    const base = backupBase('cl-node db', new Date(Date.UTC(2026, 10, 21, 9, 5, 7, 42)), 'pre-upgrade')
    expect(base).toBe('chainlink-rollout-cl_node_db-20261121T090507042Z-pre-upgrade')
    const f = dumpName(base, 'zstd', true)
    expect(f).toBe(base + '.dump.zst.age')
    expect(parseDumpName(f)).toEqual({
      base,
      db: 'cl_node_db',
      stamp: '20261121T090507042Z',
      kind: 'pre-upgrade',
      compression: 'zstd',
      encrypted: true,
      layout: 'file'
    })
    expect(stampToIso('20261121T090507042Z')).toBe('2026-11-21T09:05:07.042Z')
    expect(manifestPathFor(`/b/${f}`)).toBe(`/b/${base}.json`)
    expect(parseDumpName(dumpName(base, 'gzip', false))).toMatchObject({ compression: 'gzip', encrypted: false })
    const a = backupBase('db', new Date(Date.UTC(2026, 0, 2)), 'scheduled')
    const b = backupBase('db', new Date(Date.UTC(2026, 0, 10)), 'scheduled')
    expect([b, a].sort()).toEqual([a, b])
  })

  test('other files are not ours', () => {
    for (const n of [
      'cl_backup_2.20.0.dump',
      'chainlink-rollout-notes.txt',
      'chainlink-rollout-db-20260101T000000000Z-scheduled.dump.zst.123.tmp',
      'chainlink-rollout-db-20260101T000000000Z-weekly.dump',
      'chainlink-rollout-db-20260101T000000000Z-scheduled.json'
    ])
      expect(parseDumpName(n)).toBeUndefined()
  })
})

describe('planPrune', () => {
  const mk = (i: number, kind: Kind, verified: boolean): BackupEntry => ({
    file: `f${i}`,
    manifestFile: `f${i}.json`,
    name: { base: `f${i}`, db: 'db', stamp: String(i), kind, compression: 'zstd', encrypted: false, layout: 'file' },
    createdAt: '',
    kind,
    verified
  })
  const ids = (es: BackupEntry[]) => es.map((e) => Number(e.file.slice(1)))

  test('keeps N verified per kind, drops superseded unverified ones', () => {
    // newest first
    const es = [
      mk(9, 'scheduled', false),
      mk(8, 'scheduled', true),
      mk(7, 'pre-upgrade', true),
      mk(6, 'scheduled', true),
      mk(5, 'scheduled', false),
      mk(4, 'pre-upgrade', true),
      mk(3, 'scheduled', true),
      mk(2, 'pre-upgrade', true),
      mk(1, 'scheduled', true)
    ]
    const p = planPrune(es, 2, 1)
    expect(ids(p.keep)).toEqual([9, 8, 7, 6])
    expect(ids(p.del)).toEqual([5, 4, 3, 2, 1])
  })

  test('never deletes the newest verified backup, whatever the counts', () => {
    const es = [mk(3, 'pre-upgrade', true), mk(2, 'scheduled', true), mk(1, 'scheduled', true)]
    expect(ids(planPrune(es, 0, 0).keep)).toEqual([3])
    expect(ids(planPrune([mk(2, 'scheduled', false), mk(1, 'scheduled', false)], 0, 0).keep)).toEqual([2, 1])
  })
})

describe('tar', () => {
  test('round-trips names, modes and contents (ustar, readable by tar)', () => {
    const buf = tarPack([
      { name: 'config.toml', data: Buffer.from('[Log]\n'), mode: 0o644 },
      { name: 'secrets.toml', data: Buffer.alloc(1000, 7), mode: 0o600 },
      { name: 'empty', data: Buffer.alloc(0) }
    ])
    expect(buf.length % 512).toBe(0)
    const out = tarUnpack(buf)
    expect(out.map((e) => [e.name, e.mode, e.data.length])).toEqual([
      ['config.toml', 0o644, 6],
      ['secrets.toml', 0o600, 1000],
      ['empty', 0o600, 0]
    ])
    const bad = Buffer.from(buf)
    bad[10] ^= 1
    expect(() => tarUnpack(bad)).toThrow(/corrupt archive header/)
  })
})

describe('secrets', () => {
  test('the URL given to tools has no password; redact removes it everywhere', () => {
    const c = parseConn('postgresql://node:p%40ss%2Fw0rd@db.local:5432/chainlink?sslmode=require')
    expect(c.password).toBe('p@ss/w0rd')
    expect(c.database).toBe('chainlink')
    expect(c.safeUrl).toBe('postgresql://node@db.local:5432/chainlink?sslmode=require')
    expect(c.withDatabase('scratch').safeUrl).toBe('postgresql://node@db.local:5432/scratch?sslmode=require')
    expect(c.withDatabase('scratch').password).toBe('p@ss/w0rd')
    const msg = redact('failed for postgresql://node:p%40ss%2Fw0rd@db.local/x: password p@ss/w0rd', c.password)
    expect(msg).not.toContain('w0rd')
    expect(() => parseConn('not a url')).toThrow(/not a valid URL/)
    expect(() => parseConn('mysql://u:secretpw@h/d')).toThrow(/must start with postgres/)
  })

  test('tool versions', () => {
    expect(parseToolVersion('pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)')).toEqual({
      version: '15.18',
      major: 15
    })
    expect(parseToolVersion('pg_restore (PostgreSQL) 17.2')).toEqual({ version: '17.2', major: 17 })
    expect(parseToolVersion('garbage')).toBeUndefined()
  })
})
