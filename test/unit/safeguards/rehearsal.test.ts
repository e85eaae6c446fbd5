import { describe, expect, it } from '@jest/globals'
import { rehearsalEnv, scratchUrl } from '../../../src/safeguards/rehearsal.js'
import { readInputs } from '../../../src/inputs/read.js'

describe('rehearsal container', () => {
  it('points the node URL as its container sees it at the scratch database, keeping credentials and options', () => {
    expect(scratchUrl('postgres://u:p%40ss@db:5432/chainlink?sslmode=disable', 'clr_rehearsal_ab')).toBe(
      'postgres://u:p%40ss@db:5432/clr_rehearsal_ab?sslmode=disable'
    )
  })

  it('replaces the DB URL the node uses in its env, and adds CL_DATABASE_URL for a -secrets file node', () => {
    expect(rehearsalEnv(['A=1', 'CL_DATABASE_URL=postgres://x/live'], 'postgres://x/scratch')).toEqual([
      'A=1',
      'CL_DATABASE_URL=postgres://x/scratch'
    ])
    expect(rehearsalEnv(['DATABASE_URL=postgres://x/live'], 'postgres://x/scratch')).toEqual([
      'DATABASE_URL=postgres://x/scratch'
    ])
    expect(rehearsalEnv(['A=1'], 'postgres://x/scratch')).toEqual(['A=1', 'CL_DATABASE_URL=postgres://x/scratch'])
  })
})

describe('input rehearse-migration', () => {
  const get = (v: Record<string, string>) => (n: string) => v[n] ?? ''
  it('is off by default and needs the pre-upgrade backup', () => {
    expect(readInputs(get({ image: 'chainlink:2.20.0' }), () => undefined).rehearseMigration).toBe(false)
    expect(
      readInputs(get({ image: 'chainlink:2.20.0', 'rehearse-migration': 'true' }), () => undefined).rehearseMigration
    ).toBe(true)
    expect(() =>
      readInputs(get({ image: 'chainlink:2.20.0', 'rehearse-migration': 'true', backup: 'false' }), () => undefined)
    ).toThrow(/^Input 'rehearse-migration' needs 'backup: true'/)
  })
})
