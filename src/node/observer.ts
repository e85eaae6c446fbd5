// What the action sees of a node's HTTP server, within a request budget. Every route of the
// node, health routes included, is behind its rate limiter (1000 a minute per client address
// by default, 429 above it); every request from this host arrives from one address. So one observer per
// URL polls /readyz (and /health when a gate asks), every reader (watchers, the gap
// measurement, the gates) reads its observations, and all observers of a run share one
// budget: never more than `limit` requests in any 60 s window, whatever URL they go to (the
// published port and the container address reach the same process). A 429 is no evidence:
// the observation is "unknown" and the observer waits for the limiter's reset. So is a 401 or 403
// (a route behind authentication): no evidence, never a failure.
import {
  isAuthStatus,
  probeHealth,
  probeReady,
  readiness,
  READY_ROUTES,
  type Check,
  type ReadyRoute
} from './health.js'

/** one readiness answer: `unknown` says nothing about readiness (429, a timeout, 401/403) */
export interface ReadyObs {
  at: number
  kind: 'ready' | 'not-ready' | 'unknown'
  status?: number
  error?: string
  /** the route that gave it */
  route?: ReadyRoute
}

/**
 * one /health answer: the failing checks (with their output); `hidden`: 401/403, the route is
 * behind authentication, so the checks cannot be compared (no evidence either way); or unknown
 */
export interface ChecksObs {
  at: number
  kind: 'checks' | 'hidden' | 'unknown'
  status?: number
  failing: Check[]
  error?: string
}

const FAST_MS = 100
const SLOW_MS = 2000
const HEALTH_EVERY_MS = 5000

/**
 * Requests of a run, in any 60 s window, at most `limit` (a third of the node's default 1000,
 * less a margin for preflight's own probes). Fast polling may use up to `fastShare` of it;
 * the rest is kept for the slow polling of the gates.
 */
export class RequestBudget {
  private readonly sent: number[] = []
  private readonly all: number[] = []

  constructor(
    readonly limit = 280,
    readonly windowMs = 60_000,
    readonly fastShare = 0.7,
    private readonly now: () => number = Date.now
  ) {}

  private inWindow(t: number): number {
    while (this.sent.length && this.sent[0] <= t - this.windowMs) this.sent.shift()
    return this.sent.length
  }

  /** true when a fast request may go now */
  fastAllowed(): boolean {
    return this.inWindow(this.now()) < Math.floor(this.limit * this.fastShare)
  }

  /** 0 and the request is counted, or how long to wait before asking again */
  take(): number {
    const t = this.now()
    if (this.inWindow(t) < this.limit) {
      this.sent.push(t)
      this.all.push(t)
      return 0
    }
    return Math.max(1, this.sent[0] + this.windowMs - t)
  }

  /** the most requests any window of `windowMs` saw so far */
  maxInWindow(): number {
    let best = 0
    let lo = 0
    for (let hi = 0; hi < this.all.length; hi++) {
      while (this.all[hi] - this.all[lo] >= this.windowMs) lo++
      best = Math.max(best, hi - lo + 1)
    }
    return best
  }

  get total(): number {
    return this.all.length
  }
}

/** The wait a 429 asks for: Retry-After (seconds), else X-RateLimit-Reset (a Unix time), else 10 s. */
export function retryAfterMs(headers: Headers | undefined, now: number): number {
  const ra = Number(headers?.get('retry-after'))
  if (Number.isFinite(ra) && ra > 0) return Math.min(ra * 1000, 60_000)
  const reset = Number(headers?.get('x-ratelimit-reset'))
  if (Number.isFinite(reset) && reset > 0) {
    const ms = reset > 1e12 ? reset - now : reset * 1000 - now
    if (ms > 0) return Math.min(ms, 60_000)
  }
  return 10_000
}

export class Observer {
  readonly ready: ReadyObs[] = []
  checks?: ChecksObs
  private readers = 0
  private healthReaders = 0
  private loop?: Promise<void>
  private pausedUntil = 0
  private lastHealthAt = 0
  private wake?: () => void
  /** the readiness route asked first: the one that last gave evidence here */
  private route: ReadyRoute = READY_ROUTES[0]

  constructor(
    readonly url: string,
    private readonly group: Observers
  ) {}

  /** the latest /readyz observation */
  get latest(): ReadyObs | undefined {
    return this.ready.at(-1)
  }

  /** Starts (or joins) the polling; `health` asks for /health too. Call the returned function when done. */
  watch(opts: { health?: boolean } = {}): () => Promise<void> {
    this.readers++
    if (opts.health) this.healthReaders++
    this.ensureLoop()
    let done = false
    return async () => {
      if (done) return
      done = true
      this.readers--
      if (opts.health) this.healthReaders--
      if (this.readers === 0) {
        this.wake?.()
        await this.loop
      }
    }
  }

