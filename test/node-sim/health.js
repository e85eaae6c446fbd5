'use strict'
// The HealthChecker behind /readyz and /health (chainlink-common pkg/services/health.go, started by
// core/services/chainlink/application.go): every registered service reports Ready() and a
// HealthReport. /readyz is 200 only when every service is ready; /health lists every check and is
// 207 when any fails. Real nodes differ here: a long-running node often has one check failing for
// good (a quiet chain's HeadTracker, one RPC node down), which is what SIM_FAILING_CHECK sets.

const CHECKS = [
  'EVM.1337',
  'EVM.1337.BalanceMonitor',
  'EVM.1337.HeadBroadcaster',
  'EVM.1337.HeadTracker',
  'EVM.1337.LogBroadcaster',
  'EVM.1337.LogPoller',
  'EVM.1337.Txm',
  'JobSpawner',
  'PipelineORM',
  'PipelineRunner',
  'PromReporter'
]

const OUTPUTS = {
  'EVM.1337.HeadTracker': 'HeadTracker: no new heads received for 3m0s',
  'EVM.1337.LogPoller': 'LogPoller: finality violation: latest finalized block is behind',
  'EVM.1337': 'RPC node 2 of 3 (primary) is unreachable: dial tcp: i/o timeout'
}
const outputOf = (name) => OUTPUTS[name] ?? `${name}: service is unhealthy`

const names = (s) =>
  String(s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)

/**
 * o.failing: checks failing for good (ready, but unhealthy); o.never: names not ready and
 * unhealthy for good; o.later: { name, afterMs } starts failing afterMs after boot; o.lagMs: /readyz
 * 503 (with EVM.1337 "not started") for that long after the web server came up.
 */
function createHealth({ failing = [], never = [], later, lagMs = 0, now = Date.now }) {
  let upAt = now()
  const all = [...new Set([...CHECKS, ...failing, ...never, ...(later ? [later.name] : [])])].sort()
  const failingNow = () => {
    const t = now()
    const f = new Map()
    for (const n of failing) f.set(n, outputOf(n))
    for (const n of never) f.set(n, `${n}: service is not ready`)
    if (later && t - upAt >= later.afterMs) f.set(later.name, outputOf(later.name))
    if (t - upAt < lagMs) f.set('EVM.1337', 'EVM.1337: service is starting')
    return f
  }
  return {
    /** the web server is up: the lag and "later" clocks start here */
    start() {
      upAt = now()
    },
    ready: () => never.length === 0 && now() - upAt >= lagMs,
    /** [{ name, status, output }] sorted by name */
    checks() {
      const f = failingNow()
      return all.map((name) => ({
        name,
        status: f.has(name) ? 'failing' : 'passing',
        output: f.get(name) ?? ''
      }))
    }
  }
}

module.exports = { CHECKS, createHealth, names }
