// A node-shaped database for the backup bench: the tables that make a Chainlink node's database
// heavy (evm.logs with its indexes, evm.heads, pipeline_runs and pipeline_task_runs with JSON,
// evm.txes and evm.tx_attempts), plus the keystore row, filled server-side (INSERT ... SELECT
// over generate_series, two sessions at a time on a 2-core host) and indexed after the load.
//
// Reproducible: every value is derived from md5(seed || row number), never from random(), so
// the same seed and size give the same rows whatever the plan or the order of the sessions.
// The data compresses like a node's: 32-byte hashes (random), addresses and topics from small
// sets (repeating), ABI-encoded log data (zero-padded words), JSON with repeated keys.
import pg from 'pg'

export interface GenOptions {
  /** target database size in MiB (pg_database_size comes out within ~15% of it) */
  targetMiB: number
  seed?: number
  progress?: (line: string) => void
}

export interface GenResult {
  bytes: number
  rows: Record<string, number>
  ms: number
}

// Rows per MiB of database (tables with indexes), measured with this generator; the shares of
// the database per table follow the order of a busy node's largest relations.
const SHARE = { logs: 0.5, heads: 0.06, runs: 0.1, taskRuns: 0.2, txes: 0.06, attempts: 0.08 }
const ROWS_PER_MIB = { logs: 1180, heads: 3500, runs: 2160, taskRuns: 4570, txes: 2110, attempts: 2550 }

const SCHEMA = `
CREATE SCHEMA evm;
CREATE TABLE encrypted_key_rings (encrypted_keys jsonb, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE evm.key_states (id serial PRIMARY KEY, address bytea NOT NULL, evm_chain_id numeric(78) NOT NULL, disabled boolean NOT NULL DEFAULT false, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE evm.logs (evm_chain_id numeric(78) NOT NULL, log_index bigint NOT NULL, block_hash bytea NOT NULL, block_number bigint NOT NULL, address bytea NOT NULL, event_sig bytea NOT NULL, topics bytea[] NOT NULL, tx_hash bytea NOT NULL, data bytea NOT NULL, created_at timestamptz NOT NULL, block_timestamp timestamptz NOT NULL);
CREATE TABLE evm.heads (id bigserial, hash bytea NOT NULL, number bigint NOT NULL, parent_hash bytea NOT NULL, created_at timestamptz NOT NULL, timestamp timestamptz NOT NULL, l1_block_number bigint, evm_chain_id numeric(78) NOT NULL, base_fee_per_gas numeric(78), difficulty numeric(78), total_difficulty numeric(78));
CREATE TABLE pipeline_runs (id bigserial, pipeline_spec_id int NOT NULL, meta jsonb, all_errors jsonb, fatal_errors jsonb, inputs jsonb, outputs jsonb, created_at timestamptz NOT NULL, finished_at timestamptz, state text NOT NULL);
CREATE TABLE pipeline_task_runs (id uuid NOT NULL, pipeline_run_id bigint NOT NULL, type text NOT NULL, index int NOT NULL DEFAULT 0, output jsonb, error text, created_at timestamptz NOT NULL, finished_at timestamptz, dot_id text NOT NULL);
CREATE TABLE evm.txes (id bigserial, nonce bigint, from_address bytea NOT NULL, to_address bytea NOT NULL, encoded_payload bytea NOT NULL, value numeric(78) NOT NULL, gas_limit bigint NOT NULL, error text, broadcast_at timestamptz, created_at timestamptz NOT NULL, state text NOT NULL, meta jsonb, subject uuid, evm_chain_id numeric(78) NOT NULL, idempotency_key text);
CREATE TABLE evm.tx_attempts (id bigserial, eth_tx_id bigint NOT NULL, gas_price numeric(78), signed_raw_tx bytea NOT NULL, hash bytea NOT NULL, broadcast_before_block_num bigint, state text NOT NULL, created_at timestamptz NOT NULL, tx_type smallint NOT NULL, gas_tip_cap numeric(78), gas_fee_cap numeric(78));
`

