import { describe, expect, test } from '@jest/globals'
import { generateIdentity, identityToRecipient } from 'age-encryption'
import { identityOpens } from '../../../src/backup/codec.js'
import type { BackupEntry, Manifest } from '../../../src/backup/manifest.js'
import { describeOwner, ownership, serverAddress, type BackupOwner } from '../../../src/backup/owner.js'
import { ownEntries, planPrune } from '../../../src/backup/retention.js'

const owner = (
  database: string,
  keys: string[],
  address = '172.17.0.1:5432',
  systemIdentifier?: string
): BackupOwner => ({
  server: { address, ...(systemIdentifier ? { systemIdentifier } : {}) },
  database,
  keys
})

describe('ownership: whose backup a manifest records', () => {
  const here = owner('chainlink', ['evm:0xaa', 'evm:0xab'], '172.17.0.1:5432', '7001')
  test.each<[string, BackupOwner | undefined, 'same' | 'other' | 'unknown']>([
    ['a manifest from before owners were recorded', undefined, 'unknown'],
    ['the same keys', owner('chainlink', ['evm:0xaa', 'evm:0xab']), 'same'],
    ['one key shared (the node added a key since)', owner('chainlink', ['evm:0xaa']), 'same'],
    [
      'no key shared, same database and server: another node',
      owner('chainlink', ['evm:0xbb'], '172.17.0.1:5432', '7001'),
      'other'
    ],
    ['no key shared, same database name on another server', owner('chainlink', ['evm:0xbb'], '10.0.0.5:5432'), 'other'],
    ['no keys recorded: same database on the same server', owner('chainlink', [], '127.0.0.1:5432', '7001'), 'same'],
    ['no keys recorded: same name, other server identity', owner('chainlink', [], '172.17.0.1:5432', '7002'), 'other'],
    ['no keys recorded: other database', owner('other', [], '172.17.0.1:5432', '7001'), 'other'],
    ['no keys recorded, no server identity: the address decides', owner('chainlink', [], '172.17.0.1:5432'), 'same']
  ])('%s', (_what, recorded, want) => expect(ownership(recorded, here)).toBe(want))

  test('a node whose database lost its keys still finds its backups by place', () => {
    const emptied = owner('chainlink', [], '172.17.0.1:5432', '7001')
    expect(ownership(owner('chainlink', ['evm:0xaa'], '172.17.0.1:5432', '7001'), emptied)).toBe('same')
    expect(ownership(owner('chainlink', ['evm:0xaa'], '10.0.0.5:5432', '7009'), emptied)).toBe('other')
  })

  test('described with its database, server and public keys', () => {
    expect(describeOwner(owner('cl', ['evm:0xaa'], 'db:5432', '7001'))).toBe(
      'database cl on server db:5432 (system identifier 7001), keys 0xaa'
    )
    expect(describeOwner(owner('cl', [], 'db:5432'))).toBe('database cl on server db:5432, no EVM keys')
  })

  test('serverAddress: host:port, never the credentials; this host whichever way reaches it', () => {
    const local = ['127.0.0.1', '172.17.0.1', '192.0.2.2']
    expect(serverAddress('postgres://u:secret@10.0.0.5:55432/db?sslmode=disable', local)).toBe('10.0.0.5:55432')
    expect(serverAddress('postgres://u:secret@db/cl', local)).toBe('db:5432')
    expect(serverAddress('postgres://u:secret@172.17.0.1:55432/db', local)).toBe('this host:55432')
    expect(serverAddress('postgres://u:secret@127.0.0.1:55432/db', local)).toBe('this host:55432')
    expect(serverAddress('postgres://u@/cl?host=/var/run/postgresql', local)).toBe('this host:5432')
    expect(serverAddress('postgres://u:s@%2Fvar%2Frun%2Fpostgresql:55432/cl', local)).toBe('this host:55432')
  })
})

describe('retention counts this node only', () => {
  const here = owner('chainlink', ['evm:0xaa'])
  const mk = (i: number, o: BackupOwner | undefined | 'none', db = 'chainlink'): BackupEntry => ({
    file: `f${i}`,
    manifestFile: `f${i}.json`,
    name: {
      base: `f${i}`,
      db,
      stamp: String(i),
      kind: 'scheduled',
      compression: 'zstd',
      encrypted: false,
      layout: 'file'
    },
    createdAt: '',
    kind: 'scheduled',
    manifest: o === 'none' ? undefined : ({ owner: o, verifications: [{ ok: true }] } as unknown as Manifest),
    verified: o !== 'none'
  })
  const ids = (es: BackupEntry[]) => es.map((e) => Number(e.file.slice(1)))

  test("another node's backups and owner-less manifests are neither counted nor deleted", () => {
    const es = [
      mk(6, owner('chainlink', ['evm:0xbb'])), // another node, newest
      mk(5, here),
      mk(4, undefined), // before owners were recorded
      mk(3, here),
      mk(2, 'none'), // a killed backup of this database: no manifest
      mk(1, 'none', 'other_db')
    ]
    const mine = ownEntries(es, here)
    expect(ids(mine)).toEqual([5, 3, 2])
    const p = planPrune(mine, 1, 1)
    expect(ids(p.keep)).toEqual([5])
    expect(ids(p.del)).toEqual([3, 2])
  })
})

describe('identityOpens: the identity of the recipient a backup is encrypted to', () => {
  test('its own identity opens it, another does not, comments are skipped', async () => {
    const id = await generateIdentity()
    const to = await identityToRecipient(id)
    expect(await identityOpens(id, to)).toBe(true)
    expect(await identityOpens(`# created 2026-12-01\n${id}\n`, to)).toBe(true)
    expect(await identityOpens(await generateIdentity(), to)).toBe(false)
    expect(await identityOpens('AGE-SECRET-KEY-1NOTAKEY', to)).toBe(false)
  })
})
