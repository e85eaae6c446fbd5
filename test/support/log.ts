import type { Log } from '../../src/log.js'

/** A Log that keeps what it is told, warnings prefixed, for a test to read back. */
export function linesLog(lines: string[] = []): Log {
  return {
    info: (l) => void lines.push(l),
    warning: (l) => void lines.push(`warning: ${l}`),
    debug: () => undefined,
    mask: () => undefined
  }
}
