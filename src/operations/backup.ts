// operation: backup (scheduled or manual) and operation: restore. Both use the backup module;
// restore refuses while a node holds the lock unless told to stop the node containers first.
import type { Context, OperationResult } from '../context.js'
import type { Inputs } from '../inputs/types.js'
import { OperationError } from '../errors.js'
import { createBackup } from '../backup/create.js'
import { lockHolderPresent } from '../backup/db.js'
import { chooseBackup } from '../backup/choose.js'
import { ownerOf } from '../backup/owner.js'
import { restoreBackup } from '../backup/restore.js'
import { pruneBackups } from '../backup/retention.js'
import { Database, type DbApi } from '../postgres/database.js'
import { formatMs } from '../duration.js'
import { memberOf, newRun, timeouts } from '../handoff/types.js'
import { takeOver } from '../handoff/take-over.js'
import { inspectNode } from '../node/inspect.js'
import type { NodeContainer, NodeView } from '../node/view.js'
import { afterRestore, backupFiles, backupSignal, nodeFiles } from '../rollout/backup-step.js'
import { sameApp } from '../node/lock.js'
import { endDeadSessions, findForeignNodes, foreignSessions, requireQuietDb } from '../node/foreign-sessions.js'
import { notDroppableMessage, schemasNotDroppable } from '../rollout/prepare.js'
import { withHostLock } from '../journal/host-lock.js'
import { JournalWriter, journalPath, refuseOpenJournal, type JournalKeys } from '../journal/journal.js'
import { keyContainers } from '../rollout/plan.js'
import { nodeNames } from '../node/connect.js'

/** The node as inspectNode sees it; a node that is down is fine for a backup (no leader needed). */
async function viewOf(ctx: Context, inputs: Inputs): Promise<NodeView> {
  return inspectNode(ctx, nodeNames(inputs), inputs)
}

export async function backup(ctx: Context, inputs: Inputs): Promise<OperationResult> {
  const { report, log } = ctx
  report.title = `chainlink-rollout backup of ${inputs.container}`
  return withHostLock(ctx, inputs, keyContainers(inputs), async () => {
    const view = await viewOf(ctx, inputs)
    try {
      const source = view.leader ?? view.containers[0]
      const stored = backupFiles(nodeFiles(view, source.info), !!inputs.backupRecipient, inputs.backupSecretsPlain)
      const r = await createBackup({
        databaseUrl: view.databaseUrl,
        dir: inputs.backupDir,
        kind: 'scheduled',
        recipient: inputs.backupRecipient,
        files: stored.files,
        node: { version: view.version, image: source.image, digest: source.digest },
        verify: inputs.backupVerify,
        log,
        signal: backupSignal(ctx.signal)
      })
      report.fact('Backup', r.file)
      report.fact('Size', `${(r.bytes / 1e6).toFixed(2)} MB in ${formatMs(r.durationMs)}`)
      report.fact('Verified', r.verified.join(', '))
      report.fact('Encrypted', inputs.backupRecipient ? `yes, to ${inputs.backupRecipient}` : 'no')
      report.fact('Secrets files', stored.note)
      const pruned = await pruneBackups(inputs.backupDir, {
        keep: inputs.backupKeep,
        keepPreUpgrade: inputs.backupKeep,
        log,
        owner: r.manifest.owner
      })
      report.fact(
        'Retention',
        `kept ${pruned.kept.length}, deleted ${pruned.deleted.length} (backup-keep ${inputs.backupKeep} per kind, of this node's backups; the newest verified is never deleted)`
      )
      return {
        result: 'ok',
        ok: true,
        message: `backup written and verified: ${r.file}`,
        outputs: { 'backup-file': r.file, leader: view.leader?.name }
      }
    } finally {
      await view.db.close()
    }
  })
}

