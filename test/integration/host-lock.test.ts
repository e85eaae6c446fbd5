// Review N10 on the real bed: the host lock and the journal belong to the node's database, not to
// the names a workflow gives nor to its state-dir or user. Runs that name the node differently,
// or run with another state-dir, exclude each other; a journal that exists but cannot be read
// (another user's, corrupt) is refused, never read as "no journal".
import { afterAll, afterEach, describe, expect, test } from '@jest/globals'
import { spawn } from 'node:child_process'
import { chmodSync, chownSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createDb, loadBed, removeContainers, simImage, uniqueName, waitFor, type TestDb } from '../support/bed.js'
import { runAction, visible, type ActionRun } from '../support/action.js'
import { containerState, nodeUrl, readyz, startNode, writers } from '../support/node.js'
import { hostLocksOf, journalFiles } from '../support/end-state.js'

const root = resolve(import.meta.dirname, '../..')
const prefix = uniqueName('clr-hlock')
let n = 0
let db: TestDb | undefined
let name: string

afterAll(async () => {
  await removeContainers(prefix)
})
afterEach(async () => {
  await removeContainers(name)
  await db?.drop()
  db = undefined
})

const newStateDir = () => mkdtempSync(join(tmpdir(), 'clr-state-'))

async function fresh(pair = false): Promise<{ a: string; b: string }> {
  db = await createDb('hlock')
  name = `${prefix}-${++n}`
  const a = `${name}-a`
  const b = `${name}-b`
  await startNode({ name: a, tag: '2.18.0', db, layout: 'bridge' })
  if (pair) {
    await startNode({ name: b, tag: '2.18.0', db, layout: 'bridge', noWait: true })
    // the standby waits for the lock once it has its DB session: two node apps on the DB
    const d = db
    await waitFor(
      'the standby waiting with a DB session',
      async () => {
        const c = await d.client()
        try {
          const q = await c.query(
            "SELECT count(DISTINCT application_name) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'Chainlink%'",
            [d.name]
          )
          return Number(q.rows[0].n) >= 2
        } finally {
          await c.end()
        }
      },
      60_000,
      200
    )
  }
  return { a, b }
}

function upgrade(inputs: Record<string, string>, runOpts = {}): Promise<ActionRun> {
  const stateDir = inputs['state-dir']
  return runAction(
    {
      operation: 'upgrade',
      image: simImage('2.19.0'),
      'backup-dir': join(stateDir, 'backups'),
      'stable-for': '2s',
      ...inputs
    },
    runOpts
  )
}

const errorOf = (r: ActionRun) =>
  visible(r.stdout)
    .split('\n')
    .filter((l) => l.startsWith('::error::'))
    .join('\n')

/** The node serves one leader on `tag`, named `c`, and no two writers ever interleaved. */
async function oneLeader(c: string, tag: string): Promise<void> {
  const st = await containerState(c)
  expect({ running: st?.running, image: st?.image }).toEqual({ running: true, image: simImage(tag) })
  expect(await readyz((await nodeUrl(c))!)).toBe(200)
  expect((await writers(db!)).interleaved).toBe(false)
}

/** The CLI (dist/cli.js) as another user of the host (nobody, in the docker group). */
function cliAsNobody(args: string[]): Promise<{ code: number | null; out: string }> {
  const dockerGid = readFileSync('/etc/group', 'utf8').match(/^docker:[^:]*:(\d+):/m)?.[1] ?? '0'
  return new Promise((res) => {
    const child = spawn(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        `--groups=${dockerGid}`,
        '--',
        loadBed().node24,
        join(root, 'dist/cli.js'),
        ...args
      ],
      { env: { PATH: process.env.PATH ?? '', HOME: '/tmp' }, stdio: ['ignore', 'pipe', 'pipe'] }
    )
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    child.on('exit', (code) => res({ code, out }))
  })
}

