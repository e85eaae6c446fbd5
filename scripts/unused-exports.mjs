// Lists what src/ exports that no other file imports (src, tests, bench): an export nobody
// imports is either dead or private to its module. Exits 1 when there is any, so `npm run lint`
// catches it. Uses the TypeScript compiler's own resolution (tsconfig.test.json).
import { dirname, relative, resolve } from 'node:path'
import ts from 'typescript'

const root = resolve(dirname(new URL(import.meta.url).pathname), '..')
const configPath = resolve(root, 'tsconfig.test.json')
const config = ts.getParsedCommandLineOfConfigFile(
  configPath,
  {},
  { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} }
)
const program = ts.createProgram(config.fileNames, config.options)
const checker = program.getTypeChecker()
const ours = program.getSourceFiles().filter((f) => !f.isDeclarationFile && f.fileName.startsWith(root + '/'))
// The bundle's entry: what it exports is for nobody.
const entries = new Set([resolve(root, 'src/index.ts'), resolve(root, 'src/cjs-shim.ts')])

const real = (s) => (s && s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s)
const used = new Set()
const useAll = (moduleSpecifier) => {
  const mod = checker.getSymbolAtLocation(moduleSpecifier)
  if (mod) for (const s of checker.getExportsOfModule(mod)) used.add(real(s))
}
for (const file of ours) {
  for (const st of file.statements) {
    if (ts.isImportDeclaration(st)) {
      const b = st.importClause?.namedBindings
      if (st.importClause?.name) used.add(real(checker.getSymbolAtLocation(st.importClause.name)))
      if (b && ts.isNamespaceImport(b)) useAll(st.moduleSpecifier)
      if (b && ts.isNamedImports(b)) for (const e of b.elements) used.add(real(checker.getSymbolAtLocation(e.name)))
    } else if (ts.isExportDeclaration(st) && st.moduleSpecifier) {
      if (!st.exportClause) useAll(st.moduleSpecifier)
      else if (ts.isNamedExports(st.exportClause))
        for (const e of st.exportClause.elements) used.add(real(checker.getSymbolAtLocation(e.name)))
    }
  }
  // `await import('./x.js')` uses the whole module
  const visit = (n) => {
    if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0])
      useAll(n.arguments[0])
    ts.forEachChild(n, visit)
  }
  visit(file)
}

const unused = []
for (const file of ours) {
  const rel = relative(root, file.fileName)
  if (!rel.startsWith('src/') || entries.has(file.fileName)) continue
  const mod = checker.getSymbolAtLocation(file)
  if (!mod) continue
  for (const s of checker.getExportsOfModule(mod)) {
    if (used.has(real(s))) continue
    const decl = s.declarations?.[0]
    const line = decl ? decl.getSourceFile().getLineAndCharacterOfPosition(decl.getStart()).line + 1 : 0
    unused.push(`${rel}:${line}: ${s.name} is exported but imported nowhere`)
  }
}
for (const u of unused) console.log(u)
process.exit(unused.length ? 1 : 0)
