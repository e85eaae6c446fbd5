// Leak test: a node configured with a secret in every place a node keeps one (support/secret-node.ts)
// is upgraded to an image whose RPC is unreachable (the node prints its RPC URL, `?apikey=` and
// all, and never gets ready), rolled back, backed up and inspected. Every artefact of those runs
// is searched for every secret: stdout and stderr of main and post, GITHUB_OUTPUT, GITHUB_STATE,
// the job summary, the state dir (journal) and the backup dir (manifests, archives). A secret may
// appear only on its own `::add-mask::` line, and each must have one (the runner masks it too).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { runAction, type ActionRun } from '../support/action.js'
import { containerState } from '../support/node.js'
import { startSecretNode, type SecretNode } from '../support/secret-node.js'

const prefix = uniqueName('clr-leak')
const name = `${prefix}-node`
let db: TestDb
let sn: SecretNode
let stateDir: string

beforeAll(async () => {
  db = await createDb('leak')
  stateDir = mkdtempSync(join(tmpdir(), 'clr-leak-state-'))
  sn = await startSecretNode({ name, tag: '2.19.0', db })
})
afterAll(async () => {
  await removeContainers(prefix)
  await db?.drop()
})

function filesUnder(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir)) {
    const p = join(dir, e)
    if (statSync(p).isDirectory()) out.push(...filesUnder(p))
    else out.push(p)
  }
  return out
}

/** Where each secret was found outside an `::add-mask::` line: artefact name -> secret names. */
function leaks(runs: ActionRun[], secrets: Record<string, string>): string[] {
  const found: string[] = []
  const artefacts: Array<[string, string]> = []
  for (const [i, r] of runs.entries()) {
    const shown = r.stdout
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'))
      .join('\n')
    artefacts.push([`run ${i} stdout/stderr`, shown])
    for (const f of ['output', 'state', 'summary'])
      artefacts.push([`run ${i} ${f}`, readFileSync(join(r.dir, f), 'latin1')])
  }
  for (const f of filesUnder(stateDir)) artefacts.push([f, readFileSync(f, 'latin1')])
  for (const [where, text] of artefacts)
    for (const [what, secret] of Object.entries(secrets)) if (text.includes(secret)) found.push(`${what} in ${where}`)
  return found
}

describe('no secret leaks into any artefact', () => {
  test('a failed upgrade (the node prints its RPC URL), a backup and a status', async () => {
    const before = await containerState(name)
    const common = {
      container: name,
      'state-dir': stateDir,
      'backup-dir': join(stateDir, 'backups'),
      'stable-for': '2s'
    }
    const runs: ActionRun[] = []
    runs.push(await runAction({ ...common, image: simImage('2.20.0-never-ready'), 'ready-timeout': '8s' }))
    expect(runs[0].outputs.result).toBe('rolled-back')
    // the new container printed the RPC URL with its key; the summary quotes that line, redacted
    expect(runs[0].summary).toMatch(/Dial failed: EVM Node is unreachable.*apikey=\*\*\*/)
    expect(runs[0].summary).toMatch(/Secrets files.*not stored/)
    runs.push(await runAction({ ...common, operation: 'backup' }))
    expect(runs[1].outputs.result).toBe('ok')
    runs.push(await runAction({ ...common, operation: 'status' }))
    expect(runs[2].outputs.result).toBe('ok')
    expect((await containerState(name))?.running).toBe(true)
    expect((await containerState(name))?.image).toBe(before?.image)

    expect(leaks(runs, sn.secrets)).toEqual([])
    // every secret was registered with the runner, so it masks any line we did not redact
    const masks = new Set(
      runs.flatMap((r) =>
        r.stdout
          .split('\n')
          .filter((l) => l.startsWith('::add-mask::'))
          .map((l) => l.slice('::add-mask::'.length))
      )
    )
    expect(Object.entries(sn.secrets).filter(([, s]) => !masks.has(s))).toEqual([])
  })
})
