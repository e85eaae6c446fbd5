// The desired image reference of a node, read from a file in the operator's repository (input
// `image-file`). Renovate bumps that file; the action reconciles the node with it. Three forms:
//   - dotenv:  CHAINLINK_IMAGE=smartcontract/chainlink:2.19.0@sha256:...   (quotes, `export`, comments)
//   - compose: services.<name>.image (the service named `chainlink`, else the only image whose
//              repository contains `chainlink`); `${VAR:-default}` reads the default, as Renovate does
//   - bare:    a file holding just the reference (comments and blank lines allowed)
// Plain values in, plain values out; every error names the file and says what was wrong.
import { parseImageRef, repository } from './ref.js'
import { LineCounter, parseDocument, isMap, isScalar, isPair, type Node as YamlNode, type Document } from 'yaml'
import { ActionError } from '../errors.js'

interface ImageReference {
  /** The reference as written (registry/repository[:tag][@digest]). */
  reference: string
  /** Registry host (with port) and path, as written: `127.0.0.1:5555/smartcontract/chainlink`. */
  repository: string
  tag?: string
  /** `sha256:<64 hex>` */
  digest?: string
}

export interface DesiredImage extends ImageReference {
  /** 1-based line of the file where the reference stands. */
  line: number
}

interface ReadDesiredImageOptions {
  /**
   * Which entry holds the reference: a variable name for dotenv files (`CHAINLINK_IMAGE`), a
   * service name for compose files (`chainlink`). Without it, the default rules pick one.
   */
  key?: string
}

export class ImageFileError extends ActionError {}

export class ImageReferenceError extends ActionError {}

/** The repository's name without the registry, e.g. `smartcontract/chainlink`. */
export function repositoryPath(repository: string): string {
  const slash = repository.indexOf('/')
  if (slash < 0) return repository
  const first = repository.slice(0, slash)
  return isDomain(first) ? repository.slice(slash + 1) : repository
}

function isDomain(first: string): boolean {
  return (
    first.includes('.') || first.includes(':') || first === 'localhost' || /[A-Z]/.test(first) || first.startsWith('[')
  )
}

/**
 * Parses and validates an image reference (the grammar is image-ref.ts's, shared with the
 * `image` input). A desired state must name a tag or a digest: "whatever latest is today"
 * cannot be reconciled. Throws ImageReferenceError.
 */
