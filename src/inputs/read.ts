// Typed, validated inputs. Every error names the input and what was wrong; nothing on the host
// is touched before all inputs are valid. Secrets (and values derived from them, like the
// password inside a DB URL) are masked before anything can log them.
import { unknownPlaceholders } from '../node/health-url.js'
import { parseDuration } from '../duration.js'
import { parseImageRef, type ImageRef } from '../image/ref.js'
import type { DbRollback, Inputs, LockModeInput, Operation } from './types.js'
import { maskDatabaseUrl } from '../trust/secrets.js'
import { ActionError } from '../errors.js'
import { existsSync } from 'node:fs'
import { pathInside } from '../trust/paths.js'
import { checkRepositoryPattern } from '../trust/repository.js'
import { dockerTls, isLoopbackDockerHost } from '../docker/host.js'
import { parseWindows, type Window } from '../safeguards/window.js'

export const OPERATIONS = [
  'upgrade',
  'handoff',
  'restart',
  'status',
  'backup',
  'restore',
  'repair',
  'drain',
  'resume'
] as const satisfies readonly Operation[]
const LOCK_MODES = ['auto', 'lease', 'advisorylock', 'dual'] as const satisfies readonly LockModeInput[]
const DB_ROLLBACKS = ['migrate-down', 'restore'] as const satisfies readonly DbRollback[]

/** A bad input: the message starts with the input's name. */
export class InputError extends ActionError {
  declare readonly input: string
  constructor(input: string, message: string) {
    super(`Input '${input}' ${message}`, input)
  }
}

type InputGetter = (name: string) => string

const CONTAINER_NAME = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/

function oneOf<T extends string>(get: InputGetter, name: string, allowed: readonly T[], dflt: T): T {
  const v = get(name).trim()
  if (!v) return dflt
  if (!(allowed as readonly string[]).includes(v))
    throw new InputError(name, `must be one of ${allowed.join(', ')}; got '${v}'`)
  return v as T
}

function bool(get: InputGetter, name: string, dflt: boolean): boolean {
  const v = get(name).trim()
  if (!v) return dflt
  if (/^(true|yes|on|1)$/i.test(v)) return true
  if (/^(false|no|off|0)$/i.test(v)) return false
  throw new InputError(name, `must be true or false; got '${v}'`)
}

/** A boolean that may be left unset (undefined: keep what the host has). */
function optionalBool(get: InputGetter, name: string): boolean | undefined {
  return get(name).trim() ? bool(get, name, false) : undefined
}

function duration(get: InputGetter, name: string, dflt?: string, min = 0): number | undefined {
  const v = get(name).trim() || dflt
  if (!v) return undefined
  const ms = parseDuration(v)
  if (ms === undefined)
    throw new InputError(name, `must be a duration like 1500ms, 30s, 5m or a number of seconds; got '${v}'`)
  if (ms < min) throw new InputError(name, `must be at least ${min} ms; got '${v}'`)
  return ms
}

