'use strict'
// Configuration as the node reads it (docs/node-facts.md §1, §8, §11.9): v1 env vars on 1.x only;
// TOML from `-config` files and CL_CONFIG (applied last), and the DB URL from CL_DATABASE_URL or
// `-secrets`. (The sim also reads TOML on 1.x, which real 1.x nodes cannot.)
const fs = require('node:fs')
const TOML = require('smol-toml')
const semver = require('semver')

const MODES = ['lease', 'advisorylock', 'dual', 'none']

class ConfigError extends Error {}

const UNITS = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 }

/** Go's time.ParseDuration ("10s", "500ms", "1m30s", "1.5s", "0") -> milliseconds. */
function parseDuration(value, name) {
  const s = String(value).trim()
  if (s === '0') return 0
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y
  let total = 0
  let pos = 0
  while (pos < s.length) {
    re.lastIndex = pos
    const m = re.exec(s)
    if (!m) throw new ConfigError(`invalid duration for ${name}: ${JSON.stringify(value)}`)
    total += Number(m[1]) * UNITS[m[2]]
    pos = re.lastIndex
  }
  if (!s) throw new ConfigError(`invalid duration for ${name}: ""`)
  return total
}

/** Go's Duration.String() at millisecond precision: 5s, 1.5s, 250ms, 1m30s. */
function formatDuration(ms) {
  const trim = (x) => String(Number(x.toFixed(3)))
  if (ms <= 0) return '0s'
  if (ms < 1000) return `${trim(ms)}ms`
  let s = ms / 1000
  const h = Math.floor(s / 3600)
  s -= h * 3600
  const m = Math.floor(s / 60)
  s -= m * 60
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${trim(s)}s`
}

/** The version baked into the image (/sim/version); SIM_VERSION only for runs outside an image. */
function bakedVersion() {
  let v
  try {
    v = fs.readFileSync('/sim/version', 'utf8').trim()
  } catch {
    v = process.env.SIM_VERSION
  }
  if (!v || !semver.valid(v)) throw new ConfigError(`no valid simulator version (/sim/version or SIM_VERSION): ${v}`)
  return v
}

/** Fault knob: env SIM_FAULT wins ("none" clears a baked fault), else the file /sim/fault. */
function activeFault() {
  const env = process.env.SIM_FAULT
  if (env !== undefined && env !== '') return env === 'none' ? '' : env
  try {
    return fs.readFileSync('/sim/fault', 'utf8').trim()
  } catch {
    return ''
  }
}

/** §1 history: v1.1-1.2 advisorylock, v1.3-v1.13 dual, v2 lease. */
function defaultLockMode(version) {
  if (semver.lt(version, '1.3.0')) return 'advisorylock'
  if (semver.lt(version, '2.0.0')) return 'dual'
  return 'lease'
}

function readToml(file, what) {
  try {
    return TOML.parse(file === null ? what : fs.readFileSync(file, 'utf8'))
  } catch (e) {
    throw new ConfigError(`failed to load ${file === null ? 'CL_CONFIG' : file}: ${e.message}`)
  }
}

const intEnv = (env, name, dflt) => {
  const v = env[name]
  return v === undefined || v === '' ? dflt : Number(v)
}

/**
 * Resolves the node's settings. flags: { config: string[], secrets: string[] } from the CLI.
 * Throws ConfigError for invalid values (the node fails config validation and exits 1).
 * v1 reads its env variables; v2 (2.0.0 and later) reads TOML only, plus CL_DATABASE_URL (the
 * secrets override) and CL_CONFIG: DATABASE_URL, DATABASE_LOCKING_MODE, LEASE_LOCK_*,
 * CHAINLINK_PORT and the other v1 variables are ignored (core/config/env/env.go lists what v2 reads).
 */
function loadConfig(version, flags = { config: [], secrets: [] }, { needDb = true } = {}) {
  const v2 = semver.gte(version, '2.0.0')
  const env = v2 ? { CL_DATABASE_URL: process.env.CL_DATABASE_URL, CL_CONFIG: process.env.CL_CONFIG } : process.env
  const cfg = {
    version,
    databaseURL: env.CL_DATABASE_URL || env.DATABASE_URL || '',
    lockMode: env.DATABASE_LOCKING_MODE || defaultLockMode(version),
    leaseDuration: parseDuration(env.LEASE_LOCK_DURATION || '10s', 'LEASE_LOCK_DURATION'),
    leaseRefreshInterval: parseDuration(env.LEASE_LOCK_REFRESH_INTERVAL || '1s', 'LEASE_LOCK_REFRESH_INTERVAL'),
    advisoryLockID: env.ADVISORY_LOCK_ID || '1027321974924625846',
    advisoryCheckInterval: parseDuration(env.ADVISORY_LOCK_CHECK_INTERVAL || '1s', 'ADVISORY_LOCK_CHECK_INTERVAL'),
    shutdownGracePeriod: parseDuration(env.SHUTDOWN_GRACE_PERIOD || '5s', 'SHUTDOWN_GRACE_PERIOD'),
    httpPort: intEnv(env, 'CHAINLINK_PORT', 6688),
    listenIP: undefined, // all interfaces
    rateLimit: intEnv(env, 'AUTHENTICATED_RATE_LIMIT', 1000),
    rateLimitPeriod: parseDuration(env.AUTHENTICATED_RATE_LIMIT_PERIOD || '1m', 'AUTHENTICATED_RATE_LIMIT_PERIOD'),
    migrate: (env.MIGRATE_DATABASE || 'true') !== 'false',
    logLevel: env.LOG_LEVEL || 'info'
  }
  if (!MODES.includes(cfg.lockMode)) {
    throw new ConfigError(`unrecognised value for DATABASE_LOCKING_MODE: ${cfg.lockMode}`)
  }
  if (!/^-?\d+$/.test(cfg.advisoryLockID)) throw new ConfigError(`invalid ADVISORY_LOCK_ID: ${cfg.advisoryLockID}`)

  // v2 TOML: files in order, CL_CONFIG last (§8). Only the keys that matter to a handoff.
  const docs = flags.config.map((f) => readToml(f))
  if (env.CL_CONFIG) docs.push(readToml(null, env.CL_CONFIG))
  for (const doc of docs) {
    const lock = doc.Database?.Lock
    if (lock) {
      if (lock.Enabled !== undefined) cfg.lockMode = lock.Enabled ? 'lease' : 'none' // Mode(): lease or none
      if (lock.LeaseDuration !== undefined)
        cfg.leaseDuration = parseDuration(lock.LeaseDuration, 'Database.Lock.LeaseDuration')
      if (lock.LeaseRefreshInterval !== undefined) {
        cfg.leaseRefreshInterval = parseDuration(lock.LeaseRefreshInterval, 'Database.Lock.LeaseRefreshInterval')
      }
    }
    if (doc.Database?.MigrateOnStartup !== undefined) cfg.migrate = Boolean(doc.Database.MigrateOnStartup)
    const web = doc.WebServer
    if (web?.HTTPPort !== undefined) cfg.httpPort = Number(web.HTTPPort)
    if (web?.ListenIP !== undefined) cfg.listenIP = String(web.ListenIP)
    if (web?.RateLimit?.Authenticated !== undefined) cfg.rateLimit = Number(web.RateLimit.Authenticated)
    if (web?.RateLimit?.AuthenticatedPeriod !== undefined) {
      cfg.rateLimitPeriod = parseDuration(web.RateLimit.AuthenticatedPeriod, 'WebServer.RateLimit.AuthenticatedPeriod')
    }
    if (doc.ShutdownGracePeriod !== undefined)
      cfg.shutdownGracePeriod = parseDuration(doc.ShutdownGracePeriod, 'ShutdownGracePeriod')
    if (doc.Log?.Level !== undefined) cfg.logLevel = String(doc.Log.Level)
    // the first EVM node's RPC URL, which a real node quotes when it cannot dial it
    const rpc = doc.EVM?.[0]?.Nodes?.[0]
    if (rpc && (rpc.WSURL || rpc.HTTPURL)) cfg.rpcUrl = { name: rpc.Name, url: rpc.WSURL || rpc.HTTPURL }
  }
  for (const f of flags.secrets) {
    const url = readToml(f).Database?.URL
    if (url && !env.CL_DATABASE_URL) cfg.databaseURL = url
  }
  if (!(cfg.rateLimit > 0) || !(cfg.rateLimitPeriod > 0)) {
    throw new ConfigError(
      'invalid configuration: WebServer.RateLimit: Authenticated and AuthenticatedPeriod must be > 0'
    )
  }

  // v2 has no advisory lock (§1): `dual` maps to lease, `advisorylock` is invalid config.
  if (v2) {
    if (cfg.lockMode === 'dual') cfg.lockMode = 'lease'
    if (cfg.lockMode === 'advisorylock') {
      throw new ConfigError(
        "invalid configuration: Database.Lock.Mode: invalid value (advisorylock): must use 'lease' or 'none'"
      )
    }
  }
  if (!cfg.databaseURL && needDb)
    throw new ConfigError('invalid configuration: Database.URL: missing: must be provided and non-empty')
  return cfg
}

/** The lease lock constructor's panic (§1): refresh must be <= half the duration. */
function checkLeaseIntervals(cfg) {
  if (cfg.leaseRefreshInterval > cfg.leaseDuration / 2) {
    throw new ConfigError('refresh interval must be <= half the lease duration')
  }
}

/** Simulator knobs (milliseconds), see README.md. */
/** 401 or 403 (a node that authenticates the route), else 0 (it does not) */
function authStatus(v) {
  return v === '401' || v === '403' ? Number(v) : 0
}

function simKnobs() {
  return {
    bootMs: intEnv(process.env, 'SIM_BOOT_MS', 800),
    migrationMs: intEnv(process.env, 'SIM_MIGRATION_MS', 20),
    slowMigrationMs: intEnv(process.env, 'SIM_SLOW_MIGRATION_MS', 3000),
    stopMs: intEnv(process.env, 'SIM_STOP_MS', 100),
    heartbeatMs: intEnv(process.env, 'SIM_HEARTBEAT_MS', 150),
    crashMs: intEnv(process.env, 'SIM_CRASH_MS', 300),
    loseDbEveryMs: intEnv(process.env, 'SIM_LOSE_DB_EVERY_MS', 4000),
    loseDbOutageMs: intEnv(process.env, 'SIM_LOSE_DB_OUTAGE_MS', 1500),
    // where real nodes differ (README "Knobs"): checks failing for good, a check that starts
    // failing later (fault new-check-fails), /readyz lagging the boot, a migration that fails,
    // a Down step that fails (read by `db rollback` only)
    failingChecks: process.env.SIM_FAILING_CHECK ?? '',
    newCheck: process.env.SIM_NEW_CHECK || 'EVM.1337.LogPoller',
    newCheckAfterMs: intEnv(process.env, 'SIM_NEW_CHECK_AFTER_MS', 10000),
    readyzLagMs: intEnv(process.env, 'SIM_READYZ_LAG_MS', 0),
    failMigration: intEnv(process.env, 'SIM_FAIL_MIGRATION', 0),
    failDown: intEnv(process.env, 'SIM_FAIL_DOWN', 0),
    // health routes as real nodes differ (docs/node-facts.md §5): /public-readyz only on nodes
    // since chainlink PR #23339 (`off`: 404, as an older node); /health, /health.txt and
    // /readyz?full (and plain /readyz with SIM_AUTH_READYZ) behind authentication: 401 or 403
    publicReadyz: (process.env.SIM_PUBLIC_READYZ || 'on') !== 'off',
    authHealth: authStatus(process.env.SIM_AUTH_HEALTH),
    authReadyz: authStatus(process.env.SIM_AUTH_READYZ)
  }
}

/**
 * The port the image's HEALTHCHECK probes. The real one is `curl -f http://localhost:6688/health`
 * with 6688 fixed; the sim probes the port the node was configured with (CL_CONFIG, the -config
 * files on PID 1's command line, v1 CHAINLINK_PORT) so host-networked test nodes on other ports
 * stay healthy. Never throws: any doubt is 6688.
 */
function probePort() {
  try {
    const argv = fs.readFileSync('/proc/1/cmdline', 'utf8').split('\0')
    const files = []
    for (let i = 0; i < argv.length; i++) {
      const m = /^--?(config|c)(?:=(.*))?$/.exec(argv[i])
      if (m) files.push(m[2] ?? argv[++i])
    }
    return loadConfig(bakedVersion(), { config: files, secrets: [] }, { needDb: false }).httpPort
  } catch {
    return 6688
  }
}

module.exports = {
  probePort,
  ConfigError,
  parseDuration,
  formatDuration,
  bakedVersion,
  activeFault,
  defaultLockMode,
  loadConfig,
  checkLeaseIntervals,
  simKnobs
}