// h(k) is 32 bytes derived from the seed, the row number g and a salt k
const h = (k: string) => `decode(md5($1::text || g::text || '${k}') || md5(g::text || $1::text || '${k}'), 'hex')`
const hex = (k: string, n: number) => `substr(md5($1::text || g::text || '${k}'), 1, ${n})`

const FILL: Record<keyof typeof SHARE, string> = {
  logs: `INSERT INTO evm.logs SELECT 1, g % 40, ${h('bh')}, 18000000 + g / 40,
      decode(md5($1::text || (g % 97)::text), 'hex') || '\\x00000000'::bytea,
      decode(md5($1::text || (g % 13)::text) || md5((g % 13)::text), 'hex'),
      ARRAY[decode(md5($1::text || (g % 13)::text) || md5((g % 13)::text), 'hex'),
            decode(repeat('00', 12) || md5($1::text || (g % 211)::text) || '00000000', 'hex'), ${h('t2')}],
      ${h('tx')},
      decode(repeat('00', 28) || ${hex('d1', 8)} || repeat('00', 12) || md5($1::text || (g % 211)::text) || ${hex('d2', 8)} || md5(g::text || 'd3' || $1::text) || md5($1::text || 'd4' || g::text) || repeat('00', 24) || ${hex('d5', 16)}, 'hex'),
      timestamptz '2026-01-01' + g * interval '300 ms', timestamptz '2026-01-01' + (g / 40) * interval '12 s'
    FROM generate_series($2::bigint, $3::bigint) g`,
  heads: `INSERT INTO evm.heads (id, hash, number, parent_hash, created_at, timestamp, l1_block_number, evm_chain_id, base_fee_per_gas, difficulty, total_difficulty)
    SELECT g, ${h('hh')}, 18000000 + g, decode(md5($1::text || (g - 1)::text || 'hh') || md5((g - 1)::text || $1::text || 'hh'), 'hex'),
      timestamptz '2026-01-01' + g * interval '12 s', timestamptz '2026-01-01' + g * interval '12 s', NULL, 1,
      ('x' || ${hex('bf', 8)})::bit(32)::bigint, 0, 58750003716598352816469
    FROM generate_series($2::bigint, $3::bigint) g`,
  runs: `INSERT INTO pipeline_runs (id, pipeline_spec_id, meta, all_errors, fatal_errors, inputs, outputs, created_at, finished_at, state)
    SELECT g, 1 + g % 25,
      jsonb_build_object('jobRun', jsonb_build_object('requestID', '0x' || md5($1::text || g::text || 'r') || md5(g::text || 'r'), 'blockNumber', 18000000 + g / 3, 'logTopics', jsonb_build_array('0x' || md5((g % 13)::text)))),
      '[null, null, null]'::jsonb, '[null]'::jsonb,
      jsonb_build_object('ds1', jsonb_build_object('data', jsonb_build_object('result', ('x' || ${hex('p', 8)})::bit(32)::bigint)), 'ds1_parse', ('x' || ${hex('p', 8)})::bit(32)::bigint),
      jsonb_build_array(('x' || ${hex('o', 8)})::bit(32)::bigint::text),
      timestamptz '2026-01-01' + g * interval '1 s', timestamptz '2026-01-01' + g * interval '1 s' + interval '850 ms', 'completed'
    FROM generate_series($2::bigint, $3::bigint) g`,
  taskRuns: `INSERT INTO pipeline_task_runs (id, pipeline_run_id, type, index, output, error, created_at, finished_at, dot_id)
    SELECT md5($1::text || g::text || 'u')::uuid, g / 4, (ARRAY['http','jsonparse','multiply','ethtx'])[1 + g % 4], g % 4,
      CASE g % 4 WHEN 0 THEN to_jsonb('{"data":{"result":"' || ${hex('o', 12)} || '","timestamp":1767225600},"statusCode":200}')
                 WHEN 3 THEN to_jsonb('0x' || md5($1::text || g::text || 'tx') || md5(g::text || 'tx'))
                 ELSE to_jsonb(('x' || ${hex('v', 8)})::bit(32)::bigint) END,
      NULL, timestamptz '2026-01-01' + g * interval '250 ms', timestamptz '2026-01-01' + g * interval '250 ms' + interval '40 ms',
      (ARRAY['ds1','ds1_parse','ds1_multiply','submit_tx'])[1 + g % 4]
    FROM generate_series($2::bigint, $3::bigint) g`,
  txes: `INSERT INTO evm.txes (id, nonce, from_address, to_address, encoded_payload, value, gas_limit, error, broadcast_at, created_at, state, meta, subject, evm_chain_id, idempotency_key)
    SELECT g, g, decode(substr(md5($1::text || (g % 3)::text), 1, 40), 'hex'), decode(substr(md5($1::text || (g % 29)::text || 'to'), 1, 40), 'hex'),
      decode('c9807539' || repeat('00', 28) || ${hex('e1', 8)} || md5(g::text || 'e2' || $1::text) || md5($1::text || 'e3' || g::text) || repeat('00', 31) || '02' || md5(g::text || 'e4') || md5('e5' || g::text || $1::text), 'hex'),
      0, 500000, NULL, timestamptz '2026-01-01' + g * interval '20 s', timestamptz '2026-01-01' + g * interval '20 s', 'confirmed',
      jsonb_build_object('JobID', 1 + g % 25, 'RequestID', '0x' || md5(g::text || 'rq')), md5($1::text || (g % 25)::text)::uuid, 1, NULL
    FROM generate_series($2::bigint, $3::bigint) g`,
  attempts: `INSERT INTO evm.tx_attempts (id, eth_tx_id, gas_price, signed_raw_tx, hash, broadcast_before_block_num, state, created_at, tx_type, gas_tip_cap, gas_fee_cap)
    SELECT g, 1 + g / 2, NULL,
      decode('02f9' || md5($1::text || g::text || 's1') || md5(g::text || 's2') || md5(g::text || 's3' || $1::text) || md5('s4' || g::text) || md5($1::text || 's5' || g::text) || md5(g::text || 's6') || repeat('00', 40) || md5('s7' || $1::text || g::text), 'hex'),
      ${h('ah')}, 18000000 + g / 2, 'broadcast', timestamptz '2026-01-01' + g * interval '10 s', 2, 1500000000, 30000000000 + g % 1000
    FROM generate_series($2::bigint, $3::bigint) g`
}

