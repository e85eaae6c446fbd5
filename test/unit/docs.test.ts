// docs/algorithm.md says what the code does: the health gate's paragraph is held to the gate's own
// behaviour (test/unit/handoff/gates.test.ts proves each rule on observations), so a change of
// either shows here.
import { describe, expect, test } from '@jest/globals'
import { readFileSync } from 'node:fs'

const algorithm = readFileSync(new URL('../../docs/algorithm.md', import.meta.url), 'utf8')
const section = (n: number) => {
  const at = algorithm.indexOf(`## ${n}. `)
  return algorithm.slice(at, algorithm.indexOf('\n## ', at + 1)).replace(/\s+/g, ' ')
}

describe('docs/algorithm.md against the code', () => {
  test('§6: HEALTHCHECK is not waited for, only an unhealthy check made while ready fails', () => {
    const s = section(6)
    expect(s).toContain('HEALTHCHECK is not waited for')
    expect(s).toContain('`unhealthy` from a check that ran while the node answered ready fails it')
    expect(s).not.toMatch(/a healthy Docker HEALTHCHECK/)
  })
  test('§6: checks failing before the upgrade may keep failing; a newly failing one fails the gate', () => {
    const s = section(6)
    expect(s).toContain('may keep failing')
    expect(s).toContain('a newly failing check fails the gate')
  })
  test('every source file the algorithm names exists', () => {
    for (const m of algorithm.matchAll(/`(src\/[\w/.-]+\.ts)`/g))
      expect(() => readFileSync(new URL(`../../${m[1]}`, import.meta.url))).not.toThrow()
  })
})
