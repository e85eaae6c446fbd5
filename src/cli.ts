// The command line: the action's engine for other CI systems, a cron or systemd timer and the
// manual maintenance of the node's docs. `chainlink-rollout <operation> --container ... --image ...`
// takes every input of action.yml as a flag (same defaults, validation and exit codes: 0 when the
// node ended where it was asked to be, 1 otherwise). Progress goes to stderr; `--json` prints the
// result and outputs as one JSON object on stdout for scripts. Secrets can come from the
// environment (CHAINLINK_ROLLOUT_DATABASE_URL, ...) so that they never appear in `ps`.
import './cjs-shim.js'
import type { Context, OperationResult, Operations } from './context.js'
import type { Log } from './log.js'
import { AbortedError, OperationError } from './errors.js'
import { DockerClient } from './docker/client.js'
import { InputError, OPERATIONS, readInputs } from './inputs/read.js'
import type { Inputs } from './inputs/types.js'
import { backup, restore } from './operations/backup.js'
import { handoffOrRestart } from './operations/handoff.js'
import { repair } from './operations/repair.js'
import { status } from './operations/status.js'
import { upgrade } from './operations/upgrade.js'
import { Report } from './report.js'
import { nodeKey, readJournal } from './journal/journal.js'

/** Each operation of input `operation`, as in the action (src/edge/main.ts). */
const operations: Operations = {
  upgrade,
  handoff: handoffOrRestart,
  restart: handoffOrRestart,
  status,
  backup,
  restore,
  repair
}

/** Every input of action.yml (a unit test keeps this list equal to action.yml's). */
export const INPUT_NAMES = [
  'operation',
  'container',
  'standby',
  'image',
  'image-file',
  'database-url',
  'lock-mode',
  'health-url',
  'stop-timeout',
  'standby-timeout',
  'ready-timeout',
  'stable-for',
  'rollback',
  'db-rollback',
  'finish',
  'port-holder',
  'prefer-primary',
  'backup',
  'backup-dir',
  'backup-keep',
  'backup-recipient',
  'backup-file',
  'backup-verify',
  'backup-identity',
  'stop-node',
  'restore-other-node',
  'db-copy-unchecked',
  'dry-run',
  'state-dir',
  'lock-timeout',
  'docker-host',
  'docker-insecure-tcp',
  'allowed-repositories',
  'backup-secrets-plain',
  'retry-quarantined',
  'window',
  'rehearse-migration'
] as const

/** Boolean inputs: a bare `--dry-run` means true. */
const BOOLEAN = new Set([
  'rollback',
  'prefer-primary',
  'port-holder',
  'backup',
  'stop-node',
  'restore-other-node',
  'db-copy-unchecked',
  'dry-run',
  'retry-quarantined',
  'rehearse-migration',
  'docker-insecure-tcp',
  'backup-secrets-plain'
])

const USAGE = `usage: chainlink-rollout <operation> [--input value ...] [--json]

operations: ${OPERATIONS.join(', ')}
every input of the action is a flag of the same name, e.g.
  chainlink-rollout upgrade --container chainlink --image smartcontract/chainlink:2.20.0
  chainlink-rollout handoff --container chainlink-a --standby chainlink-b
  chainlink-rollout status --container chainlink --json
secrets may come from the environment instead of argv: CHAINLINK_ROLLOUT_DATABASE_URL,
CHAINLINK_ROLLOUT_BACKUP_IDENTITY (any input works as CHAINLINK_ROLLOUT_<NAME>).
inputs: ${INPUT_NAMES.map((n) => `--${n}`).join(' ')}
exit code 0: the node ended where it was asked to be; 1: it did not, or an input was invalid.`

export class UsageError extends Error {}

interface CliArgs {
  values: Record<string, string>
  json: boolean
  help: boolean
}

/** Parses argv (after `node cli.js`): one operation word, `--name value`, `--name=value`, `--flag`. */
export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = {}): CliArgs {
  const values: Record<string, string> = {}
  let json = false
  let help = false
  const known = new Set<string>(INPUT_NAMES)
  for (const n of INPUT_NAMES) {
    const v = env[`CHAINLINK_ROLLOUT_${n.toUpperCase().replace(/-/g, '_')}`]
    if (v !== undefined && v !== '') values[n] = v
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--json') json = true
    else if (a === '--help' || a === '-h') help = true
    else if (a.startsWith('--')) {
      const eq = a.indexOf('=')
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2)
      if (!known.has(name)) throw new UsageError(`unknown option --${name}`)
      if (eq > 0) values[name] = a.slice(eq + 1)
      else if (BOOLEAN.has(name) && (i + 1 >= argv.length || !/^(true|false|yes|no|on|off|1|0)$/i.test(argv[i + 1])))
        values[name] = 'true'
      else {
        if (i + 1 >= argv.length) throw new UsageError(`option --${name} needs a value`)
        values[name] = argv[++i]
      }
    } else if (!values.operation || values.operation === env.CHAINLINK_ROLLOUT_OPERATION) values.operation = a
    else throw new UsageError(`unexpected argument '${a}' (the operation is '${values.operation}')`)
  }
  return { values, json, help }
}

