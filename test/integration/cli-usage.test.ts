// The command line as a person and a script meet it, from the BUILT bundle (npm run bundle):
// --version, the usage, each operation's help with every flag's description and default from
// action.yml, the exit codes (0 done, 1 failed, 2 usage or input error, 3 rolled back: the
// rollback itself is in cli.test.ts), JSON for usage errors under --json, the bin entry of
// package.json, and the bash completion run by bash. Nothing here reaches Docker or Postgres.
import { describe, expect, test } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { loadBed } from '../support/bed.js'

const root = resolve(import.meta.dirname, '../..')
const cliJs = join(root, 'dist/cli.js')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string
  bin: Record<string, string>
}
const yml = parseYaml(readFileSync(join(root, 'action.yml'), 'utf8')) as {
  inputs: Record<string, { description: string; default?: string }>
}
const node24 = loadBed().node24
const env = { PATH: `${dirname(node24)}:/usr/bin:/bin`, HOME: process.env.HOME ?? '/root' }

function cli(args: string[], extraEnv: Record<string, string> = {}) {
  const r = spawnSync(node24, [cliJs, ...args], { env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: 60000 })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

/** The words of a description as the help wraps them: one space between words. */
const words = (s: string) => s.replace(/\s+/g, ' ').trim()
const unwrapped = (help: string) => help.replace(/\n\s+/g, ' ')

describe('chainlink-rollout from dist/cli.js', () => {
  test('--version prints package.json version, exit 0', () => {
    const r = cli(['--version'])
    expect(r).toMatchObject({ code: 0, out: `chainlink-rollout ${pkg.version}\n` })
    expect(JSON.parse(cli(['--version', '--json']).out)).toEqual({ version: pkg.version })
  })

  test('--help: operations, every flag, the environment and the exit codes, exit 0', () => {
    const r = cli(['--help'])
    expect(r.code).toBe(0)
    expect(r.out).toMatch(/^usage: chainlink-rollout <operation>/)
    for (const op of ['upgrade', 'handoff', 'restart', 'status', 'backup', 'restore', 'repair'])
      expect(r.out).toMatch(new RegExp(`^  ${op} +\\S`, 'm'))
    for (const name of Object.keys(yml.inputs).filter((n) => n !== 'operation')) expect(r.out).toContain(`--${name}`)
    expect(r.out).toMatch(/^ {2}0 {2}done/m)
    expect(r.out).toMatch(/^ {2}1 {2}failed/m)
    expect(r.out).toMatch(/^ {2}2 {2}usage or input error/m)
    expect(r.out).toMatch(/^ {2}3 {2}rolled back: .*old image serves/m)
    expect(r.out).toContain('CHAINLINK_ROLLOUT_DATABASE_URL')
    expect(cli(['-h']).out).toBe(r.out)
    expect(cli(['help']).out).toBe(r.out)
  })

  test.each(['upgrade', 'backup', 'restore'])(
    '%s --help: each of its flags with the description and default of action.yml',
    (op) => {
      const r = cli([op, '--help'])
      expect(r.code).toBe(0)
      expect(r.out).toMatch(new RegExp(`^chainlink-rollout ${op}: `))
      const help = unwrapped(r.out)
      const flags = [...r.out.matchAll(/^ {2}--([a-z-]+) [<[]/gm)].map((m) => m[1])
      expect(flags).toEqual(expect.arrayContaining(['container', 'state-dir', 'webhook-url']))
      for (const f of flags) {
        const input = yml.inputs[f]
        expect(input).toBeDefined()
        const dflt = input.default ? `  (default: ${input.default})` : ''
        expect(help).toContain(`--${f} `)
        expect(help).toContain(`${dflt} ${words(input.description)}`)
      }
      expect(cli(['help', op]).out).toBe(r.out)
    }
  )

  test('upgrade --help names the upgrade flags; status --help does not', () => {
    expect(cli(['upgrade', '--help']).out).toMatch(/^ {2}--image <value>$/m)
    expect(cli(['upgrade', '--help']).out).toMatch(/^ {2}--rollback \[true\|false\] {2}\(default: true\)$/m)
    expect(cli(['upgrade', '--help']).out).toMatch(
      /^ {2}--lock-mode <auto\|lease\|advisorylock\|dual> {2}\(default: auto\)$/m
    )
    expect(cli(['status', '--help']).out).not.toMatch(/^ {2}--image /m)
  })

  test('no arguments: the usage on stderr, exit 2, nothing run', () => {
    const r = cli([])
    expect(r.code).toBe(2)
    expect(r.out).toBe('')
    expect(r.err).toMatch(/^usage: chainlink-rollout <operation>/)
  })

  test.each([
    [['--bogus'], /unknown option --bogus/],
    [['upgrade', '--image'], /option --image needs a value/],
    [['upgrade', 'status'], /unexpected argument 'status'/],
    [['frobnicate', '--help'], /unknown operation 'frobnicate'/],
    [['completion', 'zsh'], /no completion for 'zsh'/]
  ])('usage error %p: exit 2, one line on stderr; JSON on stdout under --json', (args, message) => {
    const r = cli(args)
    expect(r.code).toBe(2)
    expect(r.out).toBe('')
    expect(r.err).toMatch(message)
    const j = cli([...args, '--json'])
    expect(j.code).toBe(2)
    expect(JSON.parse(j.out)).toEqual({
      result: 'failed',
      ok: false,
      error: 'usage',
      message: expect.stringMatching(message),
      outputs: {},
      exitCode: 2
    })
  })

  test('an invalid input value: exit 2 naming the input (JSON too); a secret in it is never printed', () => {
    const r = cli(['upgrade', '--image', 'x:1', '--window', 'Mon 25:00-26:00'])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/^failed: Input 'window' /m)
    const j = cli(['status', '--webhook-url', 'ftp://u:wh-tok3n-x@example.com/', '--json'])
    expect(j.code).toBe(2)
    expect(JSON.parse(j.out)).toMatchObject({
      result: 'failed',
      message: expect.stringMatching(/^Input 'webhook-url' /)
    })
    expect(j.out + j.err).not.toContain('wh-tok3n-x')
    // an operation word that is not one
    expect(cli(['upgrad', '--json']).code).toBe(2)
  })

  test("package.json's bin: chainlink-rollout runs the bundle through a symlink, as npm installs it", () => {
    expect(pkg.bin).toEqual({ 'chainlink-rollout': 'dist/cli.js' })
    const target = join(root, pkg.bin['chainlink-rollout'])
    expect(statSync(target).mode & 0o111).not.toBe(0)
    expect(readFileSync(target, 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/)
    const bin = mkdtempSync(join(tmpdir(), 'clr-bin-'))
    symlinkSync(target, join(bin, 'chainlink-rollout'))
    const r = spawnSync('chainlink-rollout', ['--version'], {
      env: { ...env, PATH: `${bin}:${env.PATH}` },
      encoding: 'utf8'
    })
    expect(r.status).toBe(0)
    expect(r.stdout).toBe(`chainlink-rollout ${pkg.version}\n`)
  })

  test('completion bash: bash completes operations, the operation’s flags and their values', () => {
    const r = cli(['completion', 'bash'])
    expect(r.code).toBe(0)
    const dir = mkdtempSync(join(tmpdir(), 'clr-completion-'))
    writeFileSync(join(dir, 'c.sh'), r.out)
    const complete = (...words: string[]) => {
      const script = `source ${join(dir, 'c.sh')}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; COMPREPLY=()
_chainlink_rollout; printf '%s\\n' "\${COMPREPLY[@]}"; complete -p chainlink-rollout`
      const b = spawnSync('bash', ['--norc', '-c', script], { encoding: 'utf8' })
      expect(b.stderr).toBe('')
      const lines = b.stdout.trim().split('\n')
      expect(lines.pop()).toBe('complete -F _chainlink_rollout chainlink-rollout')
      return lines.filter((l) => l)
    }
    expect(complete('chainlink-rollout', 're')).toEqual(['restart', 'restore', 'repair', 'resume'])
    expect(complete('chainlink-rollout', 'upgrade', '--image')).toEqual(['--image', '--image-file'])
    expect(complete('chainlink-rollout', 'status', '--ima')).toEqual([])
    expect(complete('chainlink-rollout', 'upgrade', '--db-rollback', '')).toEqual(['migrate-down', 'restore'])
    expect(complete('chainlink-rollout', 'upgrade', '--dry-run', '')).toEqual(['true', 'false'])
    expect(complete('chainlink-rollout', 'restore', '--stop')).toEqual(['--stop-node'])
  })
})
