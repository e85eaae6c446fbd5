// What the action needs to know about a node, read from its container the way the node itself
// reads it (docs/node-facts.md §1, §8): v1 env vars, or v2 TOML from `-config`/`-secrets` files
// and CL_CONFIG; the DB URL from CL_DATABASE_URL/DATABASE_URL or the secrets TOML.
import { parse as parseToml } from 'smol-toml'
import { parseGoDuration } from '../duration.js'
import { configTomlSecrets, credentialFileSecrets, envSecrets, secretsTomlSecrets } from '../trust/secrets.js'
import type { LockMode, NodeConfig } from './config-types.js'

const DEFAULT_ADVISORY_LOCK_ID = 1027321974924625846n

/** Splits the node's argv into its -config and -secrets file paths. */
export function configFilesFromArgs(args: string[]): { config: string[]; secrets: string[] } {
  const config: string[] = []
  const secrets: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    const m = /^--?(config|c|secrets|s)(?:=(.*))?$/.exec(a)
    if (!m) continue
    const value = m[2] ?? args[++i]
    if (value === undefined) continue
    ;(m[1] === 'config' || m[1] === 'c' ? config : secrets).push(value)
  }
  return { config, secrets }
}

/**
 * The files `node start` reads credentials from: `-a/--api` (API email and password) and
 * `-p/--password`, `--vrfpassword` (keystore and VRF passwords), as in the docs'
 * `node start -a /chainlink/.api -p /chainlink/.password` (docs/node-facts.md §8).
 */
export function credentialFilesFromArgs(args: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    const m = /^--?(a|api|p|password|vp|vrfpassword)(?:=(.*))?$/.exec(args[i])
    if (!m) continue
    const value = m[2] ?? args[++i]
    if (value !== undefined && value !== '') out.push(value)
  }
  return out
}

/**
 * Every secret a node container holds, read the way the node reads its configuration: env
 * (CL_* secrets, CL_SECRETS, CL_CONFIG, URLs), the -secrets TOML files (every string), the
 * -config files (URL credentials, secret-looking keys) and the API/password files. Files that
 * cannot be read are skipped: what cannot be read cannot be printed either.
 */
export async function nodeSecrets(
  env: Map<string, string>,
  args: string[],
  readFile: (path: string) => Promise<string | undefined>
): Promise<string[]> {
  const parse = (t: string) => parseToml(t)
  const out = envSecrets(env, parse)
  const { config, secrets } = configFilesFromArgs(args)
  for (const f of secrets) {
    const text = await readFile(f)
    if (text !== undefined) out.push(...secretsTomlSecrets(text, parse))
  }
  for (const f of config) {
    const text = await readFile(f)
    if (text !== undefined) out.push(...configTomlSecrets(text, parse))
  }
  for (const f of credentialFilesFromArgs(args)) {
    const text = await readFile(f)
    if (text !== undefined) out.push(...credentialFileSecrets(text))
  }
  return out
}

type Toml = Record<string, unknown>
function get(obj: Toml | undefined, ...path: string[]): unknown {
  let cur: unknown = obj
  for (const p of path) {
    if (!cur || typeof cur !== 'object') return undefined
    cur = (cur as Toml)[p]
  }
  return cur
}

function mergeToml(into: Toml, from: Toml): Toml {
  for (const [k, v] of Object.entries(from)) {
    if (v && typeof v === 'object' && !Array.isArray(v) && into[k] && typeof into[k] === 'object')
      mergeToml(into[k] as Toml, v as Toml)
    else into[k] = v
  }
  return into
}

function durationSetting(value: unknown, name: string, dflt: number): number {
  if (value === undefined || value === '') return dflt
  const ms = parseGoDuration(String(value))
  if (ms === undefined) throw new Error(`the node's ${name} '${String(value)}' is not a duration`)
  return ms
}

/**
 * The node version an image says it is: its OCI version label, else the CHAINLINK_VERSION its
 * Dockerfile sets, else a version-shaped tag; undefined when none tells.
 */
export function nodeVersionOf(config: {
  Labels?: Record<string, string> | null
  Env?: string[] | null
  Image?: string
}): string | undefined {
  const label = config.Labels?.['org.opencontainers.image.version']
  if (label && /^v?\d+\.\d+/.test(label)) return label.replace(/^v/, '')
  const env = (config.Env ?? []).find((e) => e.startsWith('CHAINLINK_VERSION='))?.slice('CHAINLINK_VERSION='.length)
  if (env && /^v?\d+\.\d+/.test(env)) return env.replace(/^v/, '')
  const tag = /:v?(\d+\.\d+[^:@/]*)(@|$)/.exec(config.Image ?? '')?.[1]
  return tag
}

/**
 * Derives the node's settings. `readFile` reads a path inside the container (undefined when it
 * does not exist); the files named by -config/-secrets are parsed as TOML. `version` is the
 * node's (nodeVersionOf): a 2.x node reads TOML only, so its v1 variables (DATABASE_URL,
 * DATABASE_LOCKING_MODE, LEASE_LOCK_*, ...) are ignored and the TOML defaults apply without a
 * config (docs/node-facts.md §11.9). Without a version, TOML config or none tells which it reads.
 */