export function parseImageReference(input: string): ImageReference {
  const reference = input.trim()
  const bad = (why: string) => new ImageReferenceError(`malformed image reference "${reference}": ${why}`)
  if (reference.includes('$')) throw bad('it contains a variable ($...), which is not resolved here')
  let ref
  try {
    ref = parseImageRef(reference, { defaultTag: false })
  } catch (e) {
    throw bad((e as Error).message.replace(/^'[^']*' /, ''))
  }
  if (ref.tag === undefined && ref.digest === undefined) {
    throw bad('it names neither a tag nor a digest; pin a version, e.g. smartcontract/chainlink:2.19.0@sha256:...')
  }
  return {
    reference,
    repository: repository(ref),
    ...(ref.tag !== undefined ? { tag: ref.tag } : {}),
    ...(ref.digest !== undefined ? { digest: ref.digest } : {})
  }
}

interface Candidate {
  /** what it is, for messages: `CHAINLINK_IMAGE` or `service "chainlink"` */
  label: string
  value: string
  line: number
}

function fail(fileName: string, message: string): never {
  throw new ImageFileError(`${fileName}: ${message}`)
}

function toDesired(fileName: string, c: Candidate, quote = true): DesiredImage {
  try {
    return { ...parseImageReference(c.value), line: c.line }
  } catch (e) {
    if (!(e instanceof ImageReferenceError)) throw e
    // A file of one token that is no image reference may be something else entirely (a
    // password file): its text is never repeated.
    if (!quote)
      fail(
        fileName,
        `line ${c.line}: ${c.label}: the file's only token is not a valid image reference (its text is not repeated here)`
      )
    fail(fileName, `line ${c.line}: ${c.label}: ${e.message}`)
  }
}

function looksLikeChainlink(value: string): boolean {
  try {
    return parseImageReference(value).repository.toLowerCase().includes('chainlink')
  } catch {
    return false
  }
}

function describe(cs: Candidate[]): string {
  return cs.map((c) => `${c.label} (line ${c.line})`).join(', ')
}

/**
 * Reads the desired image reference from a file's text. fileName is used to tell the form apart
 * (`.yml`/`.yaml` are YAML) and in every error message.
 */
export function readDesiredImage(text: string, fileName: string, opts: ReadDesiredImageOptions = {}): DesiredImage {
  const content = text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n')
  const lines = content.split('\n')
  const meaningful = lines
    .map((l, i) => ({ text: l.trim(), line: i + 1 }))
    .filter((l) => l.text !== '' && !l.text.startsWith('#'))
  if (meaningful.length === 0) fail(fileName, 'no image reference found: the file is empty or holds only comments')

  // A bare file: one token on one line (not KEY=value, not a YAML key).
  const dotenvLine = /^(?:export\s+)?[A-Za-z_][A-Za-z0-9_.-]*\s*=/
  if (
    meaningful.length === 1 &&
    !/\s/.test(meaningful[0].text) &&
    !dotenvLine.test(meaningful[0].text) &&
    !/^[\w.-]+:$/.test(meaningful[0].text)
  ) {
    const only = meaningful[0]
    if (opts.key) fail(fileName, `key "${opts.key}" was given, but the file holds a bare reference, not named entries`)
    return toDesired(fileName, { label: 'the reference', value: only.text, line: only.line }, false)
  }

  const isYamlName = /\.ya?ml$/i.test(fileName)
  if (!isYamlName && meaningful.every((l) => dotenvLine.test(l.text))) return readDotenv(lines, fileName, opts)
  if (isYamlName || meaningful.some((l) => /^[\w.-]+:(\s|$)/.test(l.text))) return readYaml(content, fileName, opts)
  const offending = meaningful.find((l) => !dotenvLine.test(l.text))!
  fail(
    fileName,
    `line ${offending.line}: not a KEY=value line, and the file is not YAML or a bare reference; ` +
      'expected a dotenv file (CHAINLINK_IMAGE=...), a compose file (services.<name>.image) or a file holding just the reference'
  )
}

// ---------------------------------------------------------------- dotenv

interface Assignment extends Candidate {
  key: string
  /** quoted values are taken literally */
  quote: '' | '"' | "'"
}

function readDotenv(lines: string[], fileName: string, opts: ReadDesiredImageOptions): DesiredImage {
  const assignments: Assignment[] = []
  lines.forEach((raw, i) => {
    const line = i + 1
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/.exec(raw)
    if (!m || raw.trim().startsWith('#')) return
    const key = m[1]
    let rest = m[2]
    let value: string
    let quote: Assignment['quote'] = ''
    if (rest.startsWith('"') || rest.startsWith("'")) {
      quote = rest[0] as '"' | "'"
      const end = rest.indexOf(quote, 1)
      if (end < 0)
        fail(fileName, `line ${line}: ${key}: the value opens a ${quote} quote that is not closed on the same line`)
      value = rest.slice(1, end)
      rest = rest.slice(end + 1).trim()
      if (rest !== '' && !rest.startsWith('#'))
        fail(fileName, `line ${line}: ${key}: unexpected text after the closing quote`)
    } else {
      // an unquoted value ends at whitespace followed by '#' (an inline comment)
      value = rest.replace(/\s+#.*$/, '').trim()
    }
    assignments.push({ key, value, quote, line, label: key })
  })

  let chosen: Assignment[]
  if (opts.key) {
    chosen = assignments.filter((a) => a.key === opts.key)
    if (chosen.length === 0) {
      const known = assignments.map((a) => a.key)
      fail(
        fileName,
        `no variable ${opts.key} in the file${known.length ? ` (it sets ${[...new Set(known)].join(', ')})` : ''}`
      )
    }
  } else {
    chosen = assignments.filter((a) => a.key === 'CHAINLINK_IMAGE')
    if (chosen.length === 0) chosen = assignments.filter((a) => looksLikeChainlink(a.value))
    if (chosen.length === 0) {
      const interpolated = assignments.find((a) => a.value.includes('$') && a.value.toLowerCase().includes('chainlink'))
      if (interpolated) {
        fail(
          fileName,
          `line ${interpolated.line}: ${interpolated.key} uses a variable (${interpolated.value}), which is not resolved here; write the full reference in the file`
        )
      }
      fail(
        fileName,
        'no image reference found: no CHAINLINK_IMAGE variable and no variable whose value is a chainlink image reference (set key: to the variable name)'
      )
    }
  }
  if (chosen.length > 1) {
    fail(
      fileName,
      `two candidates for the image reference: ${describe(chosen)}; keep one, or name the variable with key:`
    )
  }
  const a = chosen[0]
  if (a.value === '') fail(fileName, `line ${a.line}: ${a.key} is empty`)
  if (a.quote !== "'" && /\$\{?\w/.test(a.value)) {
    fail(
      fileName,
      `line ${a.line}: ${a.key} uses a variable (${a.value}), which is not resolved here; write the full reference in the file`
    )
  }
  return toDesired(fileName, a)
}

// ---------------------------------------------------------------- YAML (compose)

function readYaml(content: string, fileName: string, opts: ReadDesiredImageOptions): DesiredImage {
  const lineCounter = new LineCounter()
  let doc: Document
  try {
    // prettyErrors off: its messages quote the offending line of the file
    doc = parseDocument(content, { lineCounter, uniqueKeys: true, prettyErrors: false })
  } catch (e) {
    fail(fileName, `not valid YAML: ${(e as Error).message.split('\n')[0]}`)
  }
  if (doc.errors.length > 0) {
    const err = doc.errors[0]
    fail(fileName, `not valid YAML (line ${lineCounter.linePos(err.pos[0]).line}: ${err.code})`)
  }
  const lineOf = (n: YamlNode | null | undefined) => (n?.range ? lineCounter.linePos(n.range[0]).line : 0)

  const root = doc.contents
  if (!isMap(root)) fail(fileName, 'no image reference found: the YAML document is not a mapping')
  const candidates: (Candidate & { service: string; raw: string })[] = []
  const services = root.get('services', true)
  if (services !== undefined) {
    if (!isMap(services)) fail(fileName, `line ${lineOf(services as YamlNode)}: "services" is not a mapping`)
    for (const item of services.items) {
      if (!isPair(item) || !isScalar(item.key)) continue
      const name = String(item.key.value)
      if (!isMap(item.value)) continue
      const image = item.value.get('image', true)
      if (image === undefined) continue
      if (!isScalar(image) || typeof image.value !== 'string') {
        fail(fileName, `line ${lineOf(image as YamlNode)}: the image of service "${name}" is not a string`)
      }
      candidates.push({
        service: name,
        label: `service "${name}"`,
        raw: image.value,
        value: image.value,
        line: lineOf(image)
      })
    }
  } else {
    // Not a compose file: a YAML file with a top-level image: key (e.g. deploy/chainlink-node.yml).
    const image = root.get('image', true)
    if (image !== undefined) {
      if (!isScalar(image) || typeof image.value !== 'string')
        fail(fileName, `line ${lineOf(image as YamlNode)}: "image" is not a string`)
      candidates.push({ service: '', label: '"image"', raw: image.value, value: image.value, line: lineOf(image) })
    }
  }
  if (candidates.length === 0) {
    fail(fileName, 'no image reference found: no services.<name>.image (compose) and no top-level image: key')
  }

  // Compose interpolation: ${VAR:-default} stands for its default here, as in Renovate's
  // docker-compose manager; any other use of a variable cannot be resolved from the file alone.
  for (const c of candidates) {
    if (!c.raw.includes('$')) continue
    const m = /^\$\{[A-Za-z_][A-Za-z0-9_]*:-"?([^}"]*)"?\}$/.exec(c.raw)
    if (m && !m[1].includes('$')) c.value = m[1]
  }
  const unresolved = (c: { raw: string; value: string }) => c.value.includes('$')

  let chosen: typeof candidates
  if (opts.key) {
    chosen = candidates.filter((c) => c.service === opts.key)
    if (chosen.length === 0) {
      fail(
        fileName,
        `no service "${opts.key}" with an image (services with an image: ${candidates.map((c) => c.service || 'image').join(', ')})`
      )
    }
  } else {
    chosen = candidates.filter((c) => c.service === 'chainlink')
    if (chosen.length === 0)
      chosen = candidates.filter(
        (c) => c.value.toLowerCase().includes('chainlink') && (unresolved(c) || looksLikeChainlink(c.value))
      )
    if (chosen.length === 0 && candidates.length === 1 && candidates[0].service === '') chosen = candidates
    if (chosen.length === 0) {
      fail(
        fileName,
        `no image reference found: no service named "chainlink" and no service whose image is a chainlink image (images: ${describe(candidates)}); set key: to the service name`
      )
    }
  }
  if (chosen.length > 1) {
    fail(fileName, `two candidates for the image reference: ${describe(chosen)}; name the service with key:`)
  }
  const c = chosen[0]
  if (unresolved(c)) {
    fail(
      fileName,
      `line ${c.line}: the image of ${c.label} uses variable interpolation (${c.raw}), which the file alone does not resolve; ` +
        'write the reference in the file, use ${VAR:-<reference>} (its default is read, and Renovate bumps it), ' +
        'or point image-file at the .env file that sets the variable'
    )
  }
  return toDesired(fileName, c)
}
