'use strict'
// `chainlink node start`: the start-up order of §4, the leader's life, and the shutdown of §6.
const { randomUUID, createHash } = require('node:crypto')
const semver = require('semver')
const { createLogger, stdlog } = require('./log')
const { formatDuration, checkLeaseIntervals } = require('./config')
const { createDb } = require('./db')
const { LeaseLock } = require('./lease')
const { AdvisoryLock } = require('./advisory')
const { migrateUp, checkVersion, upsertNodeVersion, migrationsFor } = require('./migrations')
const { startStartUpHealthReport, startServer } = require('./http')
const { createHealth, names } = require('./health')
const { createRateLimiter, createRequestLog } = require('./requests')
const { createContext, sleep, sleepCtx } = require('./util')

const SIGNAL_NAMES = { SIGTERM: 'terminated', SIGINT: 'interrupt' } // Go's os.Signal.String()

/** Test-only leader writes: a row every few ms, so tests can prove a single writer and measure gaps. */
function startHeartbeats({ pool, appID, version, everyMs, log }) {
  let stopped = false
  let timer
  let inflight = Promise.resolve()
  let created = false
  const tick = async () => {
    try {
      if (!created) {
        await pool.query(
          'CREATE TABLE IF NOT EXISTS sim_heartbeats (id bigserial PRIMARY KEY, app_id uuid NOT NULL, version text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())'
        )
        created = true
      }
      await pool.query('INSERT INTO sim_heartbeats (app_id, version) VALUES ($1, $2)', [appID, version])
    } catch (e) {
      log.debug('heartbeat write failed', { err: e.message })
    }
  }
  const loop = () => {
    if (stopped) return
    inflight = tick().then(() => {
      if (!stopped) timer = setTimeout(loop, everyMs)
    })
  }
  loop()
  return {
    async stop() {
      stopped = true
      clearTimeout(timer)
      await inflight
    }
  }
}

