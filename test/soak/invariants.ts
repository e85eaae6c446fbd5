// The campaign's invariants, read from the DB and Docker rather than from the action's report
// (docs/reliability.md, "Fault campaign"). Each returns the violations it found, with evidence.
import type Docker from 'dockerode'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { waitFor, type TestDb } from '../support/bed.js'
import { visible, type ActionRun } from '../support/action.js'
import { nodeUrl, readyz } from '../support/node.js'
import { dbState, lastHeartbeat } from '../support/fault.js'

export interface Violation {
  invariant: string
  detail: string
}

/** Results that say the node ended where it was asked to be: exit 0 exactly for these. */
const OK_RESULTS = new Set(['ok', 'upgraded', 'unchanged', 'deferred'])

/** The soak nodes' lease refresh (support/node.ts: 3 s lease, refreshed every 500 ms). */
const REFRESH_MS = 500
/** A healed partition's first refresh waits for the node's DB connection to come back. */
const SLACK_MS = 1500

interface Beat {
  app: string
  at: number
}

/**
 * Pure: each return of an earlier writer to the heartbeats, excused when it falls within a
 * partition of a node (from the cut to its heal + one refresh + slack). That is the real node's
 * own window (../shared/chainlink-node.md §3, "Holding"): a holder whose refresh fails keeps
 * running and exits only on its next successful refresh that affects 0 rows, so a leader cut off
 * longer than its lease writes again after the heal, before it exits. Any other return counts.
 */
export function writerReturns(
  beats: Beat[],
  cuts: { from: number; to: number }[],
  graceMs = REFRESH_MS + SLACK_MS
): { order: string[]; excused: Beat[]; counted: Beat[] } {
  const order: string[] = []
  const excused: Beat[] = []
  const counted: Beat[] = []
  for (const b of beats) {
    if (order.at(-1) === b.app) continue
    if (order.includes(b.app)) (cuts.some((c) => b.at >= c.from && b.at <= c.to + graceMs) ? excused : counted).push(b)
    order.push(b.app)
  }
  return { order, excused, counted }
}

/**
 * At most one writer at any moment: the heartbeats never go back to an earlier writer, except
 * within a partition the campaign made (writerReturns), which `notes` reports for the table.
 */
export async function oneWriter(
  db: TestDb,
  cuts: { from: number; to: number }[] = [],
  notes: string[] = []
): Promise<Violation[]> {
  const c = await db.client()
  let beats: Beat[]
  try {
    beats = (
      await c.query<{ app_id: string; ms: string }>(
        `SELECT app_id::text, (extract(epoch from at) * 1000)::text AS ms FROM sim_heartbeats ORDER BY at, id`
      )
    ).rows.map((r) => ({ app: r.app_id, at: Number(r.ms) }))
  } finally {
    await c.end()
  }
  const w = writerReturns(beats, cuts)
  const when = (b: Beat) =>
    `${b.app.slice(0, 8)} at ${new Date(b.at).toISOString()}${cuts.map((x) => ` (${Math.round(b.at - x.to)} ms after the heal of a cut ${new Date(x.from).toISOString()}..${new Date(x.to).toISOString()})`).join('')}`
  if (w.excused.length)
    notes.push(
      `one writer: excused ${w.excused.map(when).join(', ')}: inside a partition's window (the node's own, writerReturns)`
    )
  return w.counted.length
    ? [
        {
          invariant: 'one writer',
          detail: `heartbeats went back to an earlier writer: ${w.order.join(' -> ')}; returns ${w.counted.map(when).join(', ')}`
        }
      ]
    : []
}

export interface Serving {
  /** the container that answers /readyz 200 */
  ready?: string
  image?: string
}

/**
 * A node serving: one of the node's containers answers /readyz 200 (waited for up to `waitMs`:
 * a node Docker restarted after a crash boots first), it is the only one that does, and the
 * lease holder is a node process whose last heartbeat is fresh.
 */
