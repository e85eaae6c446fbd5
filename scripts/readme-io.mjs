// Regenerates the inputs/outputs tables of README.md from action.yml (between the markers), so
// the two never drift. `node scripts/readme-io.mjs --check` exits 1 when the README is stale.
import { readFileSync, writeFileSync } from 'node:fs'
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
} else writeFileSync(path, next)
