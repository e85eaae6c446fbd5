// Readiness seen from outside, every 50 ms: when a node last answered ready (the old leader,
// polled while it stops, since a node that ignores SIGTERM is still serving) and when the new
// one first did. The leader gap is measured from these, not assumed.
import { probe } from './health.js'

export class ReadinessWatcher {
  /** start times of every probe answered 200 (20 a second at most) */
  readonly readyAt: number[] = []
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
        if (p.readyz === 200) this.readyAt.push(t0)
        const wait = this.everyMs - (Date.now() - t0)
        if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      }
    })()
    return this
  }

  /** last ready answer at or before `t` */
  lastReadyBefore(t = Infinity): number | undefined {
    return this.readyAt.filter((x) => x <= t).at(-1)
  }

  /** first ready answer at or after `t` */
  firstReadyAfter(t = 0): number | undefined {
    return this.readyAt.find((x) => x >= t)
  }

  /** longest time between two consecutive ready answers: the outage seen from outside */
  longestGap(): number | undefined {
    let gap: number | undefined
    for (let i = 1; i < this.readyAt.length; i++) gap = Math.max(gap ?? 0, this.readyAt[i] - this.readyAt[i - 1])
    return gap
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.loop
  }
}