describe('runs naming the node differently are one node', () => {
  test("'container: a, standby: b' runs; 'container: a' and 'container: b' at once are refused, naming it", async () => {
    const { a, b } = await fresh(true)
    const s1 = newStateDir()
    const first = upgrade({ container: a, standby: b, 'state-dir': s1 })
    // the others start once the first holds the host lock
    await waitFor('the first run holds the host lock', async () => hostLocksOf(s1).length === 1, 60_000)
    const [y, z] = await Promise.all([
      upgrade({ container: a, 'state-dir': newStateDir(), 'lock-timeout': '2s' }),
      upgrade({ container: b, 'state-dir': newStateDir(), 'lock-timeout': '2s' })
    ])
    const x = await first
    const held = expect.stringMatching(
      new RegExp(
        `another chainlink-rollout operation on this node holds the host lock .*upgrade of '${a}' \\(standby '${b}'\\), pid \\d+`
      )
    )
    // one object, so that a failure shows every run's outcome
    expect({ x: [x.outputs.result, errorOf(x)], y: [y.exitCode, errorOf(y)], z: [z.exitCode, errorOf(z)] }).toEqual({
      x: ['upgraded', ''],
      y: [1, held],
      z: [1, held]
    })
    for (const c of [a, b]) expect((await containerState(c))?.image).toBe(simImage('2.19.0'))
    expect((await writers(db!)).interleaved).toBe(false)
    expect(hostLocksOf(s1)).toEqual([])
  })
})

describe('another state-dir or another user sees the node', () => {
  test('a run killed mid-upgrade: a run of another state-dir is refused naming the journal, another user too; repair there ends it', async () => {
    const { a } = await fresh()
    const s1 = newStateDir()
    const killed = await upgrade(
      { container: a, 'state-dir': s1 },
      { post: false, cancelSignal: 'SIGKILL', cancelWhen: (out: string) => out.includes(`${a} stopped`) }
    )
    expect(killed.killed).toBe(true)
    const [journal] = journalFiles(s1)
    expect(JSON.parse(readFileSync(journal, 'utf8')).phase).toBe('in-progress')
    const ids = async () => (await containerState(a))?.id

    // another state-dir: refused, naming the journal and the state-dir to repair with
    const before = await ids()
    const other = await upgrade({ container: a, 'state-dir': newStateDir(), 'lock-timeout': '2s' })
    expect(other.exitCode).toBe(1)
    expect(errorOf(other)).toContain(`is recorded in ${journal}`)
    expect(errorOf(other)).toContain(`run operation 'repair' with state-dir '${s1}'`)
    expect(await ids()).toBe(before)

    // another user, its own state-dir: refused, naming the journal it cannot read
    const own = newStateDir()
    chownSync(own, 65534, 65534)
    const nobody = await cliAsNobody(['upgrade', '--container', a, '--image', simImage('2.19.0'), '--state-dir', own])
    expect(nobody.code).not.toBe(0)
    expect(nobody.out).toMatch(new RegExp(`Cannot read the journal ${journal} \\(EACCES`))
    expect(await ids()).toBe(before)

    // the repair, with the state-dir named, ends it: one leader
    const r = await runAction({
      operation: 'repair',
      container: a,
      'state-dir': s1,
      'backup-dir': join(s1, 'backups'),
      'stable-for': '2s'
    })
    expect(r.exitCode).toBe(0)
    expect(JSON.parse(readFileSync(journal, 'utf8')).phase).toBe('done')
    await oneLeader(a, r.outputs.result === 'upgraded' ? '2.19.0' : '2.18.0')
    expect(hostLocksOf(s1)).toEqual([])
  })
})

describe('a journal that exists but cannot be read is refused, not "no journal"', () => {
  test.each<[string, (file: string, stateDir: string) => void, 'root' | 'nobody', RegExp]>([
    ['corrupt JSON', (f) => writeFileSync(f, '{"runId": "x", "phase": "in-progr'), 'root', /is not valid JSON/],
    [
      "root's 0600 journal, the same state-dir, another user",
      (f, s) => {
        chownSync(s, 65534, 65534)
        chmodSync(f, 0o600)
      },
      'nobody',
      /Cannot read the journal .* \(EACCES, owned by uid 0; this run is uid 65534\)/
    ]
  ])('%s: refused, naming the file; nothing changed', async (_, spoil, user, message) => {
    const { a } = await fresh()
    const s = newStateDir()
    const ok = await upgrade({ container: a, 'state-dir': s })
    expect(ok.outputs.result).toBe('upgraded')
    const [journal] = journalFiles(s)
    spoil(journal, s)
    const before = await containerState(a)
    const args = { container: a, 'state-dir': s, image: simImage('2.20.0') }
    const out =
      user === 'root'
        ? errorOf(await upgrade(args))
        : (await cliAsNobody(['upgrade', '--container', a, '--image', args.image, '--state-dir', s])).out
    expect(out).toMatch(message)
    expect(out).toContain(journal)
    expect(out).toMatch(/nothing was changed/)
    const after = await containerState(a)
    expect({ id: after?.id, image: after?.image }).toEqual({ id: before?.id, image: simImage('2.19.0') })
    await oneLeader(a, '2.19.0')
  })
})
