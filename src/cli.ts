// The command line: the action's engine for other CI systems, a cron or systemd timer and the
// manual maintenance of the node's docs. `chainlink-rollout <operation> --container ... --image ...`
// takes every input of action.yml as a flag (same defaults and validation; `--help` and
// `<operation> --help` print them from action.yml, src/cli-help.ts). Exit codes: 0 the node ended
// where it was asked to be, 1 it did not, 2 a usage or input error (nothing was run), 3 rolled
// back (the old image serves). Progress goes to stderr; `--json` prints the result and outputs as
// one JSON object on stdout for scripts, usage errors included. Secrets can come from the
// environment (CHAINLINK_ROLLOUT_DATABASE_URL, ...) so that they never appear in `ps`.
import './cjs-shim.js'
import type { OperationResult, Operations } from './context.js'
import type { Log } from './log.js'
import { AbortedError, OperationError } from './errors.js'
import { runContext } from './edge/run.js'
import { InputError, readInputs } from './inputs/read.js'
import type { Inputs } from './inputs/types.js'
import { backup, restore } from './operations/backup.js'
import { handoffOrRestart } from './operations/handoff.js'
import { repair } from './operations/repair.js'
import { drain, drainRefusal, handOff } from './operations/drain.js'
import { upgradeAcrossHosts } from './operations/upgrade-hosts.js'
import { resume } from './operations/resume.js'
import { status } from './operations/status.js'
import { upgrade } from './operations/upgrade.js'
import { Report } from './report.js'
import { INPUTS, VERSION } from './action-meta.js'
import { bashCompletion, BOOLEAN_INPUTS, EXIT, exitCodeOf, OPERATION_NAMES, operationHelp, usage } from './cli-help.js'
import { knownSecrets } from './trust/secrets.js'
import { notifyRunEnd, runEndOf } from './notify/run-end.js'
import { readJournalAt } from './journal/journal.js'

/** Each operation of input `operation`, as in the action (src/edge/main.ts). */
const operations: Operations = {
  // a node on several hosts: this host's part of a rolling upgrade, wired here (the drain it uses
  // sits deep: docs/hosts.md)
  upgrade: (ctx, inputs) =>
    upgrade(ctx, inputs, (c, i, ref, d) => upgradeAcrossHosts(c, i, ref, { ...d, handOff, drainRefusal })),
  handoff: handoffOrRestart,
  restart: handoffOrRestart,
  status,
  backup,
  restore,
  repair,
  drain,
  resume
}

/** Every input of action.yml (generated into action-meta.ts from it), each a flag. */
export const INPUT_NAMES = INPUTS.map((i) => i.name)

export class UsageError extends Error {}

interface CliArgs {
  values: Record<string, string>
  json: boolean
  help: boolean
  version: boolean
  /** `completion <shell>` */
  completion?: string
}

/** Parses argv (after `node cli.js`): one operation word, `--name value`, `--name=value`, `--flag`. */
export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = {}): CliArgs {
  const values: Record<string, string> = {}
  const args: CliArgs = { values, json: false, help: false, version: false }
  const known = new Set<string>(INPUT_NAMES)
  for (const n of INPUT_NAMES) {
    const v = env[`CHAINLINK_ROLLOUT_${n.toUpperCase().replace(/-/g, '_')}`]
    if (v !== undefined && v !== '') values[n] = v
  }
  if (argv[0] === 'completion') {
    const rest = argv.slice(1).filter((a) => a !== '--json')
    if (rest.length !== 1) throw new UsageError('completion takes one shell: chainlink-rollout completion bash')
    if (rest[0] !== 'bash') throw new UsageError(`no completion for '${rest[0]}' (there is one for bash)`)
    return { ...args, completion: rest[0] }
  }
  let word = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--json') args.json = true
    else if (a === '--help' || a === '-h') args.help = true
    else if (a === '--version') args.version = true
    else if (a.startsWith('--')) {
      const eq = a.indexOf('=')
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2)
      if (!known.has(name)) throw new UsageError(`unknown option --${name}`)
      if (eq > 0) values[name] = a.slice(eq + 1)
      else if (
        BOOLEAN_INPUTS.has(name) &&
        (i + 1 >= argv.length || !/^(true|false|yes|no|on|off|1|0)$/i.test(argv[i + 1]))
      )
        values[name] = 'true'
      else {
        // `--image --json`: the next flag is not the value
        if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) throw new UsageError(`option --${name} needs a value`)
        values[name] = argv[++i]
      }
    } else if (a.startsWith('-') && a.length > 1) throw new UsageError(`unknown option ${a}`)
    else if (!word && a === 'help') {
      // `chainlink-rollout help [operation]`
      args.help = true
      word = true
    } else if (!word) {
      values.operation = a
      word = true
    } else if (args.help && !values.operation) values.operation = a
    else throw new UsageError(`unexpected argument '${a}' (the operation is '${values.operation}')`)
  }
  if (args.help && values.operation && !OPERATION_NAMES.includes(values.operation))
    throw new UsageError(`unknown operation '${values.operation}' (one of ${OPERATION_NAMES.join(', ')})`)
  return args
}

