// The node's own CLI, for `db version` / `db rollback` run in a one-off container from the
// node's config (docs/node-facts.md §7, §10). These commands take no lock.

const VALUE_FLAGS = new Set(['-config', '--config', '-c', '-secrets', '--secrets', '-s'])

/**
 * Turns the node's start command into a `db` subcommand with the same global flags:
 * `node -config a -secrets b start -p pw` -> `node -config a -secrets b db rollback 42`,
 * `local node` -> `local db rollback 42`.
 */
export function dbCommand(cmd: string[] | null | undefined, sub: string[]): string[] {
  const args = [...(cmd ?? [])]
  const out: string[] = []
  let top: string | undefined
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (a.startsWith('-')) {
      out.push(a)
      if (VALUE_FLAGS.has(a) && i + 1 < args.length) out.push(args[++i])
      continue
    }
    if (!top) {
      top = a
      out.push(a)
      continue
    }
    break // the start subcommand (start, node, n) and its own flags are dropped
  }
  if (!top) out.push('node')
  return [...out, 'db', ...sub]
}

/**
 * The node's `db` subcommand for a container: entrypoint and command as the container runs
 * them. An entrypoint that is the chainlink binary with arguments (`chainlink node start`)
 * keeps only the binary; a wrapper script keeps its entrypoint and gets the rewritten command.
 */
export function dbInvocation(
  entrypoint: string[] | string | null | undefined,
  cmd: string[] | null | undefined,
  sub: string[]
): { entrypoint?: string[]; cmd: string[] } {
  const ep = typeof entrypoint === 'string' ? [entrypoint] : (entrypoint ?? [])
  if (ep.length > 1 && /(^|\/)chainlink$/.test(ep[0]))
    return { entrypoint: [ep[0]], cmd: dbCommand([...ep.slice(1), ...(cmd ?? [])], sub) }
  return { cmd: dbCommand(cmd, sub) }
}
