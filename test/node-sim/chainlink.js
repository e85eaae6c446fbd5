#!/usr/bin/env node
'use strict'
// The simulator's `chainlink` binary (see README.md and docs/node-facts.md).
// CLI shapes accepted, as core/cmd/app.go does (§7, §8): `node` has the alias `local`, `start`
// has the aliases `node` and `n`; -config/-c and -secrets/-s are repeatable, -p/-a are accepted
// and ignored (the sim has no keystore or API users).
const { createLogger } = require('./log')
const { ConfigError, bakedVersion, activeFault, loadConfig, simKnobs, probePort } = require('./config')
const { createDb } = require('./db')
const { dbVersion, rollback, migrateUp, migrationsFor, ensureGooseTable } = require('./migrations')
const { healthProbe } = require('./http')
const { runNode } = require('./node')
const { randomUUID, createHash } = require('node:crypto')

const VALUE_FLAGS = {
  config: 'config',
  c: 'config',
  secrets: 'secrets',
  s: 'secrets',
  password: 'ignored',
  p: 'ignored',
  api: 'ignored',
  a: 'ignored',
  vrfpassword: 'ignored',
  vp: 'ignored'
}

function parseCli(argv) {
  const flags = { config: [], secrets: [], version: false }
  const words = []
  for (let i = 0; i < argv.length; i++) {
    const m = /^--?([A-Za-z-]+)(?:=(.*))?$/.exec(argv[i])
    if (!m) {
      words.push(argv[i])
      continue
    }
    const name = m[1]
    if (name === 'version' || name === 'v') {
      flags.version = true
      continue
    }
    if (name === 'help' || name === 'h') {
      flags.help = true
      continue
    }
    const kind = VALUE_FLAGS[name]
    if (!kind) throw new ConfigError(`flag provided but not defined: -${name}`)
    const value = m[2] ?? argv[++i]
    if (kind !== 'ignored') flags[kind].push(value)
  }
  return { flags, words }
}

const USAGE = `usage: chainlink [-config file] [-secrets file] node start|db version|db status|db rollback [N]|db migrate
       chainlink health-probe | chainlink --version`

async function dbCommand(cfg, words) {
  // The db commands open a plain connection and take NO lock (§7): only validateDB runs before.
  const log = createLogger(cfg.logLevel)
  const db = createDb({ url: cfg.databaseURL, version: cfg.version, appID: randomUUID(), log })
  try {
    const [cmd, arg] = words
    if (cmd === 'version') {
      log.info(`Database version: ${await dbVersion(db.pool)}`)
    } else if (cmd === 'rollback') {
      if (arg !== undefined && !/^\d+$/.test(arg)) throw new Error(`invalid rollback version: ${arg}`)
      const failAt = simKnobs().failDown
      await rollback(db.pool, cfg.version, arg === undefined ? undefined : Number(arg), log, failAt)
      log.info(`Database version: ${await dbVersion(db.pool)}`)
    } else if (cmd === 'status') {
      // goose Provider.Status as core/store/migrate/migrate.go logs it: one line per migration
      // this binary ships (docs/node-facts.md §7), so its last line names its newest migration
      await ensureGooseTable(db.pool)
      const { rows } = await db.pool.query(
        'SELECT version_id, max(tstamp) AS at FROM goose_migrations WHERE is_applied GROUP BY version_id'
      )
      const applied = new Map(rows.map((r) => [Number(r.version_id), r.at]))
      for (const m of migrationsFor(cfg.version)) {
        const at = applied.get(m.id)
        log.info(
          `version:${m.id}, path:${m.name}, type:sql, state:${at ? 'applied' : 'pending'}, appliedAt: ${at ? new Date(at).toISOString() : '0001-01-01 00:00:00 +0000 UTC'}`
        )
      }
    } else if (cmd === 'migrate') {
      // the same migrations `node start` runs, at the same pace and with the same faults: a real
      // binary's `db migrate` is its start-up's migration step alone (§7)
      const fault = activeFault()
      const knobs = simKnobs()
      const known = migrationsFor(cfg.version)
      await migrateUp(db.pool, cfg.version, {
        log,
        delayMs: fault === 'slow-migrations' ? knobs.slowMigrationMs : knobs.migrationMs,
        failAt: knobs.failMigration || (fault === 'migration-fails' ? known[known.length - 1].id : 0)
      })
    } else {
      throw new ConfigError(`unknown db command: ${cmd ?? ''}\n${USAGE}`)
    }
    return 0
  } catch (e) {
    log.error(e.message)
    return 1
  } finally {
    await db.close()
  }
}

async function main(argv) {
  const { flags, words } = parseCli(argv)
  if (words[0] === 'health-probe') return healthProbe(probePort())
  const version = bakedVersion()
  if (flags.version) {
    process.stdout.write(
      `chainlink version ${version}@${createHash('sha1').update(`chainlink-sim-${version}`).digest('hex')}\n`
    )
    return 0
  }
  const [group, sub, ...rest] = words
  if (flags.help || !['node', 'local'].includes(group)) {
    process.stdout.write(`${USAGE}\n`)
    return flags.help ? 0 : 1
  }
  const cfg = loadConfig(version, flags)
  if (['start', 'node', 'n'].includes(sub)) {
    await runNode({ cfg, fault: activeFault(), knobs: simKnobs() })
    return undefined // runs until a signal or a fault ends the process
  }
  if (sub === 'db') return dbCommand(cfg, rest)
  process.stdout.write(`${USAGE}\n`)
  return 1
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exit(code)
  },
  (e) => {
    // Invalid configuration fails validation and the CLI exits 1 with the message.
    process.stdout.write(`${new Date().toISOString()} [ERROR] ${e.message}\n`)
    process.exit(1)
  }
)
