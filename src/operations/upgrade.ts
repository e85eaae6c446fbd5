// operation: upgrade (docs/algorithm.md steps 1-8): preflight changes nothing; same digest is
// `unchanged`; then a single node or a failover pair is rolled onto the target image, after the
// verified pre-upgrade backup (and the migration rehearsal) this module hands the rollout.
import { readFileSync } from 'node:fs'
import type { Context, OperationResult } from '../context.js'
import type { Inputs } from '../inputs/types.js'
import { OperationError } from '../errors.js'
import { digestFor, type ImageInfo } from '../docker/client.js'
import { readDesiredImage } from '../image/file.js'
import { formatRef, parseImageRef, repository, repoTag, type ImageRef } from '../image/ref.js'
import { untrustedTarget } from '../trust/repository.js'
import {
  planText,
  type Change,
  type Downgrade,
  type Prepared,
  type RolloutDeps,
  type RolloutRecord
} from '../rollout/plan.js'
import { rollPair } from '../rollout/pair.js'
import { changeSettings, withNode } from '../rollout/prepare.js'
import { rollSingle } from '../rollout/single.js'
import { WindowClosed } from '../rollout/steps.js'
import {
  ciRunLabel,
  clearQuarantine,
  describeEntry,
  quarantined,
  notTheImage,
  quarantinePath,
  readQuarantine,
  recordQuarantine
} from '../safeguards/quarantine.js'
import { nodeKey, readJournal } from '../journal/journal.js'
import { describeOpening, isOpen, nextOpening } from '../safeguards/window.js'
import { checkDbRollbackInputs, rollback } from '../rollout/rollback.js'
import { backupFiles, backupSignal, nodeFiles, restoreForRollback } from '../rollout/backup-step.js'
import { createBackup } from '../backup/create.js'
import { pruneBackups } from '../backup/retention.js'
import { formatMs } from '../duration.js'
import { rehearseMigration } from '../safeguards/rehearsal.js'
import type { NodeContainer, NodeView } from '../node/view.js'
import { nodeVersionOf } from '../node/config.js'
import { directionOf, downgradeRefusal, migrationOfImage, takeDbDown } from '../rollout/downgrade.js'

/** The backup before the rollout and the rollback (with its restore) after a failure. */
function upgradeDeps(inputs: Inputs): RolloutDeps {
  return {
    backup: (ctx, p, ch, r) => preUpgradeBackup(ctx, inputs, p, ch, r),
    downgradeDb: takeDbDown,
    rollback: (ctx, link, plan, t, reason) =>
      rollback(ctx, link, plan, t, reason, (c, l, file) => restoreForRollback(c, l, file, inputs))
  }
}

/** The target from `image`, or from the desired-state file in the operator's repo. */
function targetRef(inputs: Pick<Inputs, 'image' | 'imageFile'>): ImageRef {
  if (inputs.image) return inputs.image
  let text: string
  try {
    text = readFileSync(inputs.imageFile!, 'utf8')
  } catch (e) {
    throw new OperationError(
      `Input 'image-file': cannot read ${inputs.imageFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`
    )
  }
  try {
    return parseImageRef(readDesiredImage(text, inputs.imageFile!).reference)
  } catch (e) {
    throw new OperationError(`Input 'image-file': ${(e as Error).message}`)
  }
}

/** Pulls the target and checks its digest; returns the image and the reference to create from. */
async function resolveTarget(
  ctx: Context,
  ref: ImageRef
): Promise<{ image: ImageInfo; createRef: string; digest?: string }> {
  const { docker, report } = ctx
  report.step('pull', formatRef(ref))
  try {
    await docker.pull(ref, ctx.signal)
  } catch (e) {
    // A pull can fail while the image is present locally (an air-gapped host); use it only then.
    const local = await docker.imageInfo(ref.digest ? `${repository(ref)}@${ref.digest}` : repoTag(ref))
    if (!local)
      throw new OperationError(`Input 'image': cannot pull ${formatRef(ref)}: ${(e as Error).message.split('\n')[0]}`)
    report.note(
      `Pull of ${formatRef(ref)} failed (${(e as Error).message.split('\n')[0]}); using the copy already on this host.`
    )
  }
  const image = await docker.imageInfo(ref.digest ? `${repository(ref)}@${ref.digest}` : repoTag(ref))
  if (!image) throw new OperationError(`Input 'image': ${formatRef(ref)} is not on this host after the pull`)
  const digest = digestFor(image, ref)
  if (ref.digest && digest !== ref.digest)
    throw new OperationError(
      `Input 'image': digest mismatch for ${formatRef(ref)}: the registry serves ${digest ?? 'an image without a digest'}`
    )
  // Create from the tag when it still names the pulled image (readable in `docker ps`).
  let createRef = ref.digest ? `${repository(ref)}@${ref.digest}` : repoTag(ref)
  if (ref.tag) {
    const byTag = await docker.imageInfo(repoTag(ref))
    if (byTag?.id === image.id) createRef = repoTag(ref)
  }
  return { image, createRef, digest }
}

