'use strict'
// goose migrations (§7) and the version gate (§9). Each sim version knows the migrations up to its
// own release; later versions know more. Every migration changes something visible (a table or an
// index) so a test can see what ran and what a rollback undid.
const semver = require('semver')
const { sleep } = require('./util')

const table = (n) => `sim_m${String(n).padStart(4, '0')}`
const simple = (id, since) => ({
  id,
  since,
  name: `${String(id).padStart(4, '0')}_${table(id)}.sql`,
  up: [`CREATE TABLE ${table(id)} (id bigserial PRIMARY KEY, note text)`],
  down: [`DROP TABLE ${table(id)}`]
})

/** All migrations the simulator knows, with the first version that ships each one. */
const MIGRATIONS = [
  {
    id: 1,
    since: '0.0.0',
    name: '0001_initial.sql',
    up: ['CREATE TABLE node_versions (version text PRIMARY KEY, created_at timestamptz NOT NULL)'],
    down: ['DROP TABLE node_versions']
  },
  {
    id: 78,
    since: '0.0.0',
    name: '0078_only_one_version.sql',
    up: [
      'DELETE FROM node_versions WHERE created_at < (SELECT max(created_at) FROM node_versions)',
      'CREATE UNIQUE INDEX node_versions_only_one ON node_versions ((version IS NOT NULL))'
    ],
    down: ['DROP INDEX node_versions_only_one']
  },
  {
    id: 82,
    since: '0.0.0',
    name: '0082_lease_lock.sql',
    up: [
      'CREATE TABLE IF NOT EXISTS lease_lock (client_id uuid NOT NULL, expires_at timestamptz NOT NULL)',
      'CREATE UNIQUE INDEX IF NOT EXISTS only_one_lease_lock ON lease_lock ((client_id IS NOT NULL))'
    ],
    down: ['DROP TABLE lease_lock']
  },
  simple(95, '1.2.0'),
  simple(150, '1.13.0'),
  simple(165, '1.13.0'),
  simple(240, '2.18.0'),
  simple(241, '2.18.0'),
  simple(250, '2.19.0'),
  simple(255, '2.20.0'),
  simple(256, '2.20.0')
]

const migrationsFor = (version) => MIGRATIONS.filter((m) => semver.gte(version, m.since))

/** goose's version table: created on first use with the version-0 row. */
async function ensureGooseTable(pool) {
  const { rows } = await pool.query("SELECT to_regclass('goose_migrations') AS t")
  if (rows[0].t) return
  const c = await pool.connect()
  try {
    await c.query('begin')
    await c.query(
      'CREATE TABLE goose_migrations (id serial NOT NULL, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NULL default now(), PRIMARY KEY(id))'
    )
    await c.query('INSERT INTO goose_migrations (version_id, is_applied) VALUES (0, true)')
    await c.query('commit')
  } catch (e) {
    await c.query('rollback').catch(() => undefined)
    throw e
  } finally {
    c.release()
  }
}

/** The schema version (goose: latest applied migration; Down deletes rows, so max() is it). */
async function dbVersion(pool) {
  await ensureGooseTable(pool)
  const { rows } = await pool.query('SELECT COALESCE(max(version_id), 0) AS v FROM goose_migrations WHERE is_applied')
  return Number(rows[0].v)
}

async function inTx(pool, fn) {
  const c = await pool.connect()
  try {
    await c.query('begin')
    await fn(c)
    await c.query('commit')
  } catch (e) {
    await c.query('rollback').catch(() => undefined)
    throw e
  } finally {
    c.release()
  }
}

/**
 * goose Up with this version's migrations. delayMs is spent inside each migration's transaction
 * (a slow migration holds its transaction open, like a real long ALTER). ctx cancellation stops
 * between migrations with "context canceled".
 */
