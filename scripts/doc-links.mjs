// Every relative link of the README and of docs/ points to a file that exists, and every
// #anchor to a heading of its page (GitHub's slugs), so moving a section into docs/ cannot leave
// a dead link behind. Paths named in the prose (`docs/x.md`, `examples/x.yml`) are held to the
// tree too. Exits 1 naming each broken one. Run by `npm run lint`.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const pages = [
  'README.md',
  'CHANGELOG.md',
  'SECURITY.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`)
].filter((p) => existsSync(join(root, p)))

/** The page without its fenced code blocks (a link-like text in an example is not a link). */
const prose = (text) => text.replace(/^(```|~~~)[\s\S]*?^\1/gm, '')

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(text) {
  const seen = new Map()
  const out = new Set()
  for (const m of prose(text).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = m[1]
      .replace(/<[^>]+>/g, '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-')
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n ? `${base}-${n}` : base)
  }
  return out
}

const broken = []
for (const page of pages) {
  const text = prose(readFileSync(join(root, page), 'utf8'))
  const here = dirname(join(root, page))
  const targets = [...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1])
  for (const t of targets) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(t)) continue // http:, https:, mailto:
    const [path, anchor] = t.split('#')
    const file = path ? join(here, decodeURIComponent(path)) : join(root, page)
    if (!existsSync(file)) {
      broken.push(`${page}: (${t}): no such file ${relative(root, file)}`)
      continue
    }
    if (anchor && file.endsWith('.md') && !anchors(readFileSync(file, 'utf8')).has(anchor))
      broken.push(`${page}: (${t}): no heading '#${anchor}' in ${relative(root, file)}`)
  }
  // paths named in the prose, from the repository's root (node-facts.md names the node's own docs/)
  if (page !== 'docs/node-facts.md')
    for (const m of text.matchAll(/(?<![\w./-])((?:docs|examples)\/[\w.-]+\.(?:md|yml|yaml))(?![\w/-])/g))
      if (!existsSync(join(root, m[1]))) broken.push(`${page}: names ${m[1]}, which does not exist`)
}
if (broken.length) {
  console.error(`Broken links in the documentation:\n  ${broken.join('\n  ')}`)
  process.exit(1)
}