const INDEXES: Record<keyof typeof SHARE, string[]> = {
  logs: [
    'ALTER TABLE evm.logs ADD PRIMARY KEY (block_hash, log_index, evm_chain_id)',
    'CREATE INDEX evm_logs_idx ON evm.logs (evm_chain_id, block_number, address, event_sig)',
    'CREATE INDEX idx_evm_logs_ordered_by_block_and_created_at ON evm.logs (evm_chain_id, address, event_sig, block_number, created_at)',
    'CREATE INDEX evm_logs_by_timestamp ON evm.logs (evm_chain_id, address, event_sig, block_timestamp, created_at)'
  ],
  heads: [
    'ALTER TABLE evm.heads ADD PRIMARY KEY (id)',
    'CREATE UNIQUE INDEX idx_heads_evm_chain_id_hash ON evm.heads (evm_chain_id, hash)',
    'CREATE INDEX idx_heads_evm_chain_id_number ON evm.heads (evm_chain_id, number)'
  ],
  runs: [
    'ALTER TABLE pipeline_runs ADD PRIMARY KEY (id)',
    'CREATE INDEX idx_pipeline_runs_pipeline_spec_id ON pipeline_runs (pipeline_spec_id)',
    'CREATE INDEX idx_pipeline_runs_created_at ON pipeline_runs (created_at)'
  ],
  taskRuns: [
    'ALTER TABLE pipeline_task_runs ADD PRIMARY KEY (id)',
    'CREATE UNIQUE INDEX idx_pipeline_task_runs_unique_task_spec_id_per_run ON pipeline_task_runs (pipeline_run_id, dot_id)'
  ],
  txes: [
    'ALTER TABLE evm.txes ADD PRIMARY KEY (id)',
    'CREATE UNIQUE INDEX idx_eth_txes_nonce_from_address_per_evm_chain_id ON evm.txes (evm_chain_id, from_address, nonce)',
    'CREATE INDEX idx_eth_txes_state_from_address_evm_chain_id ON evm.txes (evm_chain_id, from_address, state)'
  ],
  attempts: [
    'ALTER TABLE evm.tx_attempts ADD PRIMARY KEY (id)',
    'CREATE UNIQUE INDEX eth_tx_attempts_hash_key ON evm.tx_attempts (hash)',
    'CREATE INDEX idx_eth_tx_attempts_eth_tx_id ON evm.tx_attempts (eth_tx_id)'
  ]
}

