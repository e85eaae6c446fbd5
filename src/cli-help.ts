// What the command line says about itself: the usage, each operation's help with every flag's
// description and default (action.yml's, through the generated action-meta.ts), the exit codes
// and the bash completion script. Plain text from plain values; src/cli.ts prints it.
import { INPUTS } from './action-meta.js'

/** The exit codes of the command line (the action itself fails with 1, as the runner expects). */
export const EXIT = { done: 0, failed: 1, usage: 2, rolledBack: 3 } as const

/** Pure: the exit code of a run that ended with `result` (ok: the node ended where it was asked to be). */
export function exitCodeOf(r: { result: string; ok: boolean }): number {
  if (r.ok) return EXIT.done
  return r.result === 'rolled-back' ? EXIT.rolledBack : EXIT.failed
}

const EXIT_CODES = `exit codes:
  0  done: the node ended where it was asked to be (upgraded, unchanged, ok, planned, deferred)
  1  failed: it did not; the message says where the node is
  2  usage or input error: an unknown flag, a missing or invalid value; nothing was run
  3  rolled back: the new image failed after the handoff and the old image serves again`

/** Each operation: one line, and the flags it reads besides the common ones. */
const OPERATION_HELP: Record<string, { summary: string; flags: string[] }> = {
  upgrade: {
    summary: "move the node to --image (or the reference in --image-file); 'unchanged' if already there",
    flags: [
      'image',
      'image-file',
      'allowed-repositories',
      'window',
      'retry-quarantined',
      'rehearse-migration',
      'backup',
      'backup-dir',
      'backup-keep',
      'backup-recipient',
      'backup-identity',
      'backup-verify',
      'backup-secrets-plain',
      'db-copy-unchecked',
      'stop-timeout',
      'standby-timeout',
      'ready-timeout',
      'stable-for',
      'rollback',
      'db-rollback',
      'finish',
      'port-holder',
      'prefer-primary'
    ]
  },
  handoff: {
    summary: 'move leadership to the other container of a pair (--standby), or a single node to a fresh container',
    flags: [
      'stop-timeout',
      'standby-timeout',
      'ready-timeout',
      'stable-for',
      'rollback',
      'finish',
      'port-holder',
      'prefer-primary'
    ]
  },
  restart: {
    summary: 'rolling restart on the same image through handoffs (config change, host maintenance)',
    flags: [
      'stop-timeout',
      'standby-timeout',
      'ready-timeout',
      'stable-for',
      'rollback',
      'finish',
      'port-holder',
      'prefer-primary'
    ]
  },
  status: {
    summary: 'report leader, images and digests, lock state, health, DB version, quarantined digests; changes nothing',
    flags: ['backup-dir']
  },
  backup: {
    summary: 'a verified pg_dump of the node DB with its config and secrets files, and retention',
    flags: [
      'backup-dir',
      'backup-keep',
      'backup-recipient',
      'backup-identity',
      'backup-verify',
      'backup-secrets-plain',
      'db-copy-unchecked'
    ]
  },
  restore: {
    summary:
      'restore --backup-file (default the newest verified backup); refused while a node is up unless --stop-node',
    flags: [
      'backup-dir',
      'backup-file',
      'backup-identity',
      'stop-node',
      'restore-other-node',
      'db-copy-unchecked',
      'ready-timeout',
      'stable-for'
    ]
  },
  repair: {
    summary: 'bring an interrupted operation (cancelled job, crash) to one consistent state',
    flags: ['backup-dir', 'backup-identity', 'ready-timeout', 'stable-for']
  },
  drain: {
    summary: "hand the lock from this host's instance to one waiting on another host; keep this one stopped",
    flags: ['remote-health-url', 'stop-timeout', 'ready-timeout', 'stable-for']
  },
  resume: {
    summary: "start this host's drained instance again as a proven waiting standby",
    flags: ['standby-timeout', 'ready-timeout']
  }
}

/** Flags every operation reads: which node, how to reach it, where its state is. */
const COMMON = [
  'container',
  'standby',
  'database-url',
  'lock-mode',
  'health-url',
  'state-dir',
  'lock-timeout',
  'docker-host',
  'docker-insecure-tcp',
  'dry-run',
  'webhook-url'
]

/** The values a flag takes, where there is a fixed set (for the help and the completion). */
const CHOICES: Record<string, string[]> = {
  operation: Object.keys(OPERATION_HELP),
  'lock-mode': ['auto', 'lease', 'advisorylock', 'dual'],
  'db-rollback': ['migrate-down', 'restore'],
  finish: ['swap', 'second-handoff'],
  'backup-verify': ['archive', 'restore']
}

/** Boolean inputs (action.yml's, as scripts/action-meta.mjs finds them): a bare `--flag` means true. */
export const BOOLEAN_INPUTS = new Set(INPUTS.filter((i) => i.boolean).map((i) => i.name))

export const OPERATION_NAMES = Object.keys(OPERATION_HELP)

function wrap(text: string, indent: number, width = 100): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/\s+/).filter((w) => w)) {
    if (line && indent + line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else line = line ? `${line} ${word}` : word
  }
  if (line) lines.push(line)
  return lines.map((l) => `${' '.repeat(indent)}${l}`)
}

