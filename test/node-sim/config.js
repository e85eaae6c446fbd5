'use strict'
// Configuration as the node reads it (chainlink-node.md §1, §8): v1 env vars, which the sim
// honours in every version because tests configure containers that way, then v2 TOML from
// `-config` files and CL_CONFIG (applied last), and the DB URL from `-secrets` or the env.
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

const intEnv = (name, dflt) => {
  const v = process.env[name]
  return v === undefined || v === '' ? dflt : Number(v)
}

/**
 * Resolves the node's settings. flags: { config: string[], secrets: string[] } from the CLI.
 * Throws ConfigError for invalid values (the node fails config validation and exits 1).
 */
function loadConfig(version, flags = { config: [], secrets: [] }) {
  const env = process.env
  const cfg = {
    version,
    databaseURL: env.CL_DATABASE_URL || env.DATABASE_URL || '',
    lockMode: env.DATABASE_LOCKING_MODE || defaultLockMode(version),
    leaseDuration: parseDuration(env.LEASE_LOCK_DURATION || '10s', 'LEASE_LOCK_DURATION'),
    leaseRefreshInterval: parseDuration(env.LEASE_LOCK_REFRESH_INTERVAL || '1s', 'LEASE_LOCK_REFRESH_INTERVAL'),
    advisoryLockID: env.ADVISORY_LOCK_ID || '1027321974924625846',
    advisoryCheckInterval: parseDuration(env.ADVISORY_LOCK_CHECK_INTERVAL || '1s', 'ADVISORY_LOCK_CHECK_INTERVAL'),
    shutdownGracePeriod: parseDuration(env.SHUTDOWN_GRACE_PERIOD || '5s', 'SHUTDOWN_GRACE_PERIOD'),
    httpPort: intEnv('CHAINLINK_PORT', 6688),
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
    if (doc.WebServer?.HTTPPort !== undefined) cfg.httpPort = Number(doc.WebServer.HTTPPort)
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

  // v2 has no advisory lock (§1): `dual` maps to lease, `advisorylock` is invalid config.
  if (semver.gte(version, '2.0.0')) {
    if (cfg.lockMode === 'dual') cfg.lockMode = 'lease'
    if (cfg.lockMode === 'advisorylock') {
      throw new ConfigError(
        "invalid configuration: Database.Lock.Mode: invalid value (advisorylock): must use 'lease' or 'none'"
      )
    }
  }
  if (!cfg.databaseURL)
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
function simKnobs() {
  return {
    bootMs: intEnv('SIM_BOOT_MS', 800),
    migrationMs: intEnv('SIM_MIGRATION_MS', 20),
    slowMigrationMs: intEnv('SIM_SLOW_MIGRATION_MS', 3000),
    stopMs: intEnv('SIM_STOP_MS', 100),
    heartbeatMs: intEnv('SIM_HEARTBEAT_MS', 150),
    crashMs: intEnv('SIM_CRASH_MS', 300),
    loseDbEveryMs: intEnv('SIM_LOSE_DB_EVERY_MS', 4000),
    loseDbOutageMs: intEnv('SIM_LOSE_DB_OUTAGE_MS', 1500)
  }
}

module.exports = {
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
