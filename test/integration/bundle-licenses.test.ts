// The licence files of the built bundles list every package bundled: webpack's module list of each
// bundle (written by `npm run bundle` to build/bundle-stats/) against dist/licenses.txt (the
// action) and dist/cli/licenses.txt (the command line). Needs `npm run bundle` first, as every
// integration test does.
import { describe, expect, test } from '@jest/globals'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '../..')

/** The names of the packages whose modules the bundle contains. */
function bundledPackages(statsFile: string): Set<string> {
  type Module = { identifier?: string; modules?: Module[] }
  const stats = JSON.parse(readFileSync(join(root, statsFile), 'utf8')) as { modules: Module[] }
  const names = new Set<string>()
  const walk = (ms: Module[] = []) => {
    for (const m of ms) {
      const resource = (m.identifier ?? '').split('!').pop()!.split('|')[0]
      const dir = /^(.*\/node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(resource)?.[1]
      if (dir) names.add((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string }).name)
      walk(m.modules)
    }
  }
  walk(stats.modules)
  return names
}

/** The `name@version` heading lines of a licence file, as names. */
function listed(licenceFile: string): Set<string> {
  const text = readFileSync(join(root, licenceFile), 'utf8')
  return new Set([...text.matchAll(/(?:^|\n---\n\n)((?:@[^/\s]+\/)?[^@\s]+)@[^\s]+\nLicense: /g)].map((m) => m[1]))
}

describe('the bundles list every bundled package in their licence file', () => {
  test.each([
    ['the action', 'build/bundle-stats/index.json', 'dist/licenses.txt', ['@actions/core', 'dockerode', 'pg', 'ssh2']],
    ['the command line', 'build/bundle-stats/cli.json', 'dist/cli/licenses.txt', ['dockerode', 'pg', 'age-encryption']]
  ])('%s', (_what, stats, licences, expected) => {
    const bundled = bundledPackages(stats)
    // the module list is the real one (a bundle of dockerode and pg pulls in dozens)
    expect(bundled.size).toBeGreaterThan(40)
    for (const p of expected) expect(bundled).toContain(p)
    const names = listed(licences)
    expect([...bundled].filter((p) => !names.has(p))).toEqual([])
  })
})
