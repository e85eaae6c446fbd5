// docs/algorithm.md says what the code does: the health gate's paragraph is held to the gate's own
// behaviour (test/unit/handoff/gates.test.ts proves each rule on observations), so a change of
// either shows here.
import { describe, expect, test } from '@jest/globals'
import { readdirSync, readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { judgeHealth } from '../../src/handoff/gates.js'
import { RequestBudget } from '../../src/node/observer.js'

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

// What docs/algorithm.md (and the pages beside it) cite from the code is held to the code: the
// names it points at exist where it says, its numbers are the code's, the journal's step groups
// are its sections, and the defaults it quotes are action.yml's.
const docs = readdirSync(new URL('../../docs', import.meta.url))
  .filter((f) => f.endsWith('.md'))
  .map((f) => [`docs/${f}`, readFileSync(new URL(`../../docs/${f}`, import.meta.url), 'utf8')] as const)
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
const action = parse(readFileSync(new URL('../../action.yml', import.meta.url), 'utf8')) as {
  inputs: Record<string, { default?: string }>
}
const flat = algorithm.replace(/\s+/g, ' ')

describe('docs/algorithm.md cites the code as it is', () => {
  test('every `name` in `src/...ts` is declared in that file', () => {
    const cited = [...flat.matchAll(/`(\w+)` in `(src\/[\w/.-]+\.ts)`/g)]
    expect(cited.length).toBeGreaterThan(5)
    for (const [, name, file] of cited) {
      const src = readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8')
      expect(
        `${name} in ${file}: ${new RegExp(`(function|class|const|type|interface|let)\\s+${name}\\b`).test(src)}`
      ).toBe(`${name} in ${file}: true`)
    }
  })

  test("the journal's step groups (type Step) are the algorithm's numbered sections", () => {
    const journal = readFileSync(new URL('../../src/journal/journal.ts', import.meta.url), 'utf8')
    const steps = journal.slice(journal.indexOf('type Step ='), journal.indexOf('\n\n', journal.indexOf('type Step =')))
    const groups = [...steps.matchAll(/\/\/ (\d)\. ([\w-]+)/g)]
    expect(groups.length).toBeGreaterThan(3)
    for (const [, n, word] of groups) {
      const heading = algorithm.match(new RegExp(`^## ${n}\\. ([\\w-]+)`, 'm'))?.[1]
      expect(`§${n} ${heading?.toLowerCase()}`).toBe(`§${n} ${word.toLowerCase()}`)
    }
  })

  test('the gates the code names are the ones the algorithm describes', () => {
    const loops = readFileSync(new URL('../../src/handoff/gate-loops.ts', import.meta.url), 'utf8')
    const gates = new Set([...loops.matchAll(/(?:runGate[^(]*\(\s*ctx,\s*|GateError\()'([\w-]+)'/g)].map((m) => m[1]))
    expect([...gates].sort()).toEqual(['health', 'lock-handoff', 'standby-ready'])
    for (const g of gates) expect(flat.toLowerCase()).toContain(g)
  })

  test("§6: the request budget quoted is the observer's", () => {
    const b = new RequestBudget()
    const quoted = [...readme, ...docs.map(([, t]) => t)].join('\n').replace(/\s+/g, ' ')
    const m = section(6).match(/at most (\d+) requests in any (\d+) s window/)
    expect(m && [Number(m[1]), Number(m[2]) * 1000]).toEqual([b.limit, b.windowMs])
    // and every other page that states the budget says the same
    for (const x of quoted.matchAll(/budget is (\d+)/g)) expect(Number(x[1])).toBe(b.limit)
  })

  test('§6: the gate fails after the quoted time without a counted answer, not before', () => {
    const s = Number(section(6).match(/fails only after (\d+) s without a counted answer/)?.[1])
    const app = 'bbbbbbbb-2222-4222-8222-222222222222'
    const up = { running: true, status: 'running', exitCode: 0, restartCount: 0 }
    const lock = { holder: app, sessions: [] }
    // ready and checked at 0, then nothing counted (429s) until `end`
    const run = (end: number) =>
      judgeHealth(
        [0, end].map((at) => ({
          at,
          container: up,
          lock,
          ready: { at: 0, kind: 'ready' as const, status: 200 },
          checks: { at: 0, kind: 'checks' as const, failing: [] }
        })),
        { name: 'n', appId: app, restarts0: 0, before: [], stableMs: 3_600_000, readyBy: 3_600_000 }
      ).kind
    expect([run(s * 1000 - 1), run(s * 1000 + 1)]).toEqual(['wait', 'fail'])
  })
})

describe("the defaults and inputs the documentation quotes are action.yml's", () => {
  const pages = [['README.md', readme] as const, ...docs]
  test.each(pages)('%s: "`input: value`, the default" is the default', (_, text) => {
    const t = text.replace(/\s+/g, ' ')
    for (const m of t.matchAll(/`([a-z][a-z-]*): ([^`]+)`,? \(?(?:the )?default\b/g))
      expect(`${m[1]}: ${action.inputs[m[1]]?.default}`).toBe(`${m[1]}: ${m[2]}`)
  })
  test('docs/algorithm.md: every `key: value` names an input (or a daemon setting it says is one)', () => {
    const keys = [...flat.matchAll(/`([a-z][a-z-]*): [^`]+`/g)].map((m) => m[1])
    const daemon = new Set(['live-restore'])
    for (const k of keys) expect(`${k}: ${k in action.inputs || daemon.has(k)}`).toBe(`${k}: true`)
  })
})
