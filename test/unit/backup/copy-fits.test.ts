// A full copy of the database on its server (a restore by swap, the migration rehearsal) only
// where it is known to fit (review N9): the server's data directory on this host, its free space
// against the database's size with the margin; elsewhere unknown, never assumed.
import { describe, expect, test } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import { statfs } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { copyFits, MARGIN } from '../../../src/backup/space.js'

/** A server that answers the two questions copyFits asks: the database's size, its data directory. */
function server(bytes: number, dataDir: string | Error) {
  return {
    query: async (sql: string) => {
      if (/pg_database_size/.test(sql)) return { rows: [{ b: String(bytes) }] }
      if (dataDir instanceof Error) throw dataDir
      return { rows: [{ d: dataDir }] }
    }
  } as unknown as import('pg').Client
}

describe('copyFits', () => {
  const dir = mkdtempSync(`${tmpdir()}/copy-fits-`)
  test('a server on another host: unknown, not fitting', async () => {
    const r = await copyFits(server(1024, dir), 'db.example.internal', 'chainlink')
    expect(r).toMatchObject({ ok: false, unknown: true })
    expect(r.why).toMatch(/cannot be known from this host/)
  })
  test('a local server whose data directory the role may not read: unknown', async () => {
    const r = await copyFits(server(1024, new Error('permission denied')), '127.0.0.1', 'chainlink')
    expect(r).toMatchObject({ ok: false, unknown: true })
  })
  test('a local server with room for the copy and its margin: fits', async () => {
    expect(await copyFits(server(1024 * 1024, dir), '127.0.0.1', 'chainlink')).toMatchObject({ ok: true })
  })
  test('a local server without room: does not fit, naming the need and what is free', async () => {
    const s = await statfs(dir)
    const free = Number(s.bavail) * Number(s.bsize)
    const r = await copyFits(server(Math.ceil(free / MARGIN) + 1024 * 1024 * 1024, dir), 'localhost', 'chainlink')
    expect(r.ok).toBe(false)
    expect(r.unknown).toBeUndefined()
    expect(r.why).toMatch(/a copy of chainlink needs about \d+ MB .* MB free in /)
  })
})