async function migrateUp(pool, version, { delayMs = 0, ctx, log, failAt = 0 }) {
  const current = await dbVersion(pool)
  const { rows } = await pool.query('SELECT version_id FROM goose_migrations WHERE is_applied')
  const applied = new Set(rows.map((r) => Number(r.version_id)))
  const known = migrationsFor(version)
  const missing = known.filter((m) => m.id < current && !applied.has(m.id))
  if (missing.length)
    throw new Error(
      `detected ${missing.length} missing (out-of-order) migrations lower than database version ${current}`
    )
  const pending = known.filter((m) => m.id > current)
  if (!pending.length) log.info(`goose: no migrations to run. current version: ${current}`)
  for (const m of pending) {
    if (ctx?.cancelled) throw new Error(`failed to migrate: ${m.name}: context canceled`)
    const t0 = Date.now()
    try {
      await inTx(pool, async (c) => {
        if (delayMs) await sleep(delayMs)
        for (const q of m.up) await c.query(q)
        // SIM_FAIL_MIGRATION / fault migration-fails: this one fails inside its own transaction
        if (m.id === failAt) await c.query('ALTER TABLE sim_missing_table ADD COLUMN x int')
        await c.query('INSERT INTO goose_migrations (version_id, is_applied) VALUES ($1, true)', [m.id])
      })
    } catch (e) {
      throw new Error(`failed to migrate: ERROR ${m.name}: failed to run SQL migration: ${e.message}`)
    }
    log.info(`goose: OK   ${m.name} (${Date.now() - t0}ms)`)
  }
  if (pending.length) log.info(`goose: successfully migrated database to version: ${pending[pending.length - 1].id}`)
}

/**
 * goose Down/DownTo: undo this binary's migrations above target (one step without a target).
 * A migration this binary does not ship cannot be undone (§10: only the newer binary can).
 * `failAt` (SIM_FAIL_DOWN): the Down step of that migration fails inside its own transaction, as
 * a data-dependent Down does on a real DB (re-adding NOT NULL over rows that hold NULLs): goose
 * runs each Down in its own transaction, so the ones above it stay undone, the DB stays at
 * `failAt`, and the command exits 1 with goose's error.
 */
async function rollback(pool, version, target, log, failAt = 0) {
  const byId = new Map(migrationsFor(version).map((m) => [m.id, m]))
  let current = await dbVersion(pool)
  if (target === undefined) {
    const { rows } = await pool.query(
      'SELECT COALESCE(max(version_id), 0) AS v FROM goose_migrations WHERE is_applied AND version_id < $1',
      [current]
    )
    target = Number(rows[0].v)
  }
  if (current <= target) log.info(`goose: no migrations to roll back. current version: ${current}`)
  while (current > target) {
    const m = byId.get(current)
    if (!m)
      throw new Error(`failed to rollback: migration ${current} is not known to this binary (Chainlink ${version})`)
    try {
      await inTx(pool, async (c) => {
        for (const q of m.down) await c.query(q)
        if (m.id === failAt) await c.query('ALTER TABLE sim_missing_table ALTER COLUMN x SET NOT NULL')
        await c.query('DELETE FROM goose_migrations WHERE version_id = $1', [m.id])
      })
    } catch (e) {
      throw new Error(
        `migrateDB failed: failed to rollback: ERROR ${m.name}: failed to run SQL migration: ${e.message}`
      )
    }
    log.info(`goose: OK   ${m.name} (rolled back)`)
    current = await dbVersion(pool)
  }
}

/**
 * CheckVersion (§9): the newest node_versions row, read FOR UPDATE. A missing table or an empty
 * one passes. An app older than the DB is refused with the node's exact message.
 */
async function checkVersion(pool, appVersion) {
  let dbv
  await inTx(pool, async (c) => {
    const { rows: t } = await c.query("SELECT to_regclass('node_versions') AS t")
    if (!t[0].t) return
    const { rows } = await c.query('SELECT version FROM node_versions ORDER BY created_at DESC LIMIT 1 FOR UPDATE')
    dbv = rows[0]?.version
  })
  if (dbv && semver.valid(dbv) && semver.lt(appVersion, dbv)) {
    throw new Error(
      `Application version (${appVersion}) is lower than database version (${dbv}). Only Chainlink ${dbv} or higher can be run on this database`
    )
  }
  return dbv
}

async function upsertNodeVersion(pool, version) {
  await pool.query(
    'INSERT INTO node_versions (version, created_at) VALUES ($1, NOW()) ON CONFLICT ((version IS NOT NULL)) DO UPDATE SET version = EXCLUDED.version, created_at = EXCLUDED.created_at',
    [version]
  )
}

module.exports = {
  MIGRATIONS,
  migrationsFor,
  dbVersion,
  migrateUp,
  rollback,
  checkVersion,
  upsertNodeVersion,
  ensureGooseTable
}