function flagHelp(name: string): string[] {
  const input = INPUTS.find((i) => i.name === name)
  if (!input) return []
  const value = BOOLEAN_INPUTS.has(name) ? '[true|false]' : CHOICES[name] ? `<${CHOICES[name].join('|')}>` : '<value>'
  const dflt = input.default === '' ? '' : `  (default: ${input.default})`
  return [`  --${name} ${value}${dflt}`, ...wrap(input.description, 6)]
}

const OPTIONS = `options:
  --json             print the result, outputs and exit code as one JSON object on stdout (usage errors too)
  -h, --help         this help; with an operation, that operation's flags
  --version          print the version`

const ENVIRONMENT = `environment:
  CHAINLINK_ROLLOUT_<FLAG>   any flag, e.g. CHAINLINK_ROLLOUT_DATABASE_URL: keeps secrets out of argv (ps)
  CHAINLINK_ROLLOUT_DEBUG    any value: debug lines on stderr
  DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH   the Docker Engine, as the docker CLI reads them`

/** The general help: operations, options, where flags come from, exit codes. */
export function usage(): string {
  const width = Math.max(...OPERATION_NAMES.map((o) => o.length))
  return `usage: chainlink-rollout <operation> [--flag value ...] [--json]
       chainlink-rollout <operation> --help
       chainlink-rollout completion bash

operations:
${OPERATION_NAMES.map((o) => `  ${o.padEnd(width)}  ${OPERATION_HELP[o].summary}`).join('\n')}

Every input of the action is a flag of the same name, with the same default and validation:
${wrap(
  INPUTS.filter((i) => i.name !== 'operation')
    .map((i) => `--${i.name}`)
    .join(' '),
  2
).join('\n')}

examples:
  chainlink-rollout upgrade --container chainlink --image smartcontract/chainlink:2.20.0
  chainlink-rollout handoff --container chainlink-a --standby chainlink-b
  chainlink-rollout status --container chainlink --json

${OPTIONS}

${ENVIRONMENT}

${EXIT_CODES}`
}

/** One operation's help: what it does, then each flag it reads with its description and default. */
export function operationHelp(operation: string): string {
  const op = OPERATION_HELP[operation]
  const listed = new Set([...COMMON, ...Object.values(OPERATION_HELP).flatMap((o) => o.flags), 'operation'])
  // an input no table names yet (a new one) is shown with every operation rather than hidden
  const others = INPUTS.map((i) => i.name).filter((n) => !listed.has(n))
  const section = (title: string, names: string[]) =>
    names.length ? [``, `${title}:`, ...names.flatMap(flagHelp)] : []
  return [
    `chainlink-rollout ${operation}: ${op.summary}`,
    '',
    `usage: chainlink-rollout ${operation} [--flag value ...] [--json]`,
    ...section(`${operation} flags`, op.flags),
    ...section('the node (every operation)', COMMON),
    ...section('more flags', others),
    '',
    OPTIONS,
    '',
    ENVIRONMENT,
    '',
    EXIT_CODES
  ].join('\n')
}

/** `chainlink-rollout completion bash`: operations first, then the operation's flags and their values. */
export function bashCompletion(): string {
  const q = (words: string[]) => words.join(' ')
  const allFlags = [...INPUTS.map((i) => `--${i.name}`), '--json', '--help', '--version']
  const perOp = OPERATION_NAMES.map(
    (o) => `    ${o}) flags="${q([...OPERATION_HELP[o].flags, ...COMMON].map((f) => `--${f}`))} --json --help" ;;`
  )
  const choices = Object.entries(CHOICES).map(
    ([f, v]) => `    --${f}) COMPREPLY=($(compgen -W "${q(v)}" -- "$cur")); return ;;`
  )
  return `# bash completion for chainlink-rollout: eval "$(chainlink-rollout completion bash)" in ~/.bashrc,
# or save it as /etc/bash_completion.d/chainlink-rollout
_chainlink_rollout() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" op="" flags
  local i
  for ((i = 1; i < COMP_CWORD; i++)); do
    if [[ " ${q(OPERATION_NAMES)} " == *" \${COMP_WORDS[i]} "* ]]; then op="\${COMP_WORDS[i]}"; break; fi
  done
  case "$prev" in
${choices.join('\n')}
    --state-dir|--backup-dir|--backup-file|--image-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if [[ " ${q([...BOOLEAN_INPUTS].map((b) => `--${b}`))} " == *" $prev "* && "$cur" != -* ]]; then
    COMPREPLY=($(compgen -W "true false" -- "$cur")); return
  fi
  if [[ -z "$op" && "$cur" != -* ]]; then
    COMPREPLY=($(compgen -W "${q(OPERATION_NAMES)} completion" -- "$cur")); return
  fi
  case "$op" in
${perOp.join('\n')}
    *) flags="${q(allFlags)}" ;;
  esac
  COMPREPLY=($(compgen -W "$flags" -- "$cur"))
}
complete -F _chainlink_rollout chainlink-rollout
`
}