export function plannedRows(targetMiB: number): Record<keyof typeof SHARE, number> {
  const out = {} as Record<keyof typeof SHARE, number>
  for (const k of Object.keys(SHARE) as (keyof typeof SHARE)[])
    out[k] = Math.max(100, Math.round(targetMiB * SHARE[k] * ROWS_PER_MIB[k]))
  return out
}

/** Fills an empty database (URL) with a node-shaped data set of about targetMiB. */
export async function generateNodeDb(url: string, opts: GenOptions): Promise<GenResult> {
  const t0 = Date.now()
  const seed = opts.seed ?? 1
  const say = opts.progress ?? (() => undefined)
  const rows = plannedRows(opts.targetMiB)
  const connect = async () => {
    const c = new pg.Client({ connectionString: url, application_name: 'bench-gen-db' })
    await c.connect()
    await c.query("SET synchronous_commit = off; SET maintenance_work_mem = '512MB'")
    return c
  }
  const a = await connect()
  try {
    await a.query(SCHEMA)
    await a.query(
      `INSERT INTO encrypted_key_rings (encrypted_keys) VALUES ('{"crypto":{"cipher":"aes-128-ctr","ciphertext":"00ff"},"version":3}');
       INSERT INTO evm.key_states (address, evm_chain_id) SELECT decode(substr(md5('${seed}' || g::text), 1, 40), 'hex'), 1 FROM generate_series(0, 2) g`
    )
  } finally {
    await a.end()
  }
  // Work items: each table in chunks of at most 250k rows, then its indexes; two sessions pull
  // from one queue so both cores stay busy.
  type Item = { what: string; run: (c: pg.Client) => Promise<unknown> }
  const items: Item[] = []
  for (const k of Object.keys(SHARE) as (keyof typeof SHARE)[]) {
    const n = rows[k]
    for (let lo = 1; lo <= n; lo += 250000) {
      const hi = Math.min(n, lo + 249999)
      items.push({ what: `${k} rows ${lo}-${hi}`, run: (c) => c.query(FILL[k], [seed, lo, hi]) })
    }
  }
  const indexItems: Item[] = []
  for (const k of Object.keys(SHARE) as (keyof typeof SHARE)[])
    for (const sql of INDEXES[k]) indexItems.push({ what: sql.replace(/ ON .*| \(.*/, ''), run: (c) => c.query(sql) })
  const drain = async (queue: Item[]) => {
    const worker = async () => {
      const c = await connect()
      try {
        for (let it = queue.shift(); it; it = queue.shift()) {
          const t = Date.now()
          await it.run(c)
          say(`${it.what} (${Date.now() - t} ms)`)
        }
      } finally {
        await c.end()
      }
    }
    await Promise.all([worker(), worker()])
  }
  await drain(items)
  await drain(indexItems)
  const c = await connect()
  try {
    await c.query('VACUUM (ANALYZE)')
    await c.query(`SELECT setval(pg_get_serial_sequence('evm.heads', 'id'), ${rows.heads})`)
    const bytes = Number((await c.query('SELECT pg_database_size(current_database()) AS b')).rows[0].b)
    return { bytes, rows, ms: Date.now() - t0 }
  } finally {
    await c.end()
  }
}
