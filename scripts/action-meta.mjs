// Writes src/action-meta.ts from action.yml and package.json: the command line's version and its
// flags (each input's description and default), bundled into dist/cli.js so that the CLI needs no
// file beside it. `npm run bundle` runs it first; `--check` exits 1 when the file is stale (a unit
// test checks the same).
import { readFileSync, writeFileSync } from 'node:fs'
import { format, resolveConfig } from 'prettier'
import { parse } from 'yaml'

const root = new URL('..', import.meta.url)
const action = parse(readFileSync(new URL('action.yml', root), 'utf8'))
const { version } = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'))
/**
 * An input is a boolean (a bare `--flag` on the command line means true) when its default is true
 * or false, or, left unset by default (a boolean that may keep what the host has, as
 * 'port-holder'), its description names what `true` and `false` each do.
 */
const isBoolean = (dflt, description) =>
  /^(true|false)$/.test(dflt) || (dflt === '' && /\btrue\b/.test(description) && /\bfalse\b/.test(description))
const inputs = Object.entries(action.inputs).map(([name, v]) => {
  const description = String(v.description ?? '')
    .replace(/\s+/g, ' ')
    .trim()
  const dflt = String(v.default ?? '')
  return { name, description, default: dflt, boolean: isBoolean(dflt, description) }
})
const target = new URL('src/action-meta.ts', root)
const text = `// Generated from action.yml and package.json by scripts/action-meta.mjs (npm run bundle runs it):
// the command line's version and flags, bundled so that dist/cli.js reads no file beside it.

export const VERSION = ${JSON.stringify(version)}

/** Every input of action.yml, in its order: the CLI's flags (\`boolean\`: a bare flag means true). */
export const INPUTS: ReadonlyArray<{ name: string; description: string; default: string; boolean: boolean }> = ${JSON.stringify(inputs)}
`
const formatted = await format(text, { ...(await resolveConfig(target.pathname)), filepath: target.pathname })
if (process.argv.includes('--check')) {
  let current = ''
  try {
    current = readFileSync(target, 'utf8')
  } catch {
    /* missing: stale */
  }
  if (current !== formatted) {
    console.error('src/action-meta.ts is out of date with action.yml or package.json: run node scripts/action-meta.mjs')
    process.exit(1)
  }
} else writeFileSync(target, formatted)
