// Docker image references, parsed by the distribution/reference grammar, so a malformed
// reference is refused in preflight instead of failing half-way through a pull.

export interface ImageRef {
  /** registry host[:port], when the reference names one */
  registry?: string
  /** repository path without registry */
  path: string
  tag?: string
  /** sha256:<64 hex> */
  digest?: string
}

const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/
const TAG = /^[\w][\w.-]{0,127}$/
const DIGEST = /^sha256:[a-f0-9]{64}$/
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::\d+)?$|^\[[0-9a-fA-F:]+\](?::\d+)?$/

export function parseImageRef(text: string, opts: { defaultTag?: boolean } = {}): ImageRef {
  const s = text.trim()
  if (!s) throw new Error('is empty')
  if (/\s/.test(s)) throw new Error(`'${s}' contains whitespace`)
  let rest = s
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!DIGEST.test(digest))
      throw new Error(`'${s}' has a malformed digest '${digest}' (expected sha256:<64 lowercase hex>)`)
  }
  let registry: string | undefined
  const slash = rest.indexOf('/')
  if (slash >= 0) {
    const first = rest.slice(0, slash)
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      if (!HOST.test(first)) throw new Error(`'${s}' has a malformed registry '${first}'`)
      registry = first
      rest = rest.slice(slash + 1)
    }
  }
  let tag: string | undefined
  const colon = rest.lastIndexOf(':')
  if (colon >= 0) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!TAG.test(tag)) throw new Error(`'${s}' has a malformed tag '${tag}'`)
  }
  if (!rest) throw new Error(`'${s}' has no repository name`)
  for (const c of rest.split('/')) {
    if (!COMPONENT.test(c))
      throw new Error(
        `'${s}' has a malformed repository component '${c}' (lowercase letters, digits and separators only)`
      )
  }
  if (!tag && !digest && opts.defaultTag !== false) tag = 'latest'
  if (s.length > 255 + 200) throw new Error(`'${s.slice(0, 40)}...' is too long`)
  return { registry, path: rest, tag, digest }
}

/** The reference without its digest, as used to pull by tag. */
export function repoTag(ref: ImageRef): string {
  return `${ref.registry ? ref.registry + '/' : ''}${ref.path}${ref.tag ? ':' + ref.tag : ''}`
}

export function repository(ref: ImageRef): string {
  return `${ref.registry ? ref.registry + '/' : ''}${ref.path}`
}

export function formatRef(ref: ImageRef): string {
  return `${repoTag(ref)}${ref.digest ? '@' + ref.digest : ''}`
}

/** Docker Hub names are stored in RepoDigests as `docker.io/library/x` or `x`; normalise to compare. */
export function normaliseRepository(repo: string): string {
  let r = repo.replace(/^(index\.docker\.io|registry-1\.docker\.io)\//, 'docker.io/')
  if (!/^[^/]+[.:][^/]*\//.test(r) && !r.startsWith('localhost/')) r = `docker.io/${r}`
  // official images live under library/ (docker.io/postgres is docker.io/library/postgres)
  if (/^docker\.io\/[^/]+$/.test(r)) r = r.replace(/^docker\.io\//, 'docker.io/library/')
  return r
}
