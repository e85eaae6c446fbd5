import { describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { parse as parseYaml } from 'yaml'
import { INPUT_NAMES, main, parseArgs, UsageError } from '../../src/cli.js'
import { INPUTS, VERSION } from '../../src/action-meta.js'
import { BOOLEAN_INPUTS, EXIT, exitCodeOf, OPERATION_NAMES } from '../../src/cli-help.js'
import { InputError, OPERATIONS, readInputs } from '../../src/inputs/read.js'

const yml = parseYaml(readFileSync(new URL('../../action.yml', import.meta.url), 'utf8')) as {
  inputs: Record<string, { default?: string; description?: string }>
}
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

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

  it("bundles action.yml's descriptions and defaults and package.json's version (run node scripts/action-meta.mjs)", () => {
    expect(VERSION).toBe(pkg.version)
    expect(INPUTS.map((i) => [i.name, i.description, i.default])).toEqual(
      Object.entries(yml.inputs).map(([k, v]) => [
        k,
        String(v.description ?? '')
          .replace(/\s+/g, ' ')
          .trim(),
        v.default ?? ''
      ])
    )
  })

  it('takes a bare flag as true for exactly the inputs read as true or false (derived from action.yml)', () => {
    // an input is a boolean when the reader refuses 'maybe' for it with "must be true or false"
    const readAsBoolean = INPUT_NAMES.filter((name) => {
      try {
        readInputs(
          (n) => (n === name ? 'maybe' : n === 'image' ? 'smartcontract/chainlink:2.19.0' : ''),
          () => undefined,
          {
            GITHUB_WORKSPACE: tmpdir()
          }
        )
      } catch (e) {
        return e instanceof InputError && e.input === name && /must be true or false/.test(e.message)
      }
      return false
    })
    expect(readAsBoolean).toContain('port-holder')
    expect([...BOOLEAN_INPUTS].sort()).toEqual([...readAsBoolean].sort())
  })

  it('knows every operation the inputs accept', () => {
    expect([...OPERATION_NAMES].sort()).toEqual([...OPERATIONS].sort())
  })

  it.each([
    [{ result: 'upgraded', ok: true }, EXIT.done],
    [{ result: 'unchanged', ok: true }, EXIT.done],
    [{ result: 'deferred', ok: true }, EXIT.done],
    [{ result: 'planned', ok: true }, EXIT.done],
    [{ result: 'ok', ok: true }, EXIT.done],
    [{ result: 'failed', ok: false }, EXIT.failed],
    [{ result: 'rolled-back', ok: false }, EXIT.rolledBack]
  ])('exit code of %p is %p', (r, code) => {
    expect(exitCodeOf(r)).toBe(code)
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
    [['upgrade', '--image', '--json'], /--image needs a value/],
    [['upgrade', 'status'], /unexpected argument 'status'/],
    [['upgrade', '-x'], /unknown option -x/],
    [['bogus', '--help'], /unknown operation 'bogus'/],
    [['completion'], /completion takes one shell/],
    [['completion', 'fish'], /no completion for 'fish'/]
  ])('refuses %p', (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(UsageError)
    expect(() => parseArgs(argv)).toThrow(message)
  })
})

describe('cli main', () => {
  it('an invalid input: exit 2, the error names the input, nothing is run', async () => {
    const r = await runCli([
      'upgrade',
      '--container',
      'cl',
      '--image',
      'chainlink:2.20.0',
      '--window',
      'Mon-Fri 08:00-18:00 Mars/Base'
    ])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/^failed: Input 'window' unknown time zone 'Mars\/Base'/m)
  })

  it('--json prints the result and outputs as one JSON object on stdout', async () => {
    const r = await runCli(['backup', '--backup-keep', 'zero', '--json'])
    expect(r.code).toBe(2)
    expect(JSON.parse(r.out)).toEqual({
      result: 'failed',
      ok: false,
      message: "Input 'backup-keep' must be a whole number of at least 1; got 'zero'",
      outputs: {},
      exitCode: 2
    })
  })

  it('a usage error exits 2; --help exits 0', async () => {
    expect((await runCli(['--nope'])).code).toBe(2)
    const h = await runCli(['--help'])
    expect(h.code).toBe(0)
    expect(h.out).toMatch(/^usage: chainlink-rollout <operation>/)
  })

  it('never prints a secret it was given', async () => {
    const r = await runCli(['status', '--database-url', 'postgres://u:s3cret-pw@127.0.0.1:1/x', '--state-dir', 'rel'])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/Input 'state-dir' must be an absolute path/)
    expect(r.err + r.out).not.toContain('s3cret-pw')
  })
})
