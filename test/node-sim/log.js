'use strict'
// A console logger shaped like the node's zap console output: `<ISO time> [LEVEL] <msg> key=value...`.
// The default level is info, as on a real node, so Debug lines ("Got exclusive lease on database",
// "Closed DB") only show with LOG_LEVEL=debug (docs/node-facts.md §3: at Info nothing marks acquisition).
const LEVELS = { debug: 0, info: 1, warn: 2, error: 3, crit: 4, fatal: 5 }

function fmtValue(v) {
  const s = typeof v === 'string' ? v : v instanceof Error ? v.message : JSON.stringify(v)
  return /[\s"=]/.test(s) ? JSON.stringify(s) : s
}

function createLogger(level = 'info', fields = {}) {
  const min = LEVELS[String(level).toLowerCase()] ?? LEVELS.info
  const write = (lvl, msg, extra) => {
    if (LEVELS[lvl] < min) return
    const all = { ...fields, ...extra }
    const kv = Object.entries(all)
      .map(([k, v]) => ` ${k}=${fmtValue(v)}`)
      .join('')
    // stdout is a pipe under Docker: writes are synchronous on Linux, so a following exit loses nothing
    process.stdout.write(`${new Date().toISOString()} [${lvl.toUpperCase()}] ${msg}${kv}\n`)
  }
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    critical: (m, f) => write('crit', m, f),
    /** zap Fatal: log and os.Exit(1) at once, no deferred cleanup (no lock release). */
    fatal: (m, f) => {
      write('fatal', m, f)
      process.exit(1)
    },
    named: (name) => createLogger(level, { ...fields, logger: name })
  }
}

/** Go's stdlib `log` prefix (`2006/01/02 15:04:05`), used by the "Graceful shutdown time" line (§6). */
function stdlog(msg) {
  const d = new Date()
  const p = (n) => String(n).padStart(2, '0')
  process.stdout.write(
    `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${msg}\n`
  )
}

module.exports = { createLogger, stdlog }