/** This host's part of a rolling upgrade across hosts (src/operations/upgrade-hosts.ts), or undefined. */
type AcrossHosts = (
  ctx: Context,
  inputs: Inputs,
  ref: ImageRef,
  deps: { resolve: typeof resolveTarget; backup: typeof backupBeforeUpgrade }
) => Promise<OperationResult | undefined>

export async function upgrade(ctx: Context, inputs: Inputs, acrossHosts?: AcrossHosts): Promise<OperationResult> {
  const { docker, report } = ctx
  report.title = `chainlink-rollout upgrade of ${inputs.container}`
  const ref = targetRef(inputs)
  // Outside its window an upgrade touches nothing (not even the host lock): a scheduled run
  // inside the window takes it up.
  const now = new Date()
  if (!isOpen(inputs.window, now)) {
    const next = nextOpening(inputs.window, now)
    const when = next ? `the window opens ${describeOpening(next, now)}` : 'no window ever opens'
    report.fact('Window', inputs.window.map((w) => w.text).join(', '))
    report.step('deferred', when)
    return {
      result: 'deferred',
      ok: true,
      message: `${formatRef(ref)} deferred: outside the upgrade window (${inputs.window.map((w) => w.text).join(', ')}); ${when}. Nothing was changed.`,
      outputs: {}
    }
  }
  await checkDbRollbackInputs(inputs)
  // a node on several hosts: this host's part of a rolling upgrade (docs/hosts.md)
  const across = await acrossHosts?.(ctx, inputs, ref, { resolve: resolveTarget, backup: backupBeforeUpgrade })
  if (across) return across
  return withNode(ctx, inputs, async (p) => {
    // Before the pull: an untrusted image is neither fetched nor given the node's secrets.
    const untrusted = untrustedTarget(
      ref,
      [p.leader.image, ...(p.other ? [p.other.image] : [])],
      inputs.allowedRepositories
    )
    if (untrusted) throw new OperationError(`Input 'allowed-repositories': ${untrusted}`)
    const target = await resolveTarget(ctx, ref)
    const display = `${repoTag(ref)}@${target.digest ?? target.image.id}`
    report.fact('Target', display)
    const q = quarantined(readQuarantine(inputs.stateDir, nodeKey(inputs)), target.digest ?? target.image.id)
    if (q && !inputs.retryQuarantined)
      throw new OperationError(
        `${display} is quarantined: an earlier upgrade to it was undone (${describeEntry(q)}). Nothing was changed; set 'retry-quarantined: true' to try it again (${quarantinePath(inputs.stateDir, nodeKey(inputs))})`
      )
    if (q) report.note(`${display} was quarantined (${describeEntry(q)}); tried again as 'retry-quarantined' asks.`)
    const outputs = { 'previous-image': p.leader.image, image: display, leader: p.leader.name }
    const onTarget = async (info: { Image: string }) => (await docker.imageInfo(info.Image))?.id === target.image.id
    if ((await onTarget(p.leader.info)) && (!p.other || (await onTarget(p.other.info)))) {
      report.step('unchanged', `'${p.leader.name}' already runs ${display}`)
      return {
        result: 'unchanged',
        ok: true,
        message: `'${p.leader.name}' already runs ${display}; nothing was restarted`,
        outputs
      }
    }
    const downgrade = await downgradeOf(ctx, inputs, p, ref, target, display)
    const ch: Change = {
      operation: 'upgrade',
      createRef: target.createRef,
      imageId: target.image.id,
      display,
      backup: true,
      window: inputs.window,
      ...(downgrade ? { downgrade } : {}),
      ...changeSettings(inputs)
    }
    const plan = planText(p, ch, inputs.preferPrimary, inputs.finish)
    report.fact('Plan', plan)
    if (inputs.dryRun) {
      report.step('dry-run', 'nothing changed')
      return { result: 'planned', ok: true, message: `dry run: would ${plan}`, outputs }
    }
    const dbUptimeMs = () =>
      p.link.db
        .query<{ ms: string }>('SELECT (extract(epoch FROM now() - pg_postmaster_start_time()) * 1000)::bigint AS ms')
        .then((rows) => Number(rows[0].ms))
        .catch(() => undefined)
    const deps = upgradeDeps(inputs)
    return quarantineOutcome(ctx, inputs, p.keys.write, target.digest ?? target.image.id, display, dbUptimeMs, () =>
      p.other ? rollPair(ctx, p, ch, deps) : rollSingle(ctx, p, ch, deps)
    )
  })
}

