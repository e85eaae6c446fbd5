// Releasing like the actions users trust: every action a workflow of this repository or an
// example uses is pinned by full commit SHA with its version in a comment, the examples use the
// majors this repository's own workflows use, releases are created as drafts, and the repository
// has a dependency-update config for its npm packages and its actions.
import { describe, expect, test } from '@jest/globals'
import { readdirSync, readFileSync } from 'node:fs'
import { parse } from 'yaml'

const read = (p: string) => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8')
const files = [
  ...readdirSync(new URL('../../.github/workflows', import.meta.url)).map((f) => `.github/workflows/${f}`),
  ...readdirSync(new URL('../../examples', import.meta.url))
    .filter((f) => f.endsWith('.yml') && f !== 'actionlint.yaml')
    .map((f) => `examples/${f}`)
]
/** Every `uses:` of a file: [the reference, the comment after it]. */
const uses = (file: string) =>
  [...read(file).matchAll(/^\s*(?:-\s+)?uses:\s*(\S+)(?:\s+#\s*(.*))?$/gm)].map((m) => [m[1], m[2] ?? ''] as const)

describe('actions are pinned', () => {
  test.each(files)('%s: by full commit SHA, the version in a comment', (file) => {
    const refs = uses(file).filter(([ref]) => !ref.startsWith('./'))
    for (const [ref, comment] of refs) {
      expect(ref).toMatch(/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/)
      expect(comment).toMatch(/^v\d+(\.\d+){0,2}$/)
    }
  })

  test("the examples use the same versions of actions as this repository's own workflows", () => {
    const version = new Map<string, string>()
    for (const f of files.filter((x) => x.startsWith('.github/')))
      for (const [ref, comment] of uses(f)) version.set(ref.split('@')[0], `${ref} # ${comment}`)
    const examples = files.filter((x) => x.startsWith('examples/'))
    for (const f of examples)
      for (const [ref, comment] of uses(f)) {
        const name = ref.split('@')[0]
        if (version.has(name)) expect(`${ref} # ${comment}`).toBe(version.get(name))
      }
  })
})

describe('release workflow', () => {
  const release = read('.github/workflows/release.yml')
  test('creates the GitHub release as a draft, and moves the major tag only once it is published', () => {
    const creates = release.split('\n').filter((l) => l.includes('gh release create'))
    expect(creates.length).toBeGreaterThan(0)
    for (const l of creates) expect(l).toContain('--draft')
    const wf = parse(release) as { on: Record<string, unknown>; jobs: Record<string, { if?: string }> }
    expect(wf.on.release).toEqual({ types: ['published'] })
    const mover = Object.values(wf.jobs).find((j) => JSON.stringify(j).includes('git push --force'))!
    expect(mover.if).toContain("github.event_name == 'release'")
  })
})

describe('dependency updates of the repository itself', () => {
  test('.github/dependabot.yml covers npm and github-actions', () => {
    const cfg = parse(read('.github/dependabot.yml')) as { updates: Array<{ 'package-ecosystem': string }> }
    expect(cfg.updates.map((u) => u['package-ecosystem']).sort()).toEqual(['github-actions', 'npm'])
  })
})

describe('package.json and CHANGELOG.md agree on the version', () => {
  const version = (JSON.parse(read('package.json')) as { version: string }).version
  const changelog = read('CHANGELOG.md')
  const released = [...changelog.matchAll(/^## \[(\d+\.\d+\.\d+)\]/gm)].map((m) => m[1])
  test('an [Unreleased] section comes first, above every release', () => {
    const sections = [...changelog.matchAll(/^## \[([^\]]+)\]/gm)].map((m) => m[1])
    expect(sections[0]).toBe('Unreleased')
    expect(sections.slice(1)).toEqual(released)
  })
  test("the newest release is package.json's version; before the first, the note names it", () => {
    if (released.length) expect(released[0]).toBe(version)
    else expect(changelog).toContain(`\`package.json\` says ${version}`)
  })
  test('the command line reports the same version (src/action-meta.ts, generated)', () => {
    expect(read('src/action-meta.ts').match(/export const VERSION = ['"]([^'"]+)['"]/)?.[1]).toBe(version)
  })
})