  private ensureLoop(): void {
    // one loop at a time; a reader that came while the last one was ending starts another
    this.loop ??= this.run().finally(() => {
      this.loop = undefined
      if (this.readers > 0) this.ensureLoop()
    })
  }

  /** wakes a sleeping poll (the run switched to fast polling) */
  poke(): void {
    this.wake?.()
  }

  private async nap(ms: number): Promise<void> {
    if (ms <= 0 || this.readers === 0) return
    await new Promise<void>((res) => {
      const t = setTimeout(done, ms)
      function done() {
        clearTimeout(t)
        res()
      }
      this.wake = done
    })
    this.wake = undefined
  }

  private async request(): Promise<boolean> {
    for (;;) {
      if (this.readers === 0) return false
      const wait = this.group.budget.take()
      if (wait === 0) return true
      await this.nap(Math.min(wait, 1000))
    }
  }

  private async run(): Promise<void> {
    // let the creator finish subscribing before the first request
    await new Promise((resolve) => setTimeout(resolve, 0))
    while (this.readers > 0) {
      const t0 = Date.now()
      if (t0 < this.pausedUntil) {
        await this.nap(this.pausedUntil - t0)
        continue
      }
      if (!(await this.request())) break
      const r = await readiness(
        this.route,
        (route) => probeReady(this.url, 2000, route),
        () => this.request()
      )
      this.route = r.next
      const prev = this.latest
      const obs: ReadyObs = { at: t0, kind: r.kind, status: r.status, error: r.error, route: r.route }
      this.ready.push(obs)
      if (r.status === 429) this.pausedUntil = Date.now() + retryAfterMs(r.headers, Date.now())
      // /health: on its own slow clock, and at once when the node turns ready (a gate's
      // stable window starts only with a look at the checks)
      const turnedReady = obs.kind === 'ready' && prev?.kind !== 'ready'
      if (
        this.healthReaders > 0 &&
        r.status !== 429 &&
        (turnedReady || Date.now() - this.lastHealthAt >= HEALTH_EVERY_MS) &&
        (await this.request())
      ) {
        const h0 = Date.now()
        this.lastHealthAt = h0
        const h = await probeHealth(this.url)
        const known = h.status !== undefined && h.status !== 429 && h.checks !== undefined
        this.checks = {
          at: h0,
          kind: known ? 'checks' : isAuthStatus(h.status) ? 'hidden' : 'unknown',
          status: h.status,
          failing: h.checks ?? [],
          error: h.error
        }
        if (h.status === 429) this.pausedUntil = Date.now() + retryAfterMs(h.headers, Date.now())
      }
      const every = this.group.isFast() && this.group.budget.fastAllowed() ? FAST_MS : SLOW_MS
      await this.nap(every - (Date.now() - t0))
    }
  }

  /** last ready answer at or before `t` */
  lastReadyBefore(t = Infinity): number | undefined {
    for (let i = this.ready.length - 1; i >= 0; i--) {
      const o = this.ready[i]
      if (o.kind === 'ready' && o.at <= t) return o.at
    }
    return undefined
  }

  /** first ready answer at or after `t` */
  firstReadyAfter(t = 0): number | undefined {
    return this.ready.find((o) => o.kind === 'ready' && o.at >= t)?.at
  }

  /** longest time between two consecutive ready answers (unknowns in between do not end it) */
  longestGap(from = 0): number | undefined {
    let gap: number | undefined
    let prev: number | undefined
    for (const o of this.ready) {
      if (o.kind !== 'ready' || o.at < from) continue
      if (prev !== undefined) gap = Math.max(gap ?? 0, o.at - prev)
      prev = o.at
    }
    return gap
  }
}

/** One observer per node URL (host:port), all on one request budget: the run's view of the node's HTTP. */
export class Observers {
  private readonly byKey = new Map<string, Observer>()
  private fastHolds = 0

  constructor(readonly budget = new RequestBudget()) {}

  of(url: string): Observer {
    const key = urlKey(url)
    let o = this.byKey.get(key)
    if (!o) {
      o = new Observer(url, this)
      this.byKey.set(key, o)
    }
    return o
  }

  isFast(): boolean {
    return this.fastHolds > 0
  }

  /** Fast polling (where a gap is measured) until the returned function is called. */
  fast(): () => void {
    this.fastHolds++
    for (const o of this.byKey.values()) o.poke()
    let done = false
    return () => {
      if (done) return
      done = true
      this.fastHolds--
    }
  }
}

/** host:port of a URL: what the node's limiter and this budget count by */
export function urlKey(url: string): string {
  try {
    const u = new URL(url)
    const port = u.port || (u.protocol === 'https:' ? '443' : '80')
    return `${u.hostname}:${port}${u.pathname.replace(/\/+$/, '')}`
  } catch {
    return url
  }
}
