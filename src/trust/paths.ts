// Paths the inputs may name stay where they belong: `image-file` in the workspace, `backup-file`
// in `backup-dir`. Checked on the resolved path and again on the real one, so neither `..` nor
// a symbolic link leads out.
import { realpathSync } from 'node:fs'
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path'

/** The real path of `path`, through its deepest existing ancestor when it does not exist (yet). */
function realPath(path: string): string {
  try {
    return realpathSync(path)
  } catch {
    const parent = dirname(path)
    return parent === path ? path : join(realPath(parent), basename(path))
  }
}

function within(base: string, path: string): boolean {
  const rel = relative(base, path)
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))
}

/**
 * `path` (absolute, or relative to `base`) when it stays inside `base`; otherwise a sentence
 * saying why not (never the file's content).
 */
export function pathInside(
  base: string,
  path: string,
  real: (p: string) => string = realPath
): { path: string } | { problem: string } {
  if (path.split(/[\\/]/).includes('..')) return { problem: `must not contain '..'; got '${path}'` }
  const full = resolve(base, path)
  if (!within(resolve(base), full)) return { problem: `must be inside ${base}; got '${path}'` }
  if (!within(real(resolve(base)), real(full)))
    return { problem: `leads outside ${base} through a symbolic link: '${path}'` }
  return { path: full }
}
