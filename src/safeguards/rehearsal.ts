// Migration rehearsal: before the live handoff, the pre-upgrade backup is restored into a scratch
// database on the node's own server and the NEW image's `node db migrate` runs against it in a
// throwaway container (the node's own `db` subcommand: it takes no lock and starts no node, so no
// second process with the node's keys ever runs; docs/node-facts.md §10 explains why only the
// new binary knows its migrations). Its duration is what the new node will spend migrating before
// it serves (docs/node-facts.md §4: the HTTP port stays closed until migrations are done). The
// scratch database is dropped whatever happens.
import { randomBytes } from 'node:crypto'
import type { Context } from '../context.js'
import { OperationError } from '../errors.js'
import { cloneSpec } from '../handoff/container-spec.js'
import { formatMs } from '../duration.js'
import { LABEL_ROLE } from '../handoff/clone.js'
import { dbInvocation } from '../node/db-command.js'
import type { NodeContainer, NodeView } from '../node/view.js'
import { ident } from '../backup/db.js'
import { feed, openArchive, restoreRunner } from '../backup/archive.js'
import { manifestPathFor, readManifest } from '../backup/manifest.js'
import { parseConn, pgClient, redact, run } from '../backup/pgtools.js'
import { copyFits } from '../backup/space.js'

/** one-off rehearsal containers are named `<node>-rehearsal-<id>`, scratch databases clr_rehearsal_<hex> */
export const SUFFIX_REHEARSAL = '-rehearsal-'
const SCRATCH_PREFIX = 'clr_rehearsal_'

/** A scratch database's name as the rehearsal makes it (repair drops only names of this form). */
export const isScratchName = (name: string): boolean => /^clr_rehearsal_[0-9a-f]{8}$/.test(name)

/** The node's DB URL as its container sees it, pointing at another database on the same server. */
export function scratchUrl(containerUrl: string, db: string): string {
  const u = new URL(containerUrl)
  u.pathname = `/${encodeURIComponent(db)}`
  return u.toString()
}

/** The env of the rehearsal container: the node's own, its DB URL pointed at the scratch DB. */
export function rehearsalEnv(env: string[], url: string): string[] {
  const keys = ['CL_DATABASE_URL', 'DATABASE_URL']
  const out = env.filter((e) => !keys.some((k) => e.startsWith(`${k}=`)))
  const had = keys.filter((k) => env.some((e) => e.startsWith(`${k}=`)))
  // a node configured through a -secrets file gets CL_DATABASE_URL, which overrides the file
  for (const k of had.length ? had : ['CL_DATABASE_URL']) out.push(`${k}=${url}`)
  return out
}

/** What a rehearsal needs besides the node: the new image and the settings it runs under. */
interface Rehearsal {
  /** the reference shown to the operator */
  newImage: string
  /** the verified image the container is created from (a tag may have moved since preflight) */
  imageId: string
  /** the age identity of an encrypted backup */
  identity?: string
  /** how long `db migrate` may take */
  timeoutMs: number
  /** input db-copy-unchecked: the copy even when the server's free space cannot be known */
  copyUnchecked?: boolean
  /** told the scratch database's name before it is created (journaled: repair drops it after a kill) */
  onScratch?: (name: string) => void
}

export async function rehearseMigration(
  ctx: Context,
  view: NodeView,
  leader: NodeContainer,
  backupFile: string,
  { newImage, imageId, identity, timeoutMs, copyUnchecked, onScratch }: Rehearsal
): Promise<number> {
  const { docker, report, log } = ctx
  const containerUrl = view.config.databaseUrl ?? view.databaseUrl
  const m = await readManifest(manifestPathFor(backupFile))
  if (m.encrypted && !identity)
    throw new OperationError(
      `Input 'rehearse-migration': the pre-upgrade backup is encrypted; the rehearsal needs 'backup-identity' to restore it`
    )
  const conn = parseConn(view.databaseUrl)
  const name = `${SCRATCH_PREFIX}${randomBytes(4).toString('hex')}`
  const admin = await pgClient(conn)
  // the scratch copy lives on the production server while the node serves: never one that may fill it
  try {
    const fits = await copyFits(admin, new URL(conn.safeUrl).hostname, conn.database)
    if (!fits.ok && !(fits.unknown && copyUnchecked))
      throw new OperationError(
        `Input 'rehearse-migration': ${fits.why}; nothing of the node was touched${fits.unknown ? ". Set 'db-copy-unchecked: true' when you know the server has room" : ''}`
      )
  } catch (e) {
    await admin.end().catch(() => undefined)
    throw e
  }
  report.step('rehearsal', `restore ${backupFile} into scratch database ${name}`)
  try {
    onScratch?.(name)
    await admin.query(`CREATE DATABASE ${ident(name)}`)
    const scratch = conn.withDatabase(name)
    const runner = await restoreRunner(m.pgDump.version, undefined)
    const r = run(
      runner,
      'pg_restore',
      ['--no-owner', '--no-acl', '--exit-on-error', '-w', '-d', scratch.safeUrl],
      scratch,
      { stdin: true, signal: ctx.signal, what: 'rehearsal restore' }
    )
    await feed(await openArchive(backupFile, m, identity), r)
    const info = leader.info
    const inv = dbInvocation(info.Config.Entrypoint, info.Config.Cmd, ['migrate'])
    const spec = cloneSpec(info, {
      name: `${leader.name}${SUFFIX_REHEARSAL}${Date.now().toString(36)}`,
      image: imageId,
      cmd: inv.cmd,
      entrypoint: inv.entrypoint,
      portBindings: {},
      extraLabels: { [LABEL_ROLE]: 'rehearsal' },
      asService: false
    })
    // No published port, no restart, no health check: a one-off `db migrate` on the node's own
    // network (the DB is reached as the node reaches it) that ends when the migrations do.
    spec.Env = rehearsalEnv(spec.Env ?? [], scratchUrl(containerUrl, name))
    spec.ExposedPorts = {}
    spec.HostConfig = { ...spec.HostConfig, PortBindings: {}, PublishAllPorts: false, RestartPolicy: { Name: 'no' } }
    spec.Healthcheck = { Test: ['NONE'] }
    report.step('rehearsal', `${newImage} ${inv.cmd.join(' ')} against ${name}`)
    const t0 = Date.now()
    // ends with the job's cancellation: runOnce removes the container, the finally drops the copy
    const res = await docker.runOnce(spec, timeoutMs, ctx.signal)
    const ms = Date.now() - t0
    const tail = redact(res.output.trim().split('\n').slice(-3).join(' | '), conn.password)
    if (res.exitCode !== 0)
      throw new OperationError(
        `migration rehearsal failed: ${newImage} 'node db migrate' on a copy of the database exited ${res.exitCode} after ${formatMs(ms)}: ${tail}`
      )
    report.fact(
      'Migration rehearsal',
      `${newImage} migrated a copy of the database in ${formatMs(ms)}: expect about that long before the new node's StartUpHealthReport (its port is closed while it migrates)`
    )
    return ms
  } finally {
    await admin
      .query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`)
      .then(() => log.info(`rehearsal: scratch database ${name} dropped`))
      .catch((e: Error) =>
        log.warning(`rehearsal: could not drop scratch database ${name}: ${redact(e.message, conn.password)}`)
      )
    await admin.end().catch(() => undefined)
  }
}
