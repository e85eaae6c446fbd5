import { describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { INPUT_NAMES, main, Masker, parseArgs, UsageError } from '../../src/cli.js'

const yml = parseYaml(readFileSync(new URL('../../action.yml', import.meta.url), 'utf8')) as {
  inputs: Record<string, { default?: string }>
}

async function runCli(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const out: string[] = []
  const err: string[] = []
  const code = await main(argv, env, { out: (t) => out.push(t), err: (t) => err.push(t), tty: false })
  return { code, out: out.join('\n'), err: err.join('\n') }
}

describe('cli arguments', () => {
  it('has a flag for every input of action.yml, and no other', () => {
    expect([...INPUT_NAMES].sort()).toEqual(Object.keys(yml.inputs).sort())
  })

  it('reads the operation word, --name value, --name=value and bare boolean flags', () => {
    const a = parseArgs([
      'upgrade',
      '--container',
      'cl',
      '--image=chainlink:2.20.0',
      '--dry-run',
      '--rollback',
      'false',
      '--json'
    ])
    expect(a.values).toEqual({
      operation: 'upgrade',
      container: 'cl',
      image: 'chainlink:2.20.0',
      'dry-run': 'true',
      rollback: 'false'
    })
    expect(a.json).toBe(true)
  })

  it('takes inputs (secrets) from CHAINLINK_ROLLOUT_* variables, flags win', () => {
    const a = parseArgs(['status', '--container', 'b'], {
      CHAINLINK_ROLLOUT_DATABASE_URL: 'postgres://u:pw@h/db',
      CHAINLINK_ROLLOUT_CONTAINER: 'a'
    })
    expect(a.values).toMatchObject({ operation: 'status', container: 'b', 'database-url': 'postgres://u:pw@h/db' })
  })

  it.each([
    [['upgrade', '--imag', 'x'], /unknown option --imag/],
    [['upgrade', '--image'], /--image needs a value/],
    [['upgrade', 'status'], /unexpected argument 'status'/]
  ])('refuses %p', (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(UsageError)
    expect(() => parseArgs(argv)).toThrow(message)
  })
})

describe('cli main', () => {
  it('an invalid input: exit 1, the error names the input, nothing is run', async () => {
    const r = await runCli([
      'upgrade',
      '--container',
      'cl',
      '--image',
      'chainlink:2.20.0',
      '--window',
      'Mon-Fri 08:00-18:00 Mars/Base'
    ])
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/FAILED: failed: Input 'window' unknown time zone 'Mars\/Base'/)
  })

  it('--json prints the result and outputs as one JSON object on stdout', async () => {
    const r = await runCli(['backup', '--backup-keep', 'zero', '--json'])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.out)).toEqual({
      result: 'failed',
      ok: false,
      message: "Input 'backup-keep' must be a whole number of at least 1; got 'zero'",
      outputs: {}
    })
  })

  it('a usage error prints the usage; --help exits 0', async () => {
    expect((await runCli(['--nope'])).code).toBe(1)
    const h = await runCli(['--help'])
    expect(h.code).toBe(0)
    expect(h.out).toMatch(/^usage: chainlink-rollout <operation>/)
  })

  it('never prints a secret it was given', async () => {
    const r = await runCli(['status', '--database-url', 'postgres://u:s3cret-pw@127.0.0.1:1/x', '--state-dir', 'rel'])
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/Input 'state-dir' must be an absolute path/)
    const m = new Masker()
    m.add('s3cret-pw')
    expect(m.apply('a s3cret-pw b')).toBe('a *** b')
    expect(r.err + r.out).not.toContain('s3cret-pw')
  })
})