/**
 * An image older than the DB's version is refused (the node's version gate would refuse it after
 * the handoff) unless `allow-downgrade`; then the older image names its newest migration, the one
 * the running image's `db rollback` takes the DB to at the swap (src/rollout/downgrade.ts).
 */
async function downgradeOf(
  ctx: Context,
  inputs: Pick<Inputs, 'allowDowngrade' | 'image' | 'dbRollback'>,
  p: Prepared,
  ref: ImageRef,
  target: { image: ImageInfo; createRef: string },
  display: string
): Promise<Downgrade | undefined> {
  const { report } = ctx
  const version = nodeVersionOf({ ...target.image.config, Image: formatRef(ref) })
  const d = directionOf({ target: version, dbNodeVersion: p.view.dbVersion.nodeVersion, running: p.view.version })
  if (d.kind === 'unknown') {
    report.note(
      `${display}: ${d.why} (no version label, CHAINLINK_VERSION or version tag), so it is not compared with the database's ${p.view.dbVersion.nodeVersion ?? 'version'}: an older image would be refused by the node's version gate after the handoff and rolled back.`
    )
    return undefined
  }
  if (d.kind === 'up') return undefined
  if (!inputs.allowDowngrade)
    throw new OperationError(`Input '${inputs.image ? 'image' : 'image-file'}': ${downgradeRefusal(display, d)}`)
  if (p.other)
    throw new OperationError(
      `Input 'allow-downgrade': a failover pair ('${p.leader.name}', '${p.other.name}') is not downgraded by this action: both must stop for the database to go down. Nothing was changed; stop '${p.other.name}' and run the downgrade on '${p.leader.name}' alone, then recreate the standby on ${display}`
    )
  const goose = await migrationOfImage(ctx, p.leader.info, p.leader.name, target.createRef)
  const now = p.view.dbVersion.goose
  if (now !== undefined && goose > now)
    throw new OperationError(
      `Input 'allow-downgrade': ${display} ships migration ${goose}, newer than the database's ${now}, although it is an older version (${d.to} < ${d.from}): a side branch, which this action does not take the database to. Nothing was changed`
    )
  if (inputs.dbRollback === 'restore')
    report.note(
      `'db-rollback: restore' is for a rollback of this run; the downgrade itself takes the database down with 'node db rollback' (no writes lost). To go back to a backup taken before the upgrade away from ${d.to} instead, use operation restore with that backup and the older image.`
    )
  report.fact(
    'Downgrade',
    `${d.from} -> ${d.to} ('allow-downgrade'): at the swap ${p.leader.image}'s 'node db rollback ${goose}' takes the database from goose ${now ?? '-'} to ${d.to}'s newest migration and node_versions is set to ${d.to}; tables of the newer migrations are dropped with their rows`
  )
  return { from: d.from, to: d.to, goose, newerImage: p.leader.image }
}

/**
 * Records the target in quarantine when the new image was run and the upgrade had to be undone
 * (rolled back, or refused at the standby gate); a success moves earlier entries to history.
 */
