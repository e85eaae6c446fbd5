// The order of the test files (test/support/sequencer.cjs) in a fresh checkout, as in CI, where no
// report of an earlier run exists: it comes from the sequencer's table of seconds alone. A long
// file missing from it would start last and be the whole run's tail.
import { describe, expect, it } from '@jest/globals'
import { readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '../../..')
const { SECONDS } = createRequire(import.meta.url)('../../support/sequencer.cjs') as { SECONDS: Record<string, number> }
const files = readdirSync(join(root, 'test/integration')).filter((f) => f.endsWith('.test.ts'))

describe('the sequencer table', () => {
  it('lists every integration file (a new one: its seconds from build/jest-integration.json)', () => {
    expect(files.filter((f) => !(f in SECONDS))).toEqual([])
  })
  it('lists no file that is gone', () => {
    expect(Object.keys(SECONDS).filter((f) => !files.includes(f))).toEqual([])
  })
})
