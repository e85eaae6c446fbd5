// Measures the house from its entries (src/index.ts, src/cli.ts): the longest chain of imports
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
// and no room too big: CI checks the formatting, so a file's lines are its formatted size
for (const f of readdirSync(resolve(root, 'src'), { recursive: true }).filter((x) => x.endsWith('.ts'))) {
  const lines = readFileSync(resolve(root, 'src', f), 'utf8').split('\n').length - 1
  if (lines > MAX_LINES) {
    console.log(`src/${f}: ${lines} lines (at most ${MAX_LINES})`)
    failed = true
  }
}
process.exit(failed ? 1 : 0)