export async function serving(
  api: Docker,
  names: string[],
  db: TestDb,
  waitMs = 60000
): Promise<{ serving?: Serving; violations: Violation[] }> {
  const readyNow = async () => {
    const out: string[] = []
    for (const n of names) {
      const url = await nodeUrl(n, api).catch(() => undefined)
      if (url && (await readyz(url)) === 200) out.push(n)
    }
    return out
  }
  const ready = await waitFor(
    'a node container /readyz 200',
    async () => {
      const r = await readyNow()
      return r.length ? r : undefined
    },
    waitMs,
    500
  ).catch(() => [] as string[])
  if (!ready.length) return { violations: [] }
  const v: Violation[] = []
  if (ready.length > 1) v.push({ invariant: 'one writer', detail: `two containers ready at once: ${ready.join(', ')}` })
  const s = await waitFor(
    'the lease held by a node process writing',
    async () => {
      const d = await dbState(db)
      const hb = await lastHeartbeat(db)
      return d.holder && d.apps.includes(d.holder) && hb?.app === d.holder && hb.agoMs < 2000 ? d : undefined
    },
    15000,
    250
  ).catch(() => undefined)
  if (!s) {
    const d = await dbState(db).catch(() => undefined)
    const hb = await lastHeartbeat(db)
    v.push({
      invariant: 'node serving',
      detail: `${ready[0]} answers /readyz 200 but no node process holds the lease and writes (holder ${d?.holder}, processes ${d?.apps.join(',')}, last heartbeat ${hb?.app} ${hb?.agoMs} ms ago)`
    })
  }
  const img = await imageIdOf(api, ready[0])
  const tag = await api
    .getImage(img?.id ?? '')
    .inspect()
    .then(
      (i) => i.RepoTags?.map((x) => x.split(':').pop()).join('/'),
      () => undefined
    )
  return { serving: { ready: ready[0], image: tag || img?.ref }, violations: v }
}

/** No row committed before the run lost, unless a restore was asked for. */
export async function markerKept(db: TestDb, restore: boolean): Promise<Violation[]> {
  const c = await db.client()
  try {
    const rows = (await c.query<{ note: string }>(`SELECT note FROM soak_marker`)).rows.map((r) => r.note)
    const want = restore ? ['before-backup'] : ['before-backup', 'before-run']
    const lost = want.filter((w) => !rows.includes(w))
    return lost.length ? [{ invariant: 'no row lost', detail: `marker rows gone: ${lost.join(', ')}` }] : []
  } catch (e) {
    return [{ invariant: 'no row lost', detail: `marker table unreadable: ${(e as Error).message}` }]
  } finally {
    await c.end()
  }
}

export async function writeMarker(db: TestDb, note: string): Promise<void> {
  const c = await db.client()
  try {
    await c.query(`CREATE TABLE IF NOT EXISTS soak_marker (id serial PRIMARY KEY, note text NOT NULL)`)
    await c.query(`INSERT INTO soak_marker (note) VALUES ($1)`, [note])
  } finally {
    await c.end()
  }
}

/** The phase of the node's journal in state-dir (one node per state-dir: `<name>` or, for a pair, `<a>+<b>`). */
export function journalPhase(stateDir: string): string | undefined {
  const jf = readdirSync(stateDir).find((f) => f.endsWith('.journal.json'))
  if (!jf) return undefined
  try {
    return (JSON.parse(readFileSync(join(stateDir, jf), 'utf8')) as { phase: string }).phase
  } catch {
    return 'unreadable'
  }
}

/** The command `status` names to end the state it found (e.g. "run operation 'repair'"). */
export function namedCommand(status: ActionRun): string | undefined {
  const text = `${visible(status.stdout)}\n${status.summary}`
  return /run operation '(\w+)'/.exec(text)?.[1] ?? /'(docker start [\w.-]+)'/.exec(text)?.[1]
}