function containerName(get: InputGetter, name: string, dflt?: string): string | undefined {
  const v = get(name).trim() || dflt
  if (!v) return undefined
  if (!CONTAINER_NAME.test(v)) throw new InputError(name, `is not a valid container name: '${v}'`)
  return v.replace(/^\//, '')
}

function absPath(get: InputGetter, name: string, dflt?: string, absolute = true): string | undefined {
  const v = get(name).trim() || dflt
  if (!v) return undefined
  if (v.includes('\0')) throw new InputError(name, 'contains a NUL byte')
  // Relative paths would land in each workflow's workspace: the journal, the host lock and the
  // backups must be shared by every workflow of the node.
  if (absolute && !v.startsWith('/')) throw new InputError(name, `must be an absolute path on the host; got '${v}'`)
  return v
}

function windows(get: InputGetter, name: string): Window[] {
  try {
    return parseWindows(get(name))
  } catch (e) {
    throw new InputError(name, (e as Error).message)
  }
}

/**
 * Reads and validates every input. `mask` is called for each secret before this returns, so the
 * caller can register it with the runner (core.setSecret) before anything is logged.
 */
export function readInputs(
  get: InputGetter,
  mask: (secret: string) => void,
  env: Record<string, string | undefined> = process.env
): Inputs {
  // Secrets are masked first of all: any later error, even a malformed URL, must not echo them.
  const databaseUrl = get('database-url').trim() || undefined
  if (databaseUrl) maskDatabaseUrl(databaseUrl, mask)
  const identity = get('backup-identity').trim() || undefined
  if (identity) mask(identity)
  // a webhook URL often carries its token (in the path, the query or the user info)
  const webhookUrl = get('webhook-url').trim() || undefined
  if (webhookUrl) mask(webhookUrl)

  const operation = oneOf(get, 'operation', OPERATIONS, 'upgrade')
  if (databaseUrl) {
    if (!/^postgres(ql)?:\/\//.test(databaseUrl))
      throw new InputError('database-url', 'must be a postgres:// or postgresql:// URL')
    try {
      new URL(databaseUrl)
    } catch {
      throw new InputError('database-url', 'is not a valid URL')
    }
  }

  const container = containerName(get, 'container', 'chainlink')!
  const standby = containerName(get, 'standby')
  if (standby && standby === container)
    throw new InputError('standby', `must name a different container than 'container' (${container})`)

  let image: ImageRef | undefined
  const imageText = get('image').trim()
  if (imageText) {
    try {
      image = parseImageRef(imageText)
    } catch (e) {
      throw new InputError('image', `is not a valid image reference: ${(e as Error).message}`)
    }
  }
  const imageFile = confined(get, 'image-file', env.GITHUB_WORKSPACE || process.cwd(), 'the workspace')
  if (image && imageFile) throw new InputError('image-file', "cannot be combined with 'image': give one of them")
  if (operation === 'upgrade' && !image && !imageFile)
    throw new InputError('image', "is required for operation 'upgrade' (or give 'image-file')")

  let healthUrl = get('health-url').trim() || undefined
  if (healthUrl) {
    // a form for every container of the node: {address}, {port} and {name} are filled in per container
    const unknown = unknownPlaceholders(healthUrl)
    if (unknown.length)
      throw new InputError(
        'health-url',
        `has an unknown placeholder {${unknown[0]}} in '${healthUrl}'; the placeholders are {address}, {port} and {name}`
      )
    let u: URL
    try {
      u = new URL(
        healthUrl
          .replace(/\{address\}/g, '127.0.0.1')
          .replace(/\{port\}/g, '6688')
          .replace(/\{name\}/g, 'node')
      )
    } catch {
      throw new InputError('health-url', `is not a valid URL: '${healthUrl}'`)
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      throw new InputError('health-url', `must be http or https; got '${u.protocol}'`)
    healthUrl = healthUrl.replace(/\/+$/, '')
  }

  const backupKeepText = get('backup-keep').trim() || '7'
  if (!/^\d+$/.test(backupKeepText) || Number(backupKeepText) < 1)
    throw new InputError('backup-keep', `must be a whole number of at least 1; got '${backupKeepText}'`)

  const recipient = get('backup-recipient').trim() || undefined
  if (recipient && !/^age1[02-9ac-hj-np-z]{58}$/.test(recipient))
    throw new InputError('backup-recipient', 'must be an age public key (age1...)')

  if (identity) {
    if (!/^AGE-SECRET-KEY-1[0-9A-Z]{58}$/.test(identity))
      throw new InputError('backup-identity', 'must be an age secret key (AGE-SECRET-KEY-1...)')
  }

  const dockerHost = get('docker-host').trim() || undefined
  if (dockerHost && !/^(unix|tcp|http|https):\/\/./.test(dockerHost))
    throw new InputError(
      'docker-host',
      `must look like unix:///var/run/docker.sock or tcp://host:2376; got '${dockerHost}'`
    )

  const rollback = bool(get, 'rollback', true)
  const dbRollback = oneOf(get, 'db-rollback', DB_ROLLBACKS, 'migrate-down')
  const backup = bool(get, 'backup', true)
  // Settings that could only fail once the leader has stopped are refused now, before anything
  // changes: a rollback that restores needs the pre-upgrade backup, and a way to read it.
  if (operation === 'upgrade' && rollback && dbRollback === 'restore') {
    if (!backup)
      throw new InputError(
        'db-rollback',
        "is 'restore', which needs the pre-upgrade backup, but input 'backup' is false: set 'backup: true', or 'db-rollback: migrate-down'"
      )
    if (recipient && !identity)
      throw new InputError(
        'backup-identity',
        "is required with 'db-rollback: restore' and 'backup-recipient': the pre-upgrade backup is encrypted and a rollback could not read it; give the identity, or use 'db-rollback: migrate-down'"
      )
  }
  const security = securityInputs(get, env, dockerHost)
  const backupDir = absPath(get, 'backup-dir', '/var/lib/chainlink-rollout/backups')!
  let remoteHealthUrl = get('remote-health-url').trim() || undefined
  if (remoteHealthUrl) {
    let u: URL
    try {
      u = new URL(remoteHealthUrl)
    } catch {
      throw new InputError('remote-health-url', `is not a valid URL: '${remoteHealthUrl}'`)
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      throw new InputError('remote-health-url', `must be http or https; got '${u.protocol}'`)
    remoteHealthUrl = remoteHealthUrl.replace(/\/+$/, '')
  }

  // Operator safeguards (quarantine, upgrade window, migration rehearsal)
  const rehearseMigration = bool(get, 'rehearse-migration', false)
  if (rehearseMigration && !bool(get, 'backup', true))
    throw new InputError(
      'rehearse-migration',
      "needs 'backup: true': the rehearsal migrates a copy of the pre-upgrade backup"
    )

  return {
    operation,
    container,
    standby,
    image,
    imageFile,
    databaseUrl,
    lockMode: oneOf(get, 'lock-mode', LOCK_MODES, 'auto'),
    healthUrl,
    remoteHealthUrl,
    stopTimeoutMs: duration(get, 'stop-timeout', undefined, 1000),
    standbyTimeoutMs: duration(get, 'standby-timeout', undefined, 1000),
    readyTimeoutMs: duration(get, 'ready-timeout', '10m', 1000)!,
    stableForMs: duration(get, 'stable-for', '10s')!,
    rollback,
    dbRollback,
    preferPrimary: bool(get, 'prefer-primary', false),
    finish: oneOf(get, 'finish', ['swap', 'second-handoff'] as const, 'swap'),
    portHolder: optionalBool(get, 'port-holder'),
    backup,
    backupDir,
    backupKeep: Number(backupKeepText),
    backupRecipient: recipient,
    backupFile: confined(get, 'backup-file', backupDir, "'backup-dir'"),
    backupVerify: oneOf(get, 'backup-verify', ['archive', 'restore'] as const, 'archive'),
    backupIdentity: identity,
    stopNode: bool(get, 'stop-node', false),
    restoreOtherNode: bool(get, 'restore-other-node', false),
    dbCopyUnchecked: bool(get, 'db-copy-unchecked', false),
    dryRun: bool(get, 'dry-run', false),
    stateDir: absPath(get, 'state-dir', '/var/lib/chainlink-rollout')!,
    dockerHost,
    lockTimeoutMs: duration(get, 'lock-timeout', '15m')!,
    ...security,
    // Operator safeguards (quarantine, upgrade window, migration rehearsal)
    retryQuarantined: bool(get, 'retry-quarantined', false),
    allowDowngrade: bool(get, 'allow-downgrade', false),
    window: windows(get, 'window'),
    rehearseMigration,
    allowOtherUpdaters: bool(get, 'allow-other-updaters', false),
    webhookUrl: webhookUrl && webhook(webhookUrl)
  }
}

/** A webhook URL: http or https with a host. The value is never quoted back (it is a secret). */
function webhook(v: string): string {
  let u: URL
  try {
    u = new URL(v)
  } catch {
    throw new InputError('webhook-url', 'is not a valid URL (expected http:// or https://...)')
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new InputError('webhook-url', `must be http or https; got '${u.protocol}'`)
  if (!u.hostname) throw new InputError('webhook-url', 'has no host')
  return v
}

/** A path input that must stay inside `base` (relative paths are read against it). */
function confined(get: InputGetter, name: string, base: string, what: string): string | undefined {
  const v = get(name).trim()
  if (!v) return undefined
  if (v.includes('\0')) throw new InputError(name, 'contains a NUL byte')
  const r = pathInside(base, v)
  if ('problem' in r) throw new InputError(name, `${r.problem.replace(base, `${what} (${base})`)}`)
  return r.path
}

/** The inputs of the trust boundary: allowed repositories, secrets in plain backups, plain TCP. */
function securityInputs(
  get: InputGetter,
  env: Record<string, string | undefined>,
  dockerHost: string | undefined
): Pick<Inputs, 'allowedRepositories' | 'backupSecretsPlain' | 'dockerInsecureTcp'> {
  const allowedRepositories = get('allowed-repositories')
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter((s) => s)
  for (const p of allowedRepositories) {
    const problem = checkRepositoryPattern(p)
    if (problem) throw new InputError('allowed-repositories', problem)
  }
  const dockerInsecureTcp = bool(get, 'docker-insecure-tcp', false)
  const host = dockerHost ?? env.DOCKER_HOST
  if (host && /^(tcp|http):\/\//.test(host)) {
    const tls = dockerTls(host, env)
    if (tls) {
      for (const f of [tls.ca, tls.cert, tls.key])
        if (!existsSync(f))
          throw new InputError(
            'docker-host',
            `${host} with DOCKER_TLS_VERIFY needs ${f} (DOCKER_CERT_PATH holds ca.pem, cert.pem and key.pem)`
          )
    } else if (!isLoopbackDockerHost(host) && !dockerInsecureTcp) {
      throw new InputError(
        'docker-host',
        `${host}${dockerHost ? '' : ' (from DOCKER_HOST)'} is plain TCP to a remote Docker Engine: whoever is on the path controls the node's host. Use TLS (DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH with ca.pem, cert.pem, key.pem), or set 'docker-insecure-tcp: true' to accept it`
      )
    }
  }
  return { allowedRepositories, backupSecretsPlain: bool(get, 'backup-secrets-plain', false), dockerInsecureTcp }
}
