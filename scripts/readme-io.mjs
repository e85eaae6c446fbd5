// Regenerates the inputs/outputs tables of README.md from action.yml (between the markers), so
// the two never drift. `node scripts/readme-io.mjs --check` exits 1 when the README is stale:
// the tables differ from action.yml, or its Layout section misses a file of src/ or names one
// that is gone.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { parse } from 'yaml'

const root = new URL('..', import.meta.url)
const action = parse(readFileSync(new URL('action.yml', root), 'utf8'))
const cell = (s) =>
  String(s ?? '')
    .replace(/\|/g, '\\|')
    .replace(/\n/g, ' ')
    .trim()
const inputs = Object.entries(action.inputs).map(
  ([k, v]) =>
    `| \`${k}\` | ${v.default === '' || v.default === undefined ? '' : `\`${cell(v.default)}\``} | ${cell(v.description)} |`
)
const outputs = Object.entries(action.outputs).map(([k, v]) => `| \`${k}\` | ${cell(v.description)} |`)
const block = [
  '<!-- io:start (generated from action.yml by scripts/readme-io.mjs) -->',
  '### Inputs',
  '',
  '| input | default | description |',
  '|---|---|---|',
  ...inputs,
  '',
  '### Outputs',
  '',
  '| output | description |',
  '|---|---|',
  ...outputs,
  '<!-- io:end -->'
].join('\n')
const path = new URL('README.md', root)
const readme = readFileSync(path, 'utf8')
const next = readme.replace(/<!-- io:start[\s\S]*?<!-- io:end -->/, block)
if (process.argv.includes('--check')) {
  if (next !== readme) {
    console.error('README.md inputs/outputs are out of date with action.yml: run node scripts/readme-io.mjs')
    process.exit(1)
  }
  const layout = readme.slice(readme.indexOf('## Layout'), readme.indexOf('\n## ', readme.indexOf('## Layout') + 1))
  const files = readdirSync(new URL('src', root), { recursive: true })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `src/${f}`)
  // a file is named by its path, or by its name in a list that follows its folder (`src/backup/` (`create.ts`, ...))
  const named = (f) => layout.includes(`\`${f}\``) || layout.includes(`\`${f.split('/').at(-1)}\``)
  const missing = files.filter((f) => !named(f))
  // one line per folder: `- \`src/<folder>/\`` opens it, and each file of the folder is named on that line
  const lines = layout.split('\n')
  for (const dir of new Set(files.map((f) => f.split('/').slice(0, -1).join('/') + '/'))) {
    const line = lines.find((l) => l.startsWith(`- \`${dir}\``) || (dir === 'src/' && l.startsWith('- `src/` (top)')))
    if (!line) missing.push(`${dir} (no line of its own)`)
    else
      for (const f of files.filter((x) => x.startsWith(dir) && !x.slice(dir.length).includes('/')))
        if (!line.includes(`\`${f.slice(dir.length)}\``)) missing.push(`${f} (not on ${dir}'s line)`)
  }
  const gone = [...layout.matchAll(/`(src\/[^`]+\.ts)`/g)].map((m) => m[1]).filter((f) => !files.includes(f))
  if (missing.length || gone.length) {
    if (missing.length) console.error(`README.md Layout does not name: ${missing.join(', ')}`)
    if (gone.length) console.error(`README.md Layout names files that are gone: ${gone.join(', ')}`)
    process.exit(1)
  }
  // package.json and CHANGELOG.md agree: the newest released section is package.json's version
  const version = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')).version
  const released = readFileSync(new URL('CHANGELOG.md', root), 'utf8').match(/^## \[(\d+\.\d+\.\d+)\]/m)?.[1]
  if (released && released !== version) {
    console.error(`CHANGELOG.md's newest release is ${released}, package.json says ${version}`)
    process.exit(1)
  }
} else writeFileSync(path, next)
