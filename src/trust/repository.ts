// Only a trusted repository runs with the node's secrets: the clone of a node hands its image
// the keystore password, the DB URL and the secrets mounts. The target must come from the
// repository the node runs today or one the operator lists in `allowed-repositories`.
import { normaliseRepository, parseImageRef, repository, type ImageRef } from '../image/ref.js'

/** One entry of `allowed-repositories`: a repository, `*` within one path component, `**` across them. */
export function checkRepositoryPattern(pattern: string): string | undefined {
  if (pattern.includes('@')) return `lists '${pattern}', which names a digest; list repositories only`
  if (!/^[a-z0-9*._\-/:[\]]+$/i.test(pattern))
    return `lists '${pattern}', which is not a repository (letters, digits, . _ - / : and the globs * **)`
  const last = pattern.slice(pattern.lastIndexOf('/') + 1)
  if (pattern.includes('/') && last.includes(':'))
    return `lists '${pattern}', which names a tag; list repositories only`
  return undefined
}

function globRegExp(pattern: string): RegExp {
  const body = pattern
    .toLowerCase()
    .split('**')
    .map((part) =>
      part
        .split('*')
        .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('[^/]*')
    )
    .join('.*')
  return new RegExp(`^${body}$`)
}

/** A repository matched by a pattern, compared as Docker names them (docker.io/library/x is x). */
export function repositoryMatches(repo: string, pattern: string): boolean {
  const target = normaliseRepository(repo.toLowerCase())
  return globRegExp(pattern).test(target) || globRegExp(normaliseRepository(pattern)).test(target)
}

/** The repository of a container's image reference (Config.Image); undefined for a bare image id. */
export function repositoryOfImage(image: string): string | undefined {
  if (/^(sha256:)?[a-f0-9]{12,64}$/.test(image)) return undefined
  try {
    return repository(parseImageRef(image))
  } catch {
    return undefined
  }
}

/**
 * Why `target` may not run with the node's secrets, or undefined when it may: its repository
 * is the one the node runs today (`current`) or matches an `allowed` pattern.
 */
export function untrustedTarget(target: ImageRef, current: string[], allowed: string[]): string | undefined {
  const repo = repository(target)
  const running = current.map(repositoryOfImage).filter((r): r is string => !!r)
  const want = normaliseRepository(repo)
  if (running.some((r) => normaliseRepository(r) === want)) return undefined
  if (allowed.some((p) => repositoryMatches(repo, p))) return undefined
  const today = running.length ? [...new Set(running)].join(', ') : 'an image without a repository name'
  return `the target ${repo} is not the repository the node runs (${today}) and is not listed in 'allowed-repositories'${allowed.length ? ` (${allowed.join(', ')})` : ''}: a new repository gets the node's keystore password, database and secrets; list it in 'allowed-repositories' if it is trusted`
}
