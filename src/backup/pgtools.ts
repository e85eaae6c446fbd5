// Running the Postgres client tools (pg_dump, pg_restore, psql) without ever putting the DB
// password on a command line: the URL is passed with its password removed, and the password
// travels in PGPASSWORD. Every message that leaves this module goes through redact().
import { spawn, type ChildProcess } from 'node:child_process'
import type { Readable, Writable } from 'node:stream'
import pg from 'pg'
import { ActionError } from '../errors.js'

import type { Log } from '../log.js'

export interface PgDumpDocker {
  /** an image with pg_dump/pg_restore/psql of at least the server's major version, e.g. postgres:16 */
  image: string
  /** docker network to attach to (the URL's host must resolve there); 'host' for 127.0.0.1 */
  network?: string
}

export interface Conn {
  /** the URL without its password: safe for argv and logs */
  safeUrl: string
  password: string
  database: string
  /** the same server, another database (for scratch databases and the maintenance DB) */
  withDatabase(db: string): Conn
  /** full URL, for node-postgres only (never logged) */
  fullUrl: string
}

export function parseConn(databaseUrl: string): Conn {
  let u: URL
  try {
    u = new URL(databaseUrl)
  } catch {
    throw new Error('the database URL is not a valid URL (postgres://user:password@host:port/db)')
  }
  if (!/^postgres(ql)?:$/.test(u.protocol))
    throw new Error(`the database URL must start with postgres:// or postgresql://, not ${u.protocol}//`)
  const password = decodeURIComponent(u.password)
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres'
  const full = new URL(u.toString())
  const safe = new URL(u.toString())
  safe.password = ''
  return {
    safeUrl: safe.toString(),
    password,
    database,
    fullUrl: full.toString(),
    withDatabase(db: string) {
      const v = new URL(full.toString())
      v.pathname = '/' + encodeURIComponent(db)
      return parseConn(v.toString())
    }
  }
}

/** Removes the password (raw and URL-encoded) and any full URL carrying it from a message. */
export function redact(message: string, ...secrets: (string | undefined)[]): string {
  let out = message.replace(/(postgres(?:ql)?:\/\/[^:@/\s]*):[^@\s]*@/g, '$1:***@')
  for (const s of secrets) {
    if (!s || s.length < 3) continue
    for (const v of new Set([s, encodeURIComponent(s)])) out = out.split(v).join('***')
  }
  return out
}

export class BackupError extends ActionError {}

/** A node-postgres client on the URL; connection errors come back redacted. */
export async function pgClient(conn: Conn): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: conn.fullUrl, application_name: 'chainlink-rollout-backup' })
  c.on('error', () => undefined)
  try {
    await c.connect()
  } catch (e) {
    await c.end().catch(() => undefined)
    throw new BackupError(
      `cannot connect to database ${conn.database}: ${redact(String((e as Error).message ?? e), conn.password)}`
    )
  }
  return c
}

type Tool = 'pg_dump' | 'pg_restore' | 'psql'

export interface ToolRunner {
  /** 'host' or 'docker:<image>' */
  via: string
  spawn(tool: Tool, args: string[], conn: Conn | undefined, stdio: { stdin: boolean }): ChildProcess
}