export async function readNodeConfig(
  env: Map<string, string>,
  args: string[],
  readFile: (path: string) => Promise<string | undefined>,
  version?: string
): Promise<NodeConfig> {
  const major = version ? parseInt(version, 10) : NaN
  // what a 2.x node still reads from its env: the DB URL override and inline TOML
  if (major >= 2) env = new Map([...env].filter(([k]) => k === 'CL_DATABASE_URL' || k === 'CL_CONFIG'))
  const { config: configFiles, secrets: secretsFiles } = configFilesFromArgs(args)
  const toml: Toml = {}
  for (const f of configFiles) {
    const text = await readFile(f)
    if (text === undefined)
      throw new Error(`the node's config file ${f} (from its -config flag) cannot be read from the container`)
    try {
      mergeToml(toml, parseToml(text) as Toml)
    } catch (e) {
      throw new Error(`the node's config file ${f} is not valid TOML: ${(e as Error).message.split('\n')[0]}`)
    }
  }
  const inline = env.get('CL_CONFIG')
  if (inline) {
    try {
      mergeToml(toml, parseToml(inline) as Toml)
    } catch (e) {
      throw new Error(`the node's CL_CONFIG env is not valid TOML: ${(e as Error).message.split('\n')[0]}`)
    }
  }
  const isToml = major >= 2 || configFiles.length > 0 || !!inline

  let databaseUrl: string | undefined
  let databaseUrlSource: string | undefined
  for (const key of ['CL_DATABASE_URL', 'DATABASE_URL']) {
    if (env.get(key)) {
      databaseUrl = env.get(key)
      databaseUrlSource = `container env ${key}`
      break
    }
  }
  if (!databaseUrl) {
    for (const f of secretsFiles) {
      const text = await readFile(f)
      if (text === undefined) continue
      let url: unknown
      try {
        url = get(parseToml(text) as Toml, 'Database', 'URL')
      } catch {
        // Never echo the parser's message: it quotes the secrets file.
        throw new Error(`the node's secrets file ${f} is not valid TOML`)
      }
      if (typeof url === 'string' && url) {
        databaseUrl = url
        databaseUrlSource = `secrets file ${f}`
      }
    }
  }

  let lockMode: LockMode | undefined
  let lockModeSource = 'node default for its version'
  let leaseDurationMs = 10_000
  let leaseRefreshMs = 1_000
  if (isToml) {
    const enabled = get(toml, 'Database', 'Lock', 'Enabled')
    lockMode = enabled === false ? 'none' : 'lease'
    lockModeSource =
      enabled === undefined ? 'v2 TOML default ([Database.Lock] Enabled = true)' : 'v2 TOML [Database.Lock] Enabled'
    // An early TOML beta still knew Mode = 'dual'/'advisorylock' (docs/node-facts.md §1).
    const mode = get(toml, 'Database', 'Lock', 'Mode')
    if (typeof mode === 'string' && ['dual', 'advisorylock', 'lease', 'none'].includes(mode)) {
      lockMode = mode as LockMode
      lockModeSource = 'TOML [Database.Lock] Mode'
    }
    leaseDurationMs = durationSetting(
      get(toml, 'Database', 'Lock', 'LeaseDuration'),
      'Database.Lock.LeaseDuration',
      leaseDurationMs
    )
    leaseRefreshMs = durationSetting(
      get(toml, 'Database', 'Lock', 'LeaseRefreshInterval'),
      'Database.Lock.LeaseRefreshInterval',
      leaseRefreshMs
    )
  } else {
    const m = env.get('DATABASE_LOCKING_MODE')
    if (m) {
      if (!['lease', 'advisorylock', 'dual', 'none'].includes(m))
        throw new Error(
          `the node's DATABASE_LOCKING_MODE '${m}' is not one the node accepts (lease, advisorylock, dual, none)`
        )
      lockMode = m as LockMode
      lockModeSource = 'container env DATABASE_LOCKING_MODE'
    }
    leaseDurationMs = durationSetting(env.get('LEASE_LOCK_DURATION'), 'LEASE_LOCK_DURATION', leaseDurationMs)
    leaseRefreshMs = durationSetting(
      env.get('LEASE_LOCK_REFRESH_INTERVAL'),
      'LEASE_LOCK_REFRESH_INTERVAL',
      leaseRefreshMs
    )
  }
  const advisoryId = env.get('ADVISORY_LOCK_ID') ?? (get(toml, 'Database', 'Lock', 'AdvisoryID') as string | undefined)
  const port = get(toml, 'WebServer', 'HTTPPort') ?? env.get('CHAINLINK_PORT')
  return {
    databaseUrl,
    databaseUrlSource,
    lockMode,
    lockModeSource,
    leaseDurationMs,
    leaseRefreshMs,
    advisoryLockId: advisoryId !== undefined ? BigInt(String(advisoryId)) : DEFAULT_ADVISORY_LOCK_ID,
    advisoryCheckMs: durationSetting(
      env.get('ADVISORY_LOCK_CHECK_INTERVAL') ?? get(toml, 'Database', 'Lock', 'AdvisoryCheckInterval'),
      'ADVISORY_LOCK_CHECK_INTERVAL',
      1000
    ),
    httpPort: port !== undefined ? Number(port) : 6688,
    shutdownGraceMs: durationSetting(
      get(toml, 'ShutdownGracePeriod') ?? env.get('SHUTDOWN_GRACE_PERIOD'),
      'ShutdownGracePeriod',
      5000
    ),
    toml: isToml,
    configFiles,
    secretsFiles,
    credentialFiles: credentialFilesFromArgs(args)
  }
}

/** The node's default lock mode for its version when none is configured (docs/node-facts.md §1). */
export function defaultLockMode(version: string | undefined, toml: boolean): LockMode {
  if (toml || !version) return 'lease'
  const [maj, min] = version.split('.').map((x) => parseInt(x, 10))
  if (maj >= 2) return 'lease'
  if (maj === 1 && min < 3) return 'advisorylock'
  return 'dual'
}
