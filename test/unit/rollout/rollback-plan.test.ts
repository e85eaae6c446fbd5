import { describe, expect, it, test } from '@jest/globals'
import { InputError, readInputs } from '../../../src/inputs/read.js'
import { chooseDbPlan } from '../../../src/rollout/rollback.js'
import { repairBackup } from '../../../src/operations/repair.js'

const AGE_RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'
const read = (vals: Record<string, string>) =>
  readInputs(
    (k) => vals[k] ?? '',
    () => undefined
  )

function inputOf(vals: Record<string, string>): string | undefined {
  try {
    read(vals)
    return undefined
  } catch (e) {
    expect(e).toBeInstanceOf(InputError)
    return (e as InputError).input
  }
}

describe('readInputs: rollback settings that could only fail after the leader stopped', () => {
  const base = { image: 'smartcontract/chainlink:2.19.0', 'db-rollback': 'restore' }
  test.each<[string, Record<string, string>, string | undefined]>([
    ['restore without a backup', { backup: 'false' }, 'db-rollback'],
    ['restore of an encrypted backup without the identity', { 'backup-recipient': AGE_RECIPIENT }, 'backup-identity'],
    ['restore with a backup', {}, undefined],
    ['restore, backup off, rollback off (nothing would restore)', { backup: 'false', rollback: 'false' }, undefined],
    ['migrate-down without a backup', { backup: 'false', 'db-rollback': 'migrate-down' }, undefined],
    ['a backup operation: no rollback involved', { backup: 'false', operation: 'backup', image: '' }, undefined]
  ])('%s', (_what, extra, input) => {
    expect(inputOf({ ...base, ...extra })).toBe(input)
  })

  it('names the other input in the message', () => {
    expect(() => read({ ...base, backup: 'false' })).toThrow(/'backup' is false/)
  })
})

describe('chooseDbPlan: decided before anything is stopped', () => {
  const before = { goose: 241, nodeVersion: '2.18.0', nodeVersionsTable: true }
  test.each([
    [{ dbRollback: 'migrate-down', dbBefore: before, backupReadable: false }, 'migrate-down'],
    [
      { dbRollback: 'migrate-down', dbBefore: { nodeVersionsTable: false }, backupFile: '/b', backupReadable: true },
      'restore'
    ],
    [{ dbRollback: 'migrate-down', dbBefore: { nodeVersionsTable: false }, backupReadable: false }, 'none'],
    [{ dbRollback: 'restore', dbBefore: before, backupFile: '/b', backupReadable: true }, 'restore'],
    [{ dbRollback: 'restore', dbBefore: before, backupFile: '/b', backupReadable: false }, 'none'],
    [{ dbRollback: 'restore', dbBefore: before, backupReadable: false }, 'none']
  ] as const)('%j -> %s', (o, method) => {
    const p = chooseDbPlan(o)
    expect(p.method).toBe(method)
    if (p.method === 'none') expect(p.why).toMatch(/backup|goose/)
  })

  // a down-migration can fail: the readable backup is its fallback, else the reason there is none
  test.each([
    [{ backupFile: '/b', backupReadable: true }, { fallback: '/b' }],
    [{ backupFile: '/b', backupReadable: false }, { noFallback: 'the pre-upgrade backup /b cannot be read here' }],
    [{ backupReadable: false }, { noFallback: 'no pre-upgrade backup was taken' }]
  ] as const)('migrate-down with %j: %j if it fails', (o, expected) => {
    expect(chooseDbPlan({ dbRollback: 'migrate-down', dbBefore: before, ...o })).toEqual({
      method: 'migrate-down',
      ...expected
    })
  })
})

describe('repairBackup: what a repair may restore', () => {
  test.each<[string, Parameters<typeof repairBackup>[0], string | undefined, RegExp | undefined]>([
    [
      'the input names one',
      { named: '/in', journaled: '/j', rollingBack: false, nothingServes: false },
      '/in',
      undefined
    ],
    [
      "the run's rollback had begun",
      { journaled: '/j', rollingBack: true, nothingServes: false },
      '/j',
      /\/j \(from its journal\)/
    ],
    ['nothing leads', { journaled: '/j', rollingBack: false, nothingServes: true }, '/j', /from its journal/],
    [
      'a new container leads: may have served, its writes are kept',
      { journaled: '/j', rollingBack: false, nothingServes: false },
      undefined,
      /restored only when 'backup-file' names it/
    ],
    ['no backup anywhere', { rollingBack: true, nothingServes: true }, undefined, undefined]
  ])('%s', (_what, o, file, note) => {
    const r = repairBackup(o)
    expect(r.file).toBe(file)
    if (note) expect(r.note).toMatch(note)
    else expect(r.note).toBeUndefined()
  })
})