interface CliIo {
  out: (text: string) => void
  err: (text: string) => void
  tty: boolean
}

export async function main(argv: string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  // the secrets this process learns (inputs, the node's config) are redacted from all it prints
  // and writes (the journal too), as the action does (src/trust/secrets.ts)
  const redact = (t: string) => knownSecrets.redact(t)
  const err = (t: string) => io.err(redact(t))
  // --json holds for usage errors too: look for it before the arguments are parsed
  const json = argv.includes('--json')
  const usageError = (message: string): number => {
    if (json)
      io.out(
        JSON.stringify({ result: 'failed', ok: false, error: 'usage', message, outputs: {}, exitCode: EXIT.usage })
      )
    else err(`chainlink-rollout: ${message}\nRun 'chainlink-rollout --help' for the operations and flags.`)
    return EXIT.usage
  }
  if (argv.length === 0 && !env.CHAINLINK_ROLLOUT_OPERATION) {
    err(usage())
    return EXIT.usage
  }
  let args: CliArgs
  try {
    args = parseArgs(argv, env)
  } catch (e) {
    return usageError((e as Error).message)
  }
  if (args.completion) {
    io.out(bashCompletion())
    return EXIT.done
  }
  if (args.version) {
    io.out(args.json ? JSON.stringify({ version: VERSION }) : `chainlink-rollout ${VERSION}`)
    return EXIT.done
  }
  if (args.help) {
    const op = argv.some((a) => OPERATION_NAMES.includes(a)) ? args.values.operation : undefined
    io.out(op ? operationHelp(op) : usage())
    return EXIT.done
  }
  /** An input error (before or during the run) exits 2, as a usage error: nothing was done. */
  let badInput = false
  const finish = (r: OperationResult, report?: Report): number => {
    const exitCode = badInput ? EXIT.usage : exitCodeOf(r)
    if (args.json)
      io.out(redact(JSON.stringify({ result: r.result, ok: r.ok, message: r.message, outputs: r.outputs, exitCode })))
    else {
      if (report) {
        report.fact('Result', r.message ? `${r.result}: ${r.message}` : r.result)
        err(report.markdown(r.result))
      }
      err(`${r.result}${r.message ? `: ${r.message}` : ''}`)
    }
    return exitCode
  }
  let inputs: Inputs
  try {
    inputs = readInputs(
      (n) => args.values[n] ?? '',
      (s) => knownSecrets.add(s)
    )
  } catch (e) {
    badInput = true
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
    mask: (s) => knownSecrets.add(s)
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
  let journalFile: string | undefined
  const ctx = runContext(inputs.dockerHost, {
    log,
    report,
    signal: abort.signal,
    onJournal: (id, path) => {
      runId = id
      journalFile = path
    }
  })
  let result: OperationResult
  try {
    result = await operations[inputs.operation](ctx, inputs)
  } catch (e) {
    const msg =
      e instanceof AbortedError
        ? 'cancelled'
        : e instanceof OperationError || e instanceof InputError
          ? e.message
          : (e as Error).message
    if (e instanceof InputError) badInput = true
    if (!(e instanceof OperationError) && !(e instanceof InputError) && !(e instanceof AbortedError))
      log.debug((e as Error).stack ?? String(e))
    result = { result: 'failed', ok: false, message: msg, outputs: {} }
  } finally {
    process.removeListener('SIGINT', onInt)
    process.removeListener('SIGTERM', onTerm)
  }
  // What the action's post step does: a run this process opened and left in flight is repaired.
  const j = journalFile ? readJournalAt(journalFile) : undefined
  if (runId && j && j.phase !== 'done' && j.runId === runId) {
    log.warning(`The ${j.operation} of '${inputs.container}' (run ${j.runId}) did not finish; repairing`)
    try {
      // the repair is not cancelled: its Docker client's waits are not either
      const r = await repair(runContext(inputs.dockerHost, { log, report }), inputs)
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
  await notifyRunEnd(runEndOf(inputs, 'cli', result, report), log, redact)
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
