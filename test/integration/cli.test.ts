// The command line (dist/cli.js) drives the same engine as the action: upgrade, handoff and
// status of a failover pair on the bed, each compared with what the action reports.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createDb, loadBed, removeContainers, simImage, uniqueName, type TestDb } from '../support/bed.js'
import { runAction } from '../support/action.js'
import { containerState, startNode } from '../support/node.js'

const root = resolve(import.meta.dirname, '../..')
const prefix = uniqueName('clr-cli')
const a = `${prefix}-a`
const b = `${prefix}-b`
let db: TestDb
const stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))

interface CliRun {
  code: number | null
  json: { result: string; ok: boolean; message?: string; outputs: Record<string, string> }
  stderr: string
}

function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((res) => {
    const child = spawn(loadBed().node24, [join(root, 'dist/cli.js'), ...args, '--json'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('exit', (code) => res({ code, json: JSON.parse(out.trim().split('\n').pop() ?? '{}'), stderr: err }))
  })
}

const common = ['--state-dir', stateDir, '--backup-dir', join(stateDir, 'backups'), '--stable-for', '2s']
const commonInputs = { 'state-dir': stateDir, 'backup-dir': join(stateDir, 'backups'), 'stable-for': '2s' }

beforeAll(async () => {
  db = await createDb('cli')
  await startNode({ name: a, tag: '2.19.0', db })
  await startNode({ name: b, tag: '2.19.0', db, noWait: true })
})
afterAll(async () => {
  await removeContainers(prefix)
  await db.drop()
})

describe('the command line', () => {
  test('status: the same result and outputs as the action', async () => {
    const c = await runCli(['status', '--container', a, '--standby', b, ...common])
    expect(c.code).toBe(0)
    expect(c.json.result).toBe('ok')
    expect(c.json.outputs.leader).toBe(a)
    const r = await runAction({ operation: 'status', container: a, standby: b, ...commonInputs })
    expect(r.outputs.result).toBe(c.json.result)
    expect({ leader: r.outputs.leader, image: r.outputs.image }).toEqual(c.json.outputs)
    // with --json, stdout is the JSON alone and progress goes to stderr; the DB password is never printed
    expect(c.stderr).toMatch(/database URL from container env CL_DATABASE_URL/)
    expect(c.stderr).not.toContain('bed-test-password')
  })

  test('handoff through the CLI, back through the action: the same results', async () => {
    const c = await runCli(['handoff', '--container', a, '--standby', b, ...common])
    expect(c.code).toBe(0)
    expect(c.json.result).toBe('ok')
    expect(c.json.outputs.leader).toBe(b)
    const r = await runAction({ operation: 'handoff', container: b, standby: a, ...commonInputs })
    expect(r.exitCode).toBe(0)
    expect(r.outputs.result).toBe('ok')
    expect(r.outputs.leader).toBe(a)
  })

  test('upgrade through the CLI; the action then finds it unchanged, and so does the CLI', async () => {
    const c = await runCli(['upgrade', '--container', a, '--standby', b, '--image', simImage('2.20.0'), ...common])
    expect(c.code).toBe(0)
    expect(c.json.result).toBe('upgraded')
    expect(c.json.outputs.image).toMatch(/chainlink:2\.20\.0@sha256:[0-9a-f]{64}$/)
    expect(c.json.outputs['previous-image']).toBe(simImage('2.19.0'))
    expect((await containerState(a))?.image).toBe(simImage('2.20.0'))
    expect((await containerState(b))?.image).toBe(simImage('2.20.0'))
    const r = await runAction({
      operation: 'upgrade',
      container: a,
      standby: b,
      image: simImage('2.20.0'),
      ...commonInputs
    })
    expect(r.outputs.result).toBe('unchanged')
    expect(r.outputs.image).toBe(c.json.outputs.image)
    const again = await runCli(['upgrade', '--container', a, '--standby', b, '--image', simImage('2.20.0'), ...common])
    expect(again.json.result).toBe('unchanged')
    expect(again.code).toBe(0)
  })

  test('a bad flag value: exit 1 naming the input, as the action', async () => {
    const c = await runCli(['upgrade', '--container', a, '--image', simImage('2.20.0'), '--window', 'Mon 25:00-26:00'])
    expect(c.code).toBe(1)
    expect(c.json.message).toMatch(/^Input 'window' /)
    const r = await runAction({
      operation: 'upgrade',
      container: a,
      image: simImage('2.20.0'),
      window: 'Mon 25:00-26:00'
    })
    expect(r.exitCode).toBe(1)
    expect(r.stdout).toContain(`::error::${c.json.message}`)
  })
})