export function hostRunner(): ToolRunner {
  return {
    via: 'host',
    spawn(tool, args, conn, stdio) {
      const env: NodeJS.ProcessEnv = { ...process.env }
      delete env.PGPASSWORD
      if (conn) env.PGPASSWORD = conn.password
      return spawn(tool, args, { env, stdio: [stdio.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
    }
  }
}

/**
 * pg tools in a throwaway container (docker CLI, honours DOCKER_HOST). The password is passed
 * as `-e PGPASSWORD` with no value, so docker reads it from its own environment, not argv.
 */
export function dockerRunner(d: PgDumpDocker): ToolRunner {
  return {
    via: `docker:${d.image}`,
    spawn(tool, args, conn, stdio) {
      const env: NodeJS.ProcessEnv = { ...process.env, PGPASSWORD: conn?.password ?? '' }
      const argv = ['run', '--rm', '-i', '--log-driver', 'none', '-e', 'PGPASSWORD']
      if (d.network) argv.push('--network', d.network)
      argv.push('--entrypoint', tool, d.image, ...args)
      return spawn('docker', argv, { env, stdio: [stdio.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
    }
  }
}

interface Running {
  child: ChildProcess
  stdin: Writable | null
  stdout: Readable
  /** resolves on exit 0, rejects with the tool's (redacted) stderr otherwise */
  done: Promise<string>
}

/** Starts a tool; `done` collects stderr and turns a failure into a clear, redacted error. */
export function run(
  runner: ToolRunner,
  tool: Tool,
  args: string[],
  conn: Conn | undefined,
  opts: {
    stdin?: boolean
    signal?: AbortSignal
    what: string
    /** each stderr line (e.g. --verbose progress); true = consumed, not part of an error message */
    onLine?: (line: string) => boolean
  }
): Running {
  const child = runner.spawn(tool, args, conn, { stdin: !!opts.stdin })
  let stderr = ''
  let partial = ''
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (d: string) => {
    if (!opts.onLine) {
      if (stderr.length < 64 * 1024) stderr += d
      return
    }
    const lines = (partial + d).split('\n')
    partial = lines.pop()!
    for (const l of lines) if (!opts.onLine(l)) stderr = (stderr + l + '\n').slice(-64 * 1024)
  })
  child.stderr!.on('end', () => {
    if (partial && !opts.onLine?.(partial)) stderr += partial
  })
  const onAbort = () => child.kill('SIGTERM')
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  child.stdin?.on('error', () => undefined) // EPIPE when the tool exits early: reported via exit code
  const done = new Promise<string>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => {
      reject(
        new BackupError(
          e.code === 'ENOENT'
            ? `${runner.via === 'host' ? tool : 'docker'} is not installed on this host (needed to ${opts.what})`
            : `${opts.what}: ${redact(e.message, conn?.password)}`
        )
      )
    })
    child.on('close', (code, sig) => {
      opts.signal?.removeEventListener('abort', onAbort)
      const err = redact(stderr.trim(), conn?.password)
      if (code === 0) return resolve(err)
      if (opts.signal?.aborted) return reject(new BackupError(`${opts.what}: cancelled`))
      reject(
        new BackupError(
          `${opts.what}: ${tool} ${sig ? `was killed by ${sig}` : `exited with ${code}`}${err ? `: ${lastLines(err, 6)}` : ''}`
        )
      )
    })
  })
  return { child, stdin: child.stdin, stdout: child.stdout!, done }
}

function lastLines(s: string, n: number): string {
  return s.split('\n').slice(-n).join(' | ')
}

/** Runs a tool to completion and returns its stdout. */
async function capture(
  runner: ToolRunner,
  tool: Tool,
  args: string[],
  conn: Conn | undefined,
  what: string,
  signal?: AbortSignal
): Promise<string> {
  const r = run(runner, tool, args, conn, { what, signal })
  let out = ''
  r.stdout.setEncoding('utf8')
  r.stdout.on('data', (d: string) => (out += d))
  await r.done
  return out
}

/** Major version from `pg_dump --version` style output ("pg_dump (PostgreSQL) 15.18 (Debian ...)"). */
export function parseToolVersion(s: string): { version: string; major: number } | undefined {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(s)
  if (!m) return undefined
  return { version: m[2] ? `${m[1]}.${m[2]}` : m[1], major: Number(m[1]) }
}

export async function toolVersion(
  runner: ToolRunner,
  tool: Tool
): Promise<{ version: string; major: number } | undefined> {
  try {
    return parseToolVersion(await capture(runner, tool, ['--version'], undefined, `read the ${tool} version`))
  } catch {
    return undefined
  }
}

/**
 * The runner whose pg tools can handle this server: the host's when its major version is not
 * older than the server's, else the docker image when one is given, else a clear error.
 */
export async function chooseRunner(
  serverMajor: number,
  docker: PgDumpDocker | undefined,
  log: Log
): Promise<{ runner: ToolRunner; version: string }> {
  const host = hostRunner()
  const hv = await toolVersion(host, 'pg_dump')
  if (hv && hv.major >= serverMajor) return { runner: host, version: hv.version }
  if (docker) {
    const d = dockerRunner(docker)
    const dv = await toolVersion(d, 'pg_dump')
    if (!dv)
      throw new BackupError(
        `cannot run pg_dump in image ${docker.image} (is the image present and does it contain pg_dump?)`
      )
    if (dv.major < serverMajor)
      throw new BackupError(
        `pg_dump ${dv.version} in image ${docker.image} is older than the server (major ${serverMajor}); use postgres:${serverMajor} or newer`
      )
    log.info(
      `host pg_dump ${hv ? hv.version : 'not installed'} is older than the server (major ${serverMajor}): using ${docker.image}`
    )
    return { runner: d, version: dv.version }
  }
  throw new BackupError(
    hv
      ? `pg_dump ${hv.version} on this host is older than the server (major ${serverMajor}) and cannot dump it; install postgresql-client-${serverMajor} or set a pg_dump container image`
      : `pg_dump is not installed on this host; install postgresql-client-${serverMajor} or set a pg_dump container image`
  )
}

/**
 * A write into a tool that stopped reading: pg_restore may exit (0) without reading an archive's
 * last bytes, and the feed then ends with EPIPE or a premature close. Not an error by itself:
 * the tool's own exit says whether it read what it needed.
 */
export function readerStopped(e: NodeJS.ErrnoException): boolean {
  return (
    ['EPIPE', 'ECANCELED', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED'].includes(e.code ?? '') ||
    /\bECANCELED\b|\bEPIPE\b/.test(e.message ?? '')
  )
}
