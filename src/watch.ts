// Readiness seen from outside, every 50 ms: when a node last answered ready (the old leader,
// polled while it stops, since a node that ignores SIGTERM is still serving) and when the new
// one first did. The leader gap is measured from these, not assumed.
import { probe } from './health.js'

export class ReadinessWatcher {
  firstReadyAt?: number
  lastReadyAt?: number
  lastStatus?: number | string
  private stopped = false
  private loop?: Promise<void>

  constructor(
    readonly url: string,
    readonly everyMs = 50
  ) {}

  start(): this {
    this.loop = (async () => {
      while (!this.stopped) {
        const t0 = Date.now()
        const p = await probe(this.url, 400, false)
        this.lastStatus = p.readyz ?? p.error
        if (p.readyz === 200) {
          this.firstReadyAt ??= t0
          this.lastReadyAt = Date.now()
        }
        const wait = this.everyMs - (Date.now() - t0)
        if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      }
    })()
    return this
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.loop
  }
}