export async function restore(ctx: Context, inputs: Inputs): Promise<OperationResult> {
  const { report, log, docker } = ctx
  report.title = `chainlink-rollout restore of ${inputs.container}`
  return withHostLock(ctx, inputs, keyContainers(inputs), async (keys) => {
    const view = await viewOf(ctx, inputs)
    try {
      // Everything that can be checked without touching the node is checked before it is stopped:
      // whose backup it is (src/backup/owner.ts) and whether the identity opens it.
      let chosen
      try {
        chosen = await chooseBackup({
          dir: inputs.backupDir,
          file: inputs.backupFile,
          current: await ownerOf(view.databaseUrl),
          node: inputs.container,
          allowOther: inputs.restoreOtherNode,
          identity: inputs.backupIdentity
        })
      } catch (e) {
        throw new OperationError((e as Error).message)
      }
      const file = chosen.file
      report.fact('Backup', file)
      for (const n of chosen.notes) report.note(n)
      // Node sessions of no named container (another node on this DB, maybe on another host) would
      // keep running on the rewritten DB, or take the lease during the restore: refused now.
      const known = view.containers.map((c) => c.session?.appId).filter((x): x is string => !!x)
      let unnamed = view.lock.sessions.filter((s) => !known.some((k) => sameApp(k, s.appId)))
      if (unnamed.length) {
        // an earlier or exited process of the node's own containers is no other node: its sessions
        // are ended before the DB is rewritten (requireQuietDb below, issue 21's lingering session)
        const node = view.containers.map((c) => c.info)
        const others = await findForeignNodes(ctx, view.db, node, known, node)
        unnamed = unnamed.filter((s) => others.some((f) => sameApp(f.appId, s.appId)))
      }
      if (unnamed.length) {
        const foreign = new Set((await foreignSessions(ctx, view)).map((s) => s.pid))
        throw new OperationError(
          `Refusing to restore: node sessions on the database belong to none of ${view.containers.map((c) => `'${c.name}'`).join(', ')} (${unnamed.map((s) => `app ${s.appId} from ${s.clientAddr ?? 'a local socket'}${foreign.has(s.pid) ? ', no container on this host' : ''}`).join('; ')}); stop that node first, or name it in 'container'/'standby'`
        )
      }
      const blocked = await schemasNotDroppable(view.db)
      if (blocked.length)
        throw new OperationError(`Refusing to restore: ${notDroppableMessage(await currentRole(view.db), blocked)}`)
      const held = await lockHolderPresent(view.databaseUrl, view.config.advisoryLockId)
      const running = view.containers.filter((c) => c.info.State.Running)
      if (held.held || running.length) {
        if (!inputs.stopNode)
          throw new OperationError(
            `Refusing to restore while the node is up (${held.held ? held.detail : `running: ${running.map((c) => c.name).join(', ')}`}); stop it first, or set 'stop-node: true' to have the action stop and restart it`
          )
      }
      const t = timeouts(inputs, view.config, view.leader?.info)
      // The leader last, so its standby never grabs the lock in between.
      const order = [...running].sort((a, b) => (a === view.leader ? 1 : 0) - (b === view.leader ? 1 : 0))
      // Journaled before the first stop: a killed or cancelled restore leaves the node stopped,
      // and the post step or `repair` starts it again from this record (docs/algorithm.md, "Restore").
      const journal = order.length ? openRestoreJournal(ctx, inputs, keys, view, order, file) : undefined
      journal?.step('restore-stop', { ids: order.map((c) => c.info.Id) })
      for (const c of order) {
        report.step(`stop ${c.name}`, 'graceful, for the restore')
        await docker.stop(c.info.Id, t.stopS)
      }
      let r
      try {
        // Nothing rewrites the DB under a live node: every node session gone, the lease run out.
        try {
          // a session the server keeps for a process of the node that is gone (a network cut)
          // is ended, as the rollback does (src/node/foreign-sessions.ts)
          const node = view.containers.map((c) => c.info)
          await requireQuietDb(view.db, t.lockMs, 'restore', ctx.signal, () => endDeadSessions(ctx, view.db, node))
        } finally {
          await view.db.close()
        }
        journal?.step('restore-db', { file })
        r = await restoreBackup({
          databaseUrl: view.databaseUrl,
          file,
          identity: inputs.backupIdentity,
          log,
          signal: ctx.signal,
          // dropped once the node is back: the drop's checkpoint is then not downtime
          keepPrevious: order.length > 0,
          copyUnchecked: inputs.dbCopyUnchecked
        })
      } catch (e) {
        // The restore runs in one transaction: the DB is as it was, so the node goes back up.
        if (ctx.signal.aborted) throw e // cancelled: the post step starts it from the journal
        for (const c of [...order].reverse()) await docker.start(c.info.Id).catch(() => undefined)
        journal?.done('failed')
        throw new OperationError(
          `restore of ${file} failed, the database is unchanged and the node was started again: ${(e as Error).message}`
        )
      }
      report.step('restored', `${file} (taken ${r.backupCreatedAt}, ${r.kind}) in ${formatMs(r.durationMs)}`)
      report.fact(
        'Keystore',
        Object.entries(r.keystore)
          .map(([k, v]) => `${k}: ${v}`)
          .join(', ') || 'no keystore tables'
      )
      for (const w of r.warnings) report.note(w)
      let leader: string | undefined
      journal?.step('restore-start')
      // the contents a swap set aside go only once the node leads again and passed its gate
      const after = r.previous && afterRestore(ctx, r.previous)
      try {
        if (order.length) {
          // Start the previous leader first and prove it leads again; then the others wait.
          const db = await Database.connect(view.databaseUrl)
          try {
            const link = {
              db,
              config: view.config,
              mode: view.mode,
              databaseUrl: view.databaseUrl,
              healthUrl: inputs.healthUrl,
              run: newRun(view.leader?.health?.checks)
            }
            const first = view.leader ?? order[order.length - 1]
            await takeOver(ctx, link, memberOf(first.info), t)
            leader = first.name
            for (const c of order) if (c !== first) await docker.start(c.info.Id)
          } finally {
            await db.close()
          }
        }
      } catch (e) {
        const kept = await after?.(false)
        if (!ctx.signal.aborted) journal?.done('failed')
        if (kept && !ctx.signal.aborted) throw new OperationError(`${(e as Error).message}; ${kept}`)
        throw e
      }
      await after?.(true)
      journal?.done('ok')
      return {
        result: 'ok',
        ok: true,
        message: `restored ${file}${leader ? `; '${leader}' leads again` : ''}`,
        outputs: { 'backup-file': file, leader }
      }
    } finally {
      await view.db.close()
    }
  })
}

async function currentRole(db: DbApi): Promise<string> {
  return (await db.query<{ u: string }>('SELECT current_user AS u'))[0].u
}

/** The journal of a restore that stops the node: which containers it stopped, leader last. */
function openRestoreJournal(
  ctx: Context,
  inputs: Pick<Inputs, 'stateDir' | 'container'>,
  keys: JournalKeys,
  view: NodeView,
  order: NodeContainer[],
  file: string
): JournalWriter {
  refuseOpenJournal(inputs.stateDir, keys.read)
  const first = view.leader ?? order[order.length - 1]
  const other = order.find((c) => c !== first)
  const journal = new JournalWriter(journalPath(inputs.stateDir, keys.write), {
    runId: Date.now().toString(36),
    operation: 'restore',
    container: inputs.container,
    plan: {
      leaderId: first.info.Id,
      leaderName: first.name,
      otherId: other?.info.Id,
      otherName: other?.name,
      leaderImage: first.image,
      target: file,
      dbBefore: view.dbVersion,
      mode: view.mode,
      backupFile: file
    }
  })
  ctx.onJournal?.(journal.journal.runId, journal.path)
  return journal
}
