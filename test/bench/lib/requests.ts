// What the node saw of a run's HTTP traffic: the simulator's own per-client-address counts
// (test/node-sim/requests.js), which each container writes to $SIM_REQUESTS_DIR as
// <hostname>-<appID>.json (at most once a second and at exit) and which never count against the
// node's rate limit. The bench mounts one directory per run into every container of the node
// (the action copies the mount and the variable to its clones).
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/** Where the containers write their counts. */
export const REQUESTS_MOUNT = '/sim-requests'

interface ClientCounts {
  total: number
  rejected: number
  max60s: number
  /** [unix second, requests in it] */
  perSecond: Array<[number, number]>
}

export interface Busiest {
  /** client address with the most requests in one 60 s window, across the node's containers */
  address?: string
  /** those requests, counted in whole seconds: any 60 consecutive seconds */
  max60s: number
  /** 429s answered to any address over the containers' lives (0 when the budget held) */
  rejected: number
}

/**
 * The most requests any 60 s window saw from one client address between `start` and `end`, all
 * the node's containers together (one address reaching the old node, the standby and the new one
 * is one client of "the node"). Counts are per second, so a window is 60 whole seconds.
 */
export function busiest(dir: string, start: number, end: number): Busiest {
  const perAddr = new Map<string, Map<number, number>>()
  let rejected = 0
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : []
  for (const f of files) {
    let doc: { clients?: Record<string, ClientCounts> }
    try {
      doc = JSON.parse(readFileSync(join(dir, f), 'utf8')) as typeof doc
    } catch {
      continue // caught mid-rename: the next file write would have it
    }
    for (const [addr, c] of Object.entries(doc.clients ?? {})) {
      rejected += c.rejected
      const secs = perAddr.get(addr) ?? new Map<number, number>()
      perAddr.set(addr, secs)
      for (const [s, n] of c.perSecond) secs.set(s, (secs.get(s) ?? 0) + n)
    }
  }
  const lo = Math.floor(start / 1000)
  const hi = Math.floor(end / 1000)
  const out: Busiest = { max60s: 0, rejected }
  for (const [addr, secs] of perAddr) {
    let best = 0
    for (let s = lo; s <= hi; s++) {
      let sum = 0
      for (let k = s; k < s + 60 && k <= hi; k++) sum += secs.get(k) ?? 0
      best = Math.max(best, sum)
    }
    if (best > out.max60s) {
      out.max60s = best
      out.address = addr
    }
  }
  return out
}
