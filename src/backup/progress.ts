// Progress of long dumps and restores: pg_dump/pg_restore --verbose lines give the tables (and
// indexes) done, a byte counter gives the volume; every `everyMs` one log line says how far the
// work is, at what rate, and about how long is left. Silent for work shorter than that.
import type { Log } from '../log.js'

const DATA_DONE = [
  /^pg_dump: finished item \d+ TABLE DATA /, // -Fd -j: a worker finished a table
  /^pg_restore: finished item \d+ TABLE DATA / // pg_restore -j
]
const DATA_START = [/^pg_dump: dumping contents of table /, /^pg_restore: processing data for table /]
const INDEX = /^pg_restore: (?:creating|finished item \d+) (?:INDEX|CONSTRAINT) /
const VERBOSE = /^(pg_dump|pg_restore): (?!error|warning|fatal|detail|hint)/

interface ProgressOptions {
  what: string
  log: Log
  /** tables with data (the denominator of "tables done") */
  tables?: number
  /** expected total of bytes(), for the estimate */
  totalBytes?: number
  /** the bytes done so far (read, written, or fed) */
  bytes?: () => number
  everyMs?: number
}

export class Progress {
  private t0 = Date.now()
  private timer: NodeJS.Timeout | undefined
  private started = 0
  private done = 0
  private indexes = 0
  private lastBytes = 0
  private lastAt = Date.now()
  constructor(private o: ProgressOptions) {
    const every = o.everyMs ?? 10000
    this.timer = setInterval(() => this.report(), every)
    this.timer.unref()
  }

  /** For run()'s onLine: counts verbose lines, consumes them (not part of error messages). */
  readonly onLine = (line: string): boolean => {
    if (DATA_DONE.some((r) => r.test(line))) this.done++
    else if (DATA_START.some((r) => r.test(line))) this.started++
    else if (INDEX.test(line) && /finished item/.test(line)) this.indexes++
    return VERBOSE.test(line)
  }

  private tablesDone(): number {
    // single-job tools only say which table they start: the previous one is then done
    return Math.max(this.done, this.started - 1, 0)
  }

  line(): string {
    const now = Date.now()
    const parts: string[] = []
    const total = this.o.tables
    const t = this.tablesDone()
    if (total || t) parts.push(`${t}${total ? `/${total}` : ''} tables`)
    if (this.indexes) parts.push(`${this.indexes} indexes`)
    if (this.o.bytes) {
      const b = this.o.bytes()
      const rate = (b - this.lastBytes) / Math.max(1, (now - this.lastAt) / 1000)
      const avg = b / Math.max(1, (now - this.t0) / 1000)
      this.lastBytes = b
      this.lastAt = now
      parts.push(
        `${(b / 1048576).toFixed(0)}${this.o.totalBytes ? ` of ~${(this.o.totalBytes / 1048576).toFixed(0)}` : ''} MB`,
        `${(rate / 1048576).toFixed(1)} MB/s`
      )
      if (this.o.totalBytes && avg > 0 && b < this.o.totalBytes)
        parts.push(`about ${Math.ceil((this.o.totalBytes - b) / avg)} s left`)
    }
    return `${this.o.what}: ${Math.round((now - this.t0) / 1000)} s, ${parts.join(', ')}`
  }

  report(): void {
    this.o.log.info(this.line())
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }
}
