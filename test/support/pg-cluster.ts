// A Postgres cluster of the test's own (initdb + pg_ctl of the bed's Postgres binaries, as the
// postgres user), beside the bed's shared one: its own data dir, port and socket dir, listening on
// 127.0.0.1 and on the bed's docker0 gateway (where node containers on the default bridge reach
// the host). It can be restarted as an operator or a crash does (`pg_ctl restart -m fast` or
// `-m immediate`, the latter with crash recovery), and is stopped by the pid of its postmaster.
import { execFileSync, spawnSync } from 'node:child_process'
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { freePort } from '../../src/docker/client.js'
import { loadBed, sleep, type TestDb } from './bed.js'

export interface PgCluster {
  port: number
  /** the database the node uses, as a TestDb of support/bed.ts */
  db: TestDb
  /** pg_ctl restart with this shutdown mode; resolves once it accepts connections again */
  restart(mode: 'fast' | 'immediate'): Promise<void>
  /** pg_ctl stop -m fast, `ms` with no server at all, then start: an outage longer than a restart */
  outage(ms: number): Promise<void>
  /** the postmaster's pid */
  pid(): number | undefined
  /** stops the postmaster by pid (SIGQUIT: immediate shutdown) and removes the data dir */
  stop(): Promise<void>
}

function binDir(): string {
  const v = readdirSync('/usr/lib/postgresql')
    .filter((d) => /^\d+$/.test(d))
    .sort((a, b) => Number(b) - Number(a))[0]
  return `/usr/lib/postgresql/${v}/bin`
}

function ids(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim())
  return { uid: id('-u'), gid: id('-g') }
}

const USER = 'clr'
const PASSWORD = 'clr-pg-cluster-password'
const DB = 'node'

export interface PgClusterOptions {
  /** pg_hba.conf `host` lines, written once the node's database exists (the socket stays open
   * to the test); default: every address */
  hba?: string[]
}

export async function startPgCluster(opts: PgClusterOptions = {}): Promise<PgCluster> {
  const bin = binDir()
  const { uid, gid } = ids()
  const dir = mkdtempSync(join(tmpdir(), 'clr-pg-'))
  chownSync(dir, uid, gid)
  const data = join(dir, 'data')
  const pwfile = join(dir, 'pw')
  writeFileSync(pwfile, PASSWORD)
  chownSync(pwfile, uid, gid)
  const as = (cmd: string, args: string[]) => {
    const r = spawnSync(join(bin, cmd), args, { uid, gid, encoding: 'utf8', cwd: dir })
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`)
  }
  as('initdb', ['-D', data, '-U', USER, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--no-sync'])
  const port = await freePort('127.0.0.1')
  const bed = loadBed()
  writeFileSync(
    join(data, 'postgresql.auto.conf'),
    [
      `port = ${port}`,
      `listen_addresses = '127.0.0.1,${bed.pg.bridgeHost}'`,
      `unix_socket_directories = '${dir}'`,
      'fsync = off',
      'max_connections = 100'
    ].join('\n') + '\n'
  )
  writeFileSync(join(data, 'pg_hba.conf'), 'local all all scram-sha-256\nhost all all 0.0.0.0/0 scram-sha-256\n')
  const pgctl = (...args: string[]) => as('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', ...args])
  pgctl('start')
  const url = (host: string, db = DB) =>
    `postgres://${USER}:${encodeURIComponent(PASSWORD)}@${host}:${port}/${db}?sslmode=disable`
  const admin = new pg.Client({ connectionString: url('127.0.0.1', 'postgres') })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${DB}`)
  await admin.end()
  if (opts.hba) {
    writeFileSync(join(data, 'pg_hba.conf'), ['local all all scram-sha-256', ...opts.hba].join('\n') + '\n')
    pgctl('reload')
  }
  const pid = () => {
    try {
      return Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
    } catch {
      return undefined
    }
  }
  const db: TestDb = {
    name: DB,
    url: url('127.0.0.1'),
    bridgeUrl: url(bed.pg.bridgeHost),
    async client() {
      const c = new pg.Client({ connectionString: url('127.0.0.1') })
      await c.connect()
      return c
    },
    async drop() {
      // the database goes with the cluster (stop)
    }
  }
  return {
    port,
    db,
    async restart(mode) {
      pgctl('restart', '-m', mode)
    },
    async outage(ms) {
      pgctl('stop', '-m', 'fast')
      await sleep(ms)
      pgctl('start')
    },
    pid,
    async stop() {
      const p = pid()
      if (p) {
        try {
          process.kill(p, 'SIGQUIT')
        } catch {
          // gone
        }
        for (let i = 0; i < 100; i++) {
          try {
            process.kill(p, 0)
          } catch {
            break
          }
          await sleep(100)
        }
      }
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
