'use strict'
// Small helpers: a cancellable context (what ctx cancellation is in the Go node) and jitter.

/** A one-shot cancellation, like the root context the node cancels on SIGINT/SIGTERM. */
function createContext() {
  let cancel
  const done = new Promise((resolve) => (cancel = resolve))
  const ctx = {
    cancelled: false,
    reason: '',
    done,
    cancel(reason = 'stopped') {
      if (ctx.cancelled) return
      ctx.cancelled = true
      ctx.reason = reason
      cancel()
    }
  }
  return ctx
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Sleeps ms; rejects with Error(msg) as soon as ctx is cancelled. */
async function sleepCtx(ms, ctx, msg = 'stopped') {
  if (ctx.cancelled) throw new Error(msg)
  let t
  const won = await Promise.race([new Promise((r) => (t = setTimeout(() => r(true), ms))), ctx.done.then(() => false)])
  clearTimeout(t)
  if (!won) throw new Error(msg)
}

/** timeutil.JitterPct(0.1): d ± 10%. */
const jitter = (ms, pct = 0.1) => ms * (1 - pct + Math.random() * 2 * pct)

/** The retry log schedule of §2/§3: count 0, powers of two below 1000, then every 1000. */
const shouldLogRetry = (n) => n % 1000 === 0 || (n < 1000 && (n & (n - 1)) === 0)

module.exports = { createContext, sleep, sleepCtx, jitter, shouldLogRetry }
