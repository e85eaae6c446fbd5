// Readiness seen from outside: when a node last answered ready (the old leader, watched while
// it stops, since a node that ignores SIGTERM is still serving) and when the new one first
// did. The leader gap is measured from these, not assumed. A watcher sends nothing itself: it
// reads the run's observer of its URL, which polls within the run's request budget (fast only
// while a handoff's gap is measured).
import type { Observer } from '../node/observer.js'
import { sleep } from '../sleep.js'

export class ReadinessWatcher {
  private unwatch?: () => Promise<void>
  private since = 0

  constructor(readonly observer: Observer) {}

  get url(): string {
    return this.observer.url
  }

  start(): this {
    this.since = Date.now()
    this.unwatch = this.observer.watch()
    return this
  }

  /** last ready answer at or before `t` (since this watcher started) */
  lastReadyBefore(t = Infinity): number | undefined {
    const at = this.observer.lastReadyBefore(t)
    return at !== undefined && at >= this.since ? at : undefined
  }

  /**
   * Waits, at most `ms`, for one ready answer since the start: a stop sent before the first
   * answer came back leaves the gap without its start (a busy host, or a swap's stop at once).
   */
  async readySeen(ms: number): Promise<boolean> {
    const end = Date.now() + ms
    while (this.lastReadyBefore() === undefined) {
      if (Date.now() >= end) return false
      this.observer.poke()
      await sleep(20)
    }
    return true
  }

  /** first ready answer at or after `t` (since this watcher started) */
  firstReadyAfter(t = 0): number | undefined {
    return this.observer.firstReadyAfter(Math.max(t, this.since))
  }

  /** longest time between two consecutive ready answers since the start: the outage seen from outside */
  longestGap(): number | undefined {
    return this.observer.longestGap(this.since)
  }

  async stop(): Promise<void> {
    await this.unwatch?.()
  }
}