/** Replaces every registered secret in a line before it is printed. */
export class Masker {
  private secrets: string[] = []
  add(s: string): void {
    if (s && s.length >= 3 && !this.secrets.includes(s)) {
      this.secrets.push(s)
      this.secrets.sort((a, b) => b.length - a.length)
    }
  }
  apply(text: string): string {
    let out = text
    for (const s of this.secrets) out = out.split(s).join('***')
    return out
  }
}

interface CliIo {
  out: (text: string) => void
  err: (text: string) => void
  tty: boolean
}

export async function main(argv: string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  const masker = new Masker()
  const err = (t: string) => io.err(masker.apply(t))
  let args: CliArgs
  try {
    args = parseArgs(argv, env)
  } catch (e) {
    err(`chainlink-rollout: ${(e as Error).message}\n${USAGE}`)
    return 1
  }
  if (args.help) {
    io.out(USAGE)
    return 0
  }
  const finish = (r: OperationResult, report?: Report): number => {
    if (args.json)
      io.out(masker.apply(JSON.stringify({ result: r.result, ok: r.ok, message: r.message, outputs: r.outputs })))
    else {
      if (report) {
        report.fact('Result', r.message ? `${r.result}: ${r.message}` : r.result)
        err(report.markdown(r.result))
      }
      err(`${r.ok ? 'result' : 'FAILED'}: ${r.result}${r.message ? `: ${r.message}` : ''}`)
    }
    return r.ok ? 0 : 1
  }
  let inputs: Inputs
  try {
    inputs = readInputs(
      (n) => args.values[n] ?? '',
      (s) => masker.add(s)
    )
  } catch (e) {
    const message = e instanceof InputError ? e.message : `Invalid input: ${(e as Error).message}`
    return finish({ result: 'failed', ok: false, message, outputs: {} })
  }
  const stamp = () => (io.tty ? `${new Date().toISOString().slice(11, 19)} ` : '')
  const log: Log = {
    info: (m) => err(`${stamp()}${m}`),
    warning: (m) => err(`${stamp()}warning: ${m}`),
    debug: (m) => {
      if (env.CHAINLINK_ROLLOUT_DEBUG) err(`${stamp()}debug: ${m}`)
    },
    mask: (s) => masker.add(s)
  }
  const abort = new AbortController()
  const onSignal = (sig: string) => {
    log.warning(`${sig} received: aborting; the interrupted operation is repaired before exiting`)
    abort.abort()
  }
  const onInt = () => onSignal('SIGINT')
  const onTerm = () => onSignal('SIGTERM')
  process.once('SIGINT', onInt)
  process.once('SIGTERM', onTerm)
  const report = new Report((line) => log.info(line))
  let runId: string | undefined
  const ctx: Context = {
    inputs,
    // a Docker daemon restarting is waited for (bounded), and the wait ends with a cancellation
    docker: new DockerClient(inputs.dockerHost, { signal: abort.signal, onWait: (m) => log.warning(m) }),
    log,
    report,
    signal: abort.signal,
    onJournal: (id) => (runId = id)
  }
  let result: OperationResult
  try {
    result = await operations[inputs.operation](ctx)
  } catch (e) {
    const msg =
      e instanceof AbortedError
        ? 'cancelled'
        : e instanceof OperationError || e instanceof InputError
          ? e.message
          : (e as Error).message
    if (!(e instanceof OperationError) && !(e instanceof InputError) && !(e instanceof AbortedError))
      log.debug((e as Error).stack ?? String(e))
    result = { result: 'failed', ok: false, message: msg, outputs: {} }
  } finally {
    process.removeListener('SIGINT', onInt)
    process.removeListener('SIGTERM', onTerm)
  }
  // What the action's post step does: a run this process opened and left in flight is repaired.
  const j = readJournal(inputs.stateDir, nodeKey(inputs))
  if (runId && j && j.phase !== 'done' && j.runId === runId) {
    log.warning(`The ${j.operation} of '${inputs.container}' (run ${j.runId}) did not finish; repairing`)
    try {
      // the repair is not cancelled: its Docker client's waits are not either
      const docker = new DockerClient(inputs.dockerHost, { onWait: (m) => log.warning(m) })
      const r = await repair({ ...ctx, docker, signal: new AbortController().signal })
      if (!r.ok) result = r
    } catch (e) {
      result = {
        result: 'failed',
        ok: false,
        message: `repair after an interrupted ${j.operation} failed: ${(e as Error).message}`,
        outputs: {}
      }
    }
  }
  return finish(result, report)
}

/** Entry point of dist/cli.js. */
async function cli(): Promise<void> {
  const code = await main(process.argv.slice(2), process.env, {
    out: (t) => process.stdout.write(`${t}\n`),
    err: (t) => process.stderr.write(`${t}\n`),
    tty: process.stderr.isTTY === true
  })
  process.exitCode = code
  // Open sockets (pg, docker keep-alive) must not hold the process open.
  setTimeout(() => process.exit(code), 100).unref()
}

// Run when this module is the program (dist/cli.js), not when a test imports it.
if (
  /(^|[\\/])(cli|chainlink-rollout)(\.[cm]?js)?$/.test(process.argv[1] ?? '') ||
  /[\\/]dist[\\/]cli[\\/]index\.js$/.test(process.argv[1] ?? '')
)
  await cli()