async function quarantineOutcome(
  ctx: Context,
  inputs: Pick<Inputs, 'stateDir' | 'container' | 'standby'>,
  journalKey: string,
  digest: string,
  display: string,
  dbUptimeMs: () => Promise<number | undefined>,
  roll: () => Promise<OperationResult>
): Promise<OperationResult> {
  const { report, docker } = ctx
  const t0 = Date.now()
  const faults0 = docker.daemonFaults?.() ?? 0
  const record = async (reason: string, hostFault?: string) => {
    const j = readJournal(inputs.stateDir, journalKey)
    if (!j || j.phase !== 'done' || !j.steps.some((s) => s.step === 'standby-started')) return
    const up = await dbUptimeMs()
    const infra = notTheImage({
      reason,
      hostFault,
      dbRestarted: up !== undefined && up < Date.now() - t0,
      daemonOutages: (docker.daemonFaults?.() ?? 0) - faults0
    })
    if (infra) {
      report.note(`${display} is not quarantined: ${infra}, which says nothing against the image.`)
      return
    }
    recordQuarantine(inputs.stateDir, nodeKey(inputs), {
      digest,
      image: display,
      runId: j.runId,
      ciRun: ciRunLabel(),
      at: new Date().toISOString(),
      reason: reason.length > 400 ? `${reason.slice(0, 400)}...` : reason
    })
    report.note(
      `${display} is quarantined: the next upgrade to it refuses unless 'retry-quarantined: true' (${quarantinePath(inputs.stateDir, nodeKey(inputs))}).`
    )
  }
  let r: OperationResult
  try {
    r = await roll()
  } catch (e) {
    if (e instanceof WindowClosed) {
      report.step('deferred', e.message)
      return {
        result: 'deferred',
        ok: true,
        message: `${display} deferred: ${e.message}. The standby was removed; the node was never stopped.`,
        outputs: {}
      }
    }
    if (!ctx.signal.aborted) await record((e as Error).message, (e as { hostFault?: string }).hostFault)
    throw e
  }
  if (r.result === 'rolled-back') await record(r.message ?? 'rolled back', r.hostFault)
  else if (r.ok) {
    const j = readJournal(inputs.stateDir, journalKey)
    const n = clearQuarantine(inputs.stateDir, nodeKey(inputs), `run ${j?.runId ?? '?'} upgraded to ${display}`)
    if (n) report.note(`${n} quarantined digest(s) moved to history: the node now runs ${display}.`)
  }
  return r
}

/** The verified pre-upgrade backup, the node's files in the same set; its path. */
async function backupBeforeUpgrade(
  ctx: Context,
  inputs: Inputs,
  view: NodeView,
  leader: NodeContainer
): Promise<string> {
  const { report, log } = ctx
  report.step('backup', `pg_dump to ${inputs.backupDir}`)
  const stored = backupFiles(nodeFiles(view, leader.info), !!inputs.backupRecipient, inputs.backupSecretsPlain)
  report.fact('Secrets files', stored.note)
  const r = await createBackup({
    databaseUrl: view.databaseUrl,
    dir: inputs.backupDir,
    kind: 'pre-upgrade',
    recipient: inputs.backupRecipient,
    files: stored.files,
    node: { version: view.version, image: leader.image, digest: leader.digest },
    log,
    signal: backupSignal(ctx.signal)
  })
  report.fact(
    'Backup',
    `${r.file} (${(r.bytes / 1e6).toFixed(1)} MB in ${formatMs(r.durationMs)}; verified: ${r.verified.join(', ')})`
  )
  try {
    await pruneBackups(inputs.backupDir, {
      keep: inputs.backupKeep,
      keepPreUpgrade: inputs.backupKeep,
      log,
      owner: r.manifest.owner
    })
  } catch (e) {
    log.warning(`backup retention: ${(e as Error).message}`)
  }
  return r.file
}

/** The verified pre-upgrade backup (journaled), when the change and the inputs ask for one. */
export async function preUpgradeBackup(
  ctx: Context,
  inputs: Inputs,
  p: Prepared,
  ch: Change,
  r: RolloutRecord
): Promise<void> {
  if (!ch.backup || !inputs.backup) return
  const { journal } = r
  journal.step('backup')
  const backupFile = await backupBeforeUpgrade(ctx, inputs, p.view, p.leader)
  r.backupFile = backupFile
  journal.plan({ backupFile })
  if (inputs.rehearseMigration && ch.downgrade)
    ctx.report.note(
      `No migration rehearsal: a downgrade runs no migrations of ${ch.display}; its database step is the running image's 'db rollback'.`
    )
  else if (inputs.rehearseMigration && ch.operation === 'upgrade') {
    // on a copy of the database, before anything of the node is touched
    journal.step('rehearsal')
    try {
      await rehearseMigration(ctx, p.view, p.leader, backupFile, {
        newImage: ch.createRef,
        imageId: ch.imageId,
        identity: inputs.backupIdentity,
        timeoutMs: inputs.readyTimeoutMs,
        copyUnchecked: inputs.dbCopyUnchecked,
        onScratch: (scratch) => journal.step('rehearsal', { scratch })
      })
    } catch (e) {
      if (!ctx.signal.aborted) journal.done('failed')
      throw e
    }
  }
}
