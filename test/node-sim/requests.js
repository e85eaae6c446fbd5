'use strict'
// Two things per client address: the node's rate limit (core/web/router.go: the `api` group,
// health routes included, carries ulule/limiter with the in-memory store, keyed by client IP, a
// fixed window that starts at the client's first request; over the limit: 429 "Limit exceeded"),
// and a sim-only count of every request, so tests and the bench can see the most requests any
// 60 s window saw from one address. The counts never take part in the limit.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

/** "::ffff:172.17.0.1" -> "172.17.0.1", as gin's ClientIP() reports an IPv4 peer. */
const clientAddress = (req) => (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '')

/**
 * ulule/limiter memory store: per key, a counter and an expiry set at the first request of the
 * window (now + period); every request increments it, rejected ones included; over `limit` the
 * request is refused until the window expires.
 */
function createRateLimiter({ limit, periodMs, now = Date.now }) {
  const windows = new Map()
  return {
    limit,
    periodMs,
    /** Counts one request of key; returns what the middleware puts in the X-RateLimit-* headers. */
    take(key) {
      const t = now()
      let w = windows.get(key)
      if (!w || t >= w.resetAt) {
        w = { count: 0, resetAt: t + periodMs }
        windows.set(key, w)
      }
      w.count++
      return { reached: w.count > limit, remaining: Math.max(0, limit - w.count), resetAt: w.resetAt }
    }
  }
}

/** The middleware: sets the headers, answers 429 "Limit exceeded" when reached. True when it answered. */
function applyRateLimit(limiter, req, res) {
  const r = limiter.take(clientAddress(req))
  res.setHeader('X-RateLimit-Limit', String(limiter.limit))
  res.setHeader('X-RateLimit-Remaining', String(r.remaining))
  res.setHeader('X-RateLimit-Reset', String(Math.ceil(r.resetAt / 1000)))
  if (!r.reached) return false
  res.writeHead(429, { 'Content-Type': 'text/plain; charset=utf-8' })
  res.end('Limit exceeded')
  return true
}

const WINDOW_MS = 60000

/** Most timestamps (sorted) inside any window of windowMs. */
function maxInWindow(times, windowMs = WINDOW_MS) {
  let best = 0
  for (let i = 0, j = 0; j < times.length; j++) {
    while (times[j] - times[i] >= windowMs) i++
    best = Math.max(best, j - i + 1)
  }
  return best
}

/**
 * Sim-only request log: every request the process answered (both servers, 429s included), per
 * client address. summary() is what GET /sim/requests answers and what goes to
 * $SIM_REQUESTS_DIR/<hostname>-<appID>.json (rewritten at most once a second and at exit).
 */
function createRequestLog({ appID, dir = process.env.SIM_REQUESTS_DIR, now = Date.now } = {}) {
  const clients = new Map() // address -> { times: number[], rejected: number }
  const file = dir ? path.join(dir, `${os.hostname()}-${appID}.json`) : undefined
  let timer
  const summary = () => {
    const out = {}
    for (const [addr, c] of clients) {
      const seconds = new Map()
      for (const t of c.times) {
        const s = Math.floor(t / 1000)
        seconds.set(s, (seconds.get(s) ?? 0) + 1)
      }
      out[addr] = {
        total: c.times.length,
        rejected: c.rejected,
        max60s: maxInWindow(c.times),
        first: new Date(c.times[0]).toISOString(),
        last: new Date(c.times[c.times.length - 1]).toISOString(),
        perSecond: [...seconds]
      }
    }
    return { appID, hostname: os.hostname(), pid: process.pid, windowMs: WINDOW_MS, clients: out }
  }
  const write = () => {
    timer = undefined
    if (!file) return
    try {
      fs.writeFileSync(`${file}.tmp`, JSON.stringify(summary()))
      fs.renameSync(`${file}.tmp`, file)
    } catch {
      // a test that cannot read the counts sees a missing file; the node itself carries on
    }
  }
  if (file) process.on('exit', write)
  return {
    record(req, status) {
      const addr = clientAddress(req)
      let c = clients.get(addr)
      if (!c) clients.set(addr, (c = { times: [], rejected: 0 }))
      c.times.push(now())
      if (status === 429) c.rejected++
      if (file && !timer) timer = setTimeout(write, 1000).unref()
    },
    summary
  }
}

/** GET /sim/requests: the counts, answered outside the rate limit and not counted. True when it answered. */
function serveRequestLog(requests, req, res) {
  if (new URL(req.url, 'http://x').pathname !== '/sim/requests') return false
  res.writeHead(200, { 'Content-Type': 'application/json' })
  res.end(JSON.stringify(requests.summary()))
  return true
}

module.exports = { createRateLimiter, applyRateLimit, createRequestLog, serveRequestLog, maxInWindow, clientAddress }