export interface Truth {
  /** what the run was asked: an upgrade's images, or nothing to compare */
  upgrade?: { oldImage: string; newImage: string }
  /** the job was cancelled (SIGINT): the runner shows it cancelled, whatever main's exit code */
  cancelled: boolean
  /** `failed` claims the old image (an upgrade's failure: support/end-state.ts); a failed repair claims nothing */
  failedSaysOld: boolean
}

/**
 * The result output and exit code true to where the node is right after the run: `upgraded` (and
 * `unchanged`) only with the leader on the target image, `rolled-back`/`failed` only on the old;
 * exit 0 exactly for ok/upgraded/unchanged/deferred (a cancelled job is reported cancelled).
 */
export async function truthful(
  label: string,
  run: ActionRun,
  api: Docker,
  leader: string,
  t: Truth
): Promise<Violation[]> {
  const v: Violation[] = []
  const result = run.outputs.result
  if (run.killed || run.hung) return v
  if (result === undefined) {
    if (run.exitCode === 0) v.push({ invariant: 'result true', detail: `${label}: exit 0 without a result output` })
    return v
  }
  if (run.exitCode === 0 && !OK_RESULTS.has(result))
    v.push({ invariant: 'result true', detail: `${label}: exit 0 with result ${result}` })
  if (run.exitCode !== 0 && OK_RESULTS.has(result) && !t.cancelled)
    v.push({ invariant: 'result true', detail: `${label}: exit ${run.exitCode} with result ${result}` })
  if (t.upgrade) {
    const who = run.outputs.leader || leader
    const want =
      result === 'upgraded' || result === 'unchanged'
        ? t.upgrade.newImage
        : result === 'rolled-back' || (result === 'failed' && t.failedSaysOld)
          ? t.upgrade.oldImage
          : undefined
    // by image id: a container may be created from the verified image's id rather than its tag
    // (docs/algorithm.md: the tag may have moved since preflight)
    const runs = await imageIdOf(api, who)
    const wantId = want
      ? await api
          .getImage(want)
          .inspect()
          .then(
            (i) => i.Id,
            () => undefined
          )
      : undefined
    if (want && runs && wantId && runs.id !== wantId)
      v.push({
        invariant: 'result true',
        detail: `${label}: result ${result} but ${who} runs ${runs.ref} (${runs.id.slice(7, 19)}), not ${want}`
      })
  }
  return v
}

/** The image a container runs: its id, and the reference it was created from. */
export async function imageIdOf(api: Docker, name: string): Promise<{ id: string; ref: string } | undefined> {
  try {
    const i = await api.getContainer(name).inspect()
    return { id: i.Image, ref: i.Config.Image }
  } catch {
    return undefined
  }
}

function textFiles(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out
  for (const f of readdirSync(dir)) {
    const p = join(dir, f)
    const s = statSync(p, { throwIfNoEntry: false })
    if (!s) continue
    if (s.isDirectory()) textFiles(p, out)
    else if (s.isFile() && s.size < 4 << 20) out.push(p)
  }
  return out
}

/** No secret in any artefact: the log as the runner shows it, outputs, summary, state, state-dir and backup-dir files. */
export function noSecret(label: string, run: ActionRun, dirs: string[], secrets: string[]): Violation[] {
  const v: Violation[] = []
  const artefacts: [string, string][] = [
    ['log', visible(run.stdout)],
    ['outputs', JSON.stringify(run.outputs)],
    ['summary', run.summary],
    ['state', JSON.stringify(run.state)]
  ]
  for (const d of dirs) for (const f of textFiles(d)) artefacts.push([f, readFileSync(f).toString('latin1')])
  for (const [where, text] of artefacts)
    for (const s of secrets)
      if (text.includes(s)) v.push({ invariant: 'no secret', detail: `${label}: a DB password in ${where}` })
  return v
}
