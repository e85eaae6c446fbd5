import { describe, expect, it, test } from '@jest/globals'
import { InputError, readInputs } from '../../../src/inputs/read.js'
import { chooseDbPlan } from '../../../src/rollout/rollback.js'

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
})