async function runNode({ cfg, fault, knobs }) {
  const { version } = cfg
  const v1 = semver.lt(version, '2.0.0')
  const appID = randomUUID() // AppID(): a fresh uuid per process (§3)
  const log = createLogger(cfg.logLevel)
  const ctx = createContext() // the root context, cancelled by SIGINT/SIGTERM
  let phase = 'lock' // lock -> startup -> run -> stopping
  let shutdown = () => undefined

  const onSignal = (sig) => {
    if (fault === 'ignore-sigterm') return log.debug(`ignoring ${sig} (simulated fault ignore-sigterm)`)
    if (phase === 'run') return shutdown(SIGNAL_NAMES[sig])
    ctx.cancel() // lock wait / migrations see the cancelled context and fail start-up
  }
  process.on('SIGTERM', () => onSignal('SIGTERM'))
  process.on('SIGINT', () => onSignal('SIGINT'))

  if (fault === 'crash-before-lock') {
    await sleep(knobs.crashMs)
    log.error('simulated fault crash-before-lock: exiting before taking the database lock')
    process.exit(1)
  }

  try {
    if (cfg.lockMode === 'lease' || cfg.lockMode === 'dual') checkLeaseIntervals(cfg)
  } catch (e) {
    process.stderr.write(`panic: ${e.message}\n`) // the lease lock constructor panics (§1)
    process.exit(1)
  }

  const db = createDb({ url: cfg.databaseURL, version, appID, log })
  const onLost = async (msg) => log.fatal(msg) // zap Fatal: exit 1 at once, nothing released (§2, §3)
  const lease =
    cfg.lockMode === 'lease' || cfg.lockMode === 'dual' ? new LeaseLock({ cfg, db, appID, log, onLost }) : null
  const advisory =
    cfg.lockMode === 'advisorylock' || cfg.lockMode === 'dual' ? new AdvisoryLock({ cfg, db, log, onLost }) : null

  /** LDB.Close(): release the locks, close the pool. v1 dual never expired the lease (§6). */
  const closeDb = async ({ expireLease = true } = {}) => {
    await advisory?.release()
    await lease?.release(expireLease && !(v1 && cfg.lockMode === 'dual'))
    await db.close()
    log.debug('Closed DB')
  }
  // A start-up error after the lock (version gate, migrations, keystore) returns from BeforeNode
  // through urfave/cli's exit path: AfterNode, which releases the lease, never runs
  // (core/cmd/shell_local.go, §11.7). The lease stays until it expires; the sockets just close.
  const fail = (msg) => {
    if (msg) log.error(msg)
    process.exit(1)
  }
  const requests = createRequestLog({ appID })

  // 1. BeforeNode: lock wait, nothing listens on the HTTP port (§4). Dual: lease first (§1).
  log.debug(`Using database locking mode: ${cfg.lockMode}`)
  try {
    await lease?.takeAndHold(ctx)
    await advisory?.takeAndHold(ctx)
  } catch (e) {
    return fail(`opening db: ${e.message}`)
  }
  if (fault === 'exit-after-lock') {
    log.error('simulated fault exit-after-lock: exiting without releasing the database lock')
    process.exit(2)
  }

  // 2. handleNodeVersioning: StartUpHealthReport, version gate, migrations, node_versions (§4, §9)
  phase = 'startup'
  let report
  try {
    report = await startStartUpHealthReport(cfg.httpPort, log, requests)
    await checkVersion(db.pool, version)
    if (cfg.migrate) {
      const delayMs = fault === 'slow-migrations' ? knobs.slowMigrationMs : knobs.migrationMs
      const known = migrationsFor(version)
      const failAt = knobs.failMigration || (fault === 'migration-fails' ? known[known.length - 1].id : 0)
      await migrateUp(db.pool, version, { delayMs, ctx, log, failAt })
    }
    await upsertNodeVersion(db.pool, version)
    if (ctx.cancelled) throw new Error('context canceled')
  } catch (e) {
    log.error(e.message)
    await report?.stop().catch(() => undefined)
    return fail(null)
  }
  if (fault === 'migrate-then-crash') {
    log.error('simulated fault migrate-then-crash: exiting after migrations, before serving')
    process.exit(1)
  }
  await report.stop()

  // 3./4. RunNode
  phase = 'run'
  const sha = createHash('sha1').update(`chainlink-sim-${version}`).digest('hex')
  let server
  let heartbeats
  let loseDb
  let shuttingDown = false
  shutdown = async (sigName) => {
    if (shuttingDown) return
    shuttingDown = true
    phase = 'stopping'
    const t0 = Date.now()
    log.info(`Shutting down due to ${sigName} signal received...`)
    ctx.cancel()
    setTimeout(async () => {
      log.critical(
        `Shutdown grace period of ${formatDuration(cfg.shutdownGracePeriod)} exceeded, closing DB and exiting...`
      )
      // v2 afterNode still releases the lease; v1 only closed the DB (§6)
      await closeDb({ expireLease: !v1 }).catch(() => undefined)
      process.exit(255) // os.Exit(-1)
    }, cfg.shutdownGracePeriod)
    // app.Stop() and the HTTP server's Shutdown run together
    const appStop = async () => {
      clearTimeout(loseDb)
      await heartbeats?.stop()
      await sleep(knobs.stopMs)
    }
    await Promise.all([appStop(), server?.stop()])
    await closeDb()
    stdlog(`Graceful shutdown time: ${formatDuration(Date.now() - t0)}`)
    process.exit(0)
  }

  log.info(`Starting Chainlink Node ${version} at commit ${sha}`)
  try {
    await sleepCtx(knobs.bootMs, ctx) // keys, chains, app.Start()
  } catch {
    return // shutdown is under way
  }
  log.info(`Chainlink booted in ${process.uptime().toFixed(2)}s`, { appID })
  const health = createHealth({
    failing: names(knobs.failingChecks),
    never: fault === 'never-ready' ? ['EVM.1337.HeadTracker'] : [],
    later: fault === 'new-check-fails' ? { name: knobs.newCheck, afterMs: knobs.newCheckAfterMs } : undefined,
    lagMs: knobs.readyzLagMs
  })
  const limiter = createRateLimiter({ limit: cfg.rateLimit, periodMs: cfg.rateLimitPeriod })
  // never-ready: the chain's RPC is unreachable, and the node says so with the URL it dialled
  if (fault === 'never-ready' && cfg.rpcUrl)
    log.error('Dial failed: EVM Node is unreachable', { nodeName: cfg.rpcUrl.name, url: cfg.rpcUrl.url })
  try {
    server = await startServer({
      port: cfg.httpPort,
      host: cfg.listenIP,
      health,
      limiter,
      requests,
      v1,
      routes: { publicReadyz: knobs.publicReadyz, authHealth: knobs.authHealth, authReadyz: knobs.authReadyz }
    })
    health.start()
  } catch (e) {
    log.critical(`Error starting server: ${e.message}`)
  }
  if (shuttingDown) return server?.stop()
  log.info(`Listening and serving HTTP on ${cfg.listenIP ?? '0.0.0.0'}:${cfg.httpPort}`)
  heartbeats = startHeartbeats({ pool: db.pool, appID, version, everyMs: knobs.heartbeatMs, log })
  if (fault === 'lose-db') {
    // Up for SIM_LOSE_DB_EVERY_MS, then every socket dies and the DB is unreachable for
    // SIM_LOSE_DB_OUTAGE_MS; repeat. The node only logs and keeps running (§3, §9).
    const dropLater = (ms) => {
      loseDb = setTimeout(() => {
        log.warn('simulated fault lose-db: dropping every DB connection', { outageMs: knobs.loseDbOutageMs })
        db.dropAll(knobs.loseDbOutageMs)
        dropLater(knobs.loseDbOutageMs + knobs.loseDbEveryMs)
      }, ms)
    }
    dropLater(knobs.loseDbEveryMs)
  }
}

module.exports = { runNode }
