// The licence files of the two bundles, dist/licenses.txt (the action) and dist/cli/licenses.txt
// (the command line): every package the bundle contains, with its version, its licence and the
// licence text from the package. The package list is webpack's module list (`ncc build
// --stats-out`, written by `npm run bundle` to build/bundle-stats/). ncc's own `--license` is not
// used: it writes one file per chunk under the same name, so the last chunk's (age-encryption
// alone) replaced the main bundle's list.
//   node scripts/licenses.mjs          write both files from the stats
//   node scripts/licenses.mjs --check  exit 1 when a bundled package is missing from its file
// A bundled package with neither a licence file nor a `license` in its package.json fails both.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'

const root = resolve(dirname(new URL(import.meta.url).pathname), '..')
const BUNDLES = [
  { stats: 'build/bundle-stats/index.json', out: 'dist/licenses.txt', what: 'the action (dist/index.js)' },
  { stats: 'build/bundle-stats/cli.json', out: 'dist/cli/licenses.txt', what: 'the command line (dist/cli.js)' }
]

/** The directories of the packages whose modules are in the bundle (webpack stats, nested modules too). */
export function bundledPackageDirs(stats) {
  const dirs = new Set()
  const walk = (modules) => {
    for (const m of modules ?? []) {
      // the identifier is the loader chain, then the resource: only the resource counts
      const resource = String(m.identifier ?? m.name ?? '')
        .split('!')
        .pop()
        .split('|')[0]
      const at = /^(.*\/node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(resource)
      if (at) dirs.add(at[1])
      walk(m.modules)
    }
  }
  walk(stats.modules)
  for (const c of stats.children ?? []) for (const d of bundledPackageDirs(c)) dirs.add(d)
  return dirs
}

const LICENCE_FILE = /^(licen[cs]e|copying|unlicense)(\.(md|txt|markdown|mit|bsd|apache))?$/i

function describe(dir) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  const license =
    typeof pkg.license === 'string' ? pkg.license : (pkg.licenses ?? []).map((l) => l.type ?? l).join(' OR ') || ''
  const file = readdirSync(dir).find((f) => LICENCE_FILE.test(f))
  const text = file ? readFileSync(join(dir, file), 'utf8').trim() : ''
  return { name: pkg.name, version: pkg.version, license, text }
}

/** The licence file's text for these package directories; throws naming a package with no licence at all. */
export function licenceText(dirs) {
  const seen = new Map()
  for (const dir of dirs) {
    const d = describe(dir)
    seen.set(`${d.name}@${d.version}`, d)
  }
  const missing = [...seen.values()].filter((d) => !d.license && !d.text)
  if (missing.length) throw new Error(`no licence found for ${missing.map((d) => `${d.name}@${d.version}`).join(', ')}`)
  return [...seen.values()]
    .sort((a, b) => (a.name === b.name ? a.version.localeCompare(b.version) : a.name < b.name ? -1 : 1))
    .map(
      (d) =>
        `${d.name}@${d.version}\nLicense: ${d.license || '(see the text)'}\n\n${d.text || `(the package ships no licence file; its package.json says ${d.license})`}\n`
    )
    .join('\n---\n\n')
}

/** The package names a licence file lists (its `name@version` lines after each separator). */
export function listedPackages(text) {
  return new Set(
    text
      .split('\n---\n\n')
      .map((block) => /^((?:@[^/\s]+\/)?[^@\s]+)@\S+$/m.exec(block.split('\n')[0])?.[1])
      .filter(Boolean)
  )
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes('--check')
  let bad = 0
  for (const b of BUNDLES) {
    const statsPath = join(root, b.stats)
    if (!existsSync(statsPath)) {
      console.error(`${b.stats} is missing: run npm run bundle first`)
      process.exit(1)
    }
    const dirs = bundledPackageDirs(JSON.parse(readFileSync(statsPath, 'utf8')))
    const outPath = join(root, b.out)
    if (check) {
      const listed = listedPackages(readFileSync(outPath, 'utf8'))
      const absent = [...dirs].map((d) => describe(d).name).filter((n) => !listed.has(n))
      if (absent.length) {
        console.error(`${b.out} lacks packages bundled in ${b.what}: ${[...new Set(absent)].join(', ')}`)
        bad = 1
      } else console.log(`${b.out}: all ${listed.size} bundled packages listed`)
    } else {
      writeFileSync(outPath, licenceText(dirs))
      console.log(`${b.out}: ${listedPackages(readFileSync(outPath, 'utf8')).size} packages of ${b.what}`)
    }
  }
  process.exit(bad)
}
