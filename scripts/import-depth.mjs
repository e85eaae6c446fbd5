// Measures the house from its entries (src/index.ts, src/cli.ts): the longest chain of imports
// and which folder imports which (BELOW, below),
// down to a leaf, in files, and any import cycle; and every file of src/ against MAX_LINES (400).
// Every import of a file of src/ counts, type-only ones too: a reader follows them all. Exits 1 when a chain is longer than MAX_DEPTH files or a
// cycle exists, so `npm run lint` (and CI) catch it; prints the longest chain of each entry.
// The goal is MAX_DEPTH (8); `npm run lint` passes `--max` with the depth reached so far, a
// ratchet that only goes down. `--runtime` leaves out type-only imports (what the bundle loads).
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, relative, resolve } from 'node:path'
import ts from 'typescript'

const MAX_DEPTH = Number(process.argv[process.argv.indexOf('--max') + 1]) || 8
const MAX_LINES = 400
const RUNTIME = process.argv.includes('--runtime')
const root = resolve(dirname(new URL(import.meta.url).pathname), '..')
const entries = ['src/index.ts', 'src/cli.ts']

/** The files of src/ that `file` imports (static imports, re-exports and `import('...')`). */
function importsOf(file) {
  const text = readFileSync(file, 'utf8')
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const specs = []
  const visit = (n) => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier) {
      const typeOnly = ts.isImportDeclaration(n) ? n.importClause?.isTypeOnly : n.isTypeOnly
      if (!(RUNTIME && typeOnly)) specs.push(n.moduleSpecifier.text)
    } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0])
      if (ts.isStringLiteral(n.arguments[0])) specs.push(n.arguments[0].text)
    if (
      !RUNTIME &&
      ts.isImportTypeNode(n) &&
      ts.isLiteralTypeNode(n.argument) &&
      ts.isStringLiteral(n.argument.literal)
    )
      specs.push(n.argument.literal.text)
    ts.forEachChild(n, visit)
  }
  visit(sf)
  const out = new Set()
  for (const s of specs) {
    if (!s.startsWith('.')) continue
    const target = resolve(dirname(file), s.replace(/\.js$/, '.ts'))
    if (existsSync(target)) out.add(target)
  }
  return [...out]
}

const graph = new Map()
const edges = (f) => {
  if (!graph.has(f)) graph.set(f, importsOf(f))
  return graph.get(f)
}

// Longest chain below each file (memoised depth-first walk); a file met again while on the
// walk's path closes a cycle.
const longest = new Map()
const onPath = []
const cycles = []
function chainFrom(f) {
  if (longest.has(f)) return longest.get(f)
  const at = onPath.indexOf(f)
  if (at >= 0) {
    cycles.push([...onPath.slice(at), f])
    return [f]
  }
  onPath.push(f)
  let best = []
  for (const g of edges(f)) {
    const c = chainFrom(g)
    if (c.length > best.length) best = c
  }
  onPath.pop()
  const chain = [f, ...best]
  longest.set(f, chain)
  return chain
}

