// The bench's view of the node from outside: /readyz probed every 50 ms over a new connection
// each time (as curl would), and the longest window in which it failed.
import http from 'node:http'
import { sleep, waitFor } from '../support/bed.js'

const PROBE_EVERY_MS = 50

export function probeOnce(base: string, timeoutMs = 400): Promise<boolean> {
  return new Promise((res) => {
    const req = http.get(
      `${base}/readyz`,
      { agent: false, timeout: timeoutMs, headers: { connection: 'close' } },
      (r) => {
        r.resume()
        res(r.statusCode === 200)
      }
    )
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', () => res(false))
  })
}

export interface Sample {
  t: number
  ok: Record<string, boolean>
}

export interface Window {
  ms: number
  recovered: boolean
}

export class Prober {
  readonly samples: Sample[] = []
  private stopped = false
  private loop?: Promise<void>
  constructor(private readonly targets: () => string[]) {}

  start(): this {
    this.loop = (async () => {
      while (!this.stopped) {
        const t = Date.now()
        const urls = this.targets()
        const res = await Promise.all(urls.map((u) => probeOnce(u)))
        const ok: Record<string, boolean> = {}
        urls.forEach((u, i) => (ok[u] = res[i]))
        this.samples.push({ t, ok })
        const wait = PROBE_EVERY_MS - (Date.now() - t)
        if (wait > 0) await sleep(wait)
      }
    })()
    return this
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.loop
  }

  /** true once `pred` held in a sample taken at or after `since` */
  seen(pred: (s: Sample) => boolean, since = 0): boolean {
    for (let i = this.samples.length - 1; i >= 0 && this.samples[i].t >= since; i--)
      if (pred(this.samples[i])) return true
    return false
  }

  /**
   * Longest failed window: from the last ready sample before a run of failed samples to the
   * first ready one after it (0 when no sample failed). A window still open at the end is
   * returned as not recovered, measured to the last sample.
   */
  longestGap(pred: (s: Sample) => boolean): Window {
    let lastOk: number | undefined
    let failing = false
    let best: Window = { ms: 0, recovered: true }
    for (const s of this.samples) {
      if (pred(s)) {
        if (failing && lastOk !== undefined && s.t - lastOk > best.ms) best = { ms: s.t - lastOk, recovered: true }
        failing = false
        lastOk = s.t
      } else if (lastOk !== undefined) failing = true
    }
    if (failing && lastOk !== undefined) {
      const open = this.samples.at(-1)!.t - lastOk
      if (open >= best.ms) best = { ms: open, recovered: false }
    }
    return best
  }
}

export const anyOk = (s: Sample) => Object.values(s.ok).some(Boolean)
export const okAt = (url: string) => (s: Sample) => s.ok[url] === true

/** Waits for /readyz 200 at `url`; when it came. */
export async function waitUp(url: string, timeoutMs = 60_000): Promise<number> {
  await waitFor(`${url}/readyz 200`, () => probeOnce(url), timeoutMs, 25)
  return Date.now()
}