const rel = (f) => relative(root, f)
let failed = false
for (const e of entries) {
  const chain = chainFrom(resolve(root, e))
  const over = chain.length > MAX_DEPTH
  failed ||= over
  console.log(`${e}: longest import chain ${chain.length} files (at most ${MAX_DEPTH})${over ? ': TOO DEEP' : ''}`)
  console.log(`  ${chain.map(rel).join(' -> ')}`)
}
for (const c of cycles) console.log(`import cycle: ${c.map(rel).join(' -> ')}`)
if (cycles.length) failed = true
// Which folder may import which (docs/layout in README.md): each floor imports only the floors below
// it, so a reader climbing down from an operation never meets a room that leads back up. The top
// files are plain values every floor uses (errors, log, duration, sleep, report, context); the two
// entries (index.ts, cli.ts) put the action together and may import anything.
const BELOW = {
  image: [],
  trust: ['image'],
  postgres: ['trust'],
  docker: ['image', 'trust'],
  backup: ['postgres', 'trust'],
  node: ['docker', 'postgres', 'trust', 'image'],
  journal: ['node', 'docker', 'postgres', 'trust'],
  handoff: ['node', 'docker', 'postgres', 'trust', 'image'],
  safeguards: ['backup', 'handoff', 'journal', 'node', 'docker', 'postgres', 'trust', 'image'],
  inputs: ['safeguards', 'backup', 'node', 'docker', 'postgres', 'trust', 'image'],
  rollout: ['safeguards', 'backup', 'handoff', 'journal', 'node', 'docker', 'postgres', 'trust', 'image'],
  operations: [
    'rollout',
    'inputs',
    'safeguards',
    'backup',
    'handoff',
    'journal',
    'node',
    'docker',
    'postgres',
    'trust',
    'image'
  ],
  // the end of a run (the textfile, the webhook), for both edges
  notify: ['safeguards', 'backup', 'journal', 'trust'],
  edge: ['notify', 'inputs', 'journal', 'docker', 'trust', 'image']
}
// The inputs are read at the door (operations/ and the edge); below it a function gets what it
// needs as a typed parameter (the rollout's preflight, withNode, names the settings it reads). The
// top files that name them are listed here, and the list only shrinks: context.ts types an
// operation as (ctx, inputs), cli.ts reads them from its flags (issue: ctx carries the run's
// services only).
const READS_INPUTS = new Set(['src/context.ts', 'src/cli.ts'])
const folderOf = (f) => {
  const parts = rel(f).split('/')
  return parts.length > 2 ? parts[1] : ''
}
const TOP_ENTRIES = new Set(['src/index.ts', 'src/cli.ts', 'src/context.ts'])
for (const f of readdirSync(resolve(root, 'src'), { recursive: true }).filter((x) => x.endsWith('.ts'))) {
  const file = resolve(root, 'src', f)
  const from = folderOf(file)
  for (const g of edges(file)) {
    const to = folderOf(g)
    if (to === from || to === '') continue
    if (to === 'inputs' && READS_INPUTS.has(rel(file))) continue
    if (to === 'inputs' && !['operations', 'edge'].includes(from)) {
      console.log(`wrong-way import: ${rel(file)} -> ${rel(g)} (below the door, settings arrive as parameters)`)
      failed = true
      continue
    }
    const ok = from === '' ? TOP_ENTRIES.has(rel(file)) : (BELOW[from] ?? []).includes(to)
    if (!ok) {
      console.log(`wrong-way import: ${rel(file)} -> ${rel(g)} (${from || 'top'}/ may not import ${to}/)`)
      failed = true
    }
  }
}
// ctx carries the run's services only: the inputs travel beside it, never inside it. Context has
// no `inputs` (the type checker refuses a ctx.inputs), and no file spells one, in a cast either.
const contextText = readFileSync(resolve(root, 'src/context.ts'), 'utf8')
const contextBody = contextText.match(/export interface Context \{([\s\S]*?)\n\}/)?.[1] ?? ''
if (/^\s*inputs\??:/m.test(contextBody)) {
  console.log("src/context.ts: Context carries the run's services only; the inputs go beside it, (ctx, inputs)")
  failed = true
}
for (const f of readdirSync(resolve(root, 'src'), { recursive: true }).filter((x) => x.endsWith('.ts'))) {
  const lines = readFileSync(resolve(root, 'src', f), 'utf8').split('\n')
  lines.forEach((l, i) => {
    if (/\bctx\)?\.inputs\b|\binputs\b[^=]*\}\s*=\s*ctx\b/.test(l)) {
      console.log(`src/${f}:${i + 1}: reads the inputs from ctx; pass what the function needs as a parameter`)
      failed = true
    }
  })
}
// and no room too big: CI checks the formatting, so a file's lines are its formatted size
for (const f of readdirSync(resolve(root, 'src'), { recursive: true }).filter((x) => x.endsWith('.ts'))) {
  const lines = readFileSync(resolve(root, 'src', f), 'utf8').split('\n').length - 1
  if (lines > MAX_LINES) {
    console.log(`src/${f}: ${lines} lines (at most ${MAX_LINES})`)
    failed = true
  }
}
process.exit(failed ? 1 : 0)
