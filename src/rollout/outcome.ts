// How a rollout ends, as the operator reads it: the result and outputs of a success, or, after a
// failure past the first handoff, the rollback (or exactly where the node was left).
import type { Context, OperationResult } from '../context.js'
import type { DockerApi } from '../docker/client.js'
import { OperationError } from '../errors.js'
import { failedContainerLogs } from '../handoff/gate-loops.js'
import { GateError } from '../handoff/types.js'
import type { Change, Prepared, RollbackResult, RolloutDeps, RolloutRecord } from './plan.js'

/** The longest measured gap, for the `leader-gap-ms` output. */
function gapsOut(gaps: number[]): string | undefined {
  const g = gaps.filter((x) => Number.isFinite(x))
  return g.length ? String(Math.max(...g)) : undefined
}

const done = (ch: Change) => (ch.operation === 'upgrade' ? 'upgraded' : 'ok') as 'upgraded' | 'ok'

/** Journals the end and returns the success: `leader` leads on the change's image. */
export function succeeded(p: Prepared, ch: Change, r: RolloutRecord, leader: string, message: string): OperationResult {
  r.journal.done(done(ch))
  return {
    result: done(ch),
    ok: true,
    message,
    outputs: {
      'previous-image': p.leader.image,
      image: ch.display,
      leader,
      'leader-gap-ms': gapsOut(r.gaps),
      ...(r.backupFile ? { 'backup-file': r.backupFile } : {})
    }
  }
}

/** Rolls back (`rollback`, from the operation) after a failure past the first handoff, or says exactly where the node is. */
export async function recover(
  ctx: Context,
  p: Prepared,
  ch: Change,
  r: RolloutRecord,
  e: unknown,
  rollback: RolloutDeps['rollback']
): Promise<OperationResult> {
  if (ctx.signal.aborted) throw e // cancelled: the post step repairs from the journal
  const { journal, previous } = r
  const reason = e instanceof Error ? e.message : String(e)
  // carried to the result, so the quarantine decides on the gate's finding, not on its text
  const hostFault = e instanceof GateError ? e.hostFault : undefined
  for (const m of r.created) await failedContainerLogs(ctx, m, e)
  if (!ch.rollback.rollback) {
    journal.done('failed')
    throw new OperationError(
      `${reason}. Rollback is off (input 'rollback: false'): the node is left as it is; the previous container is kept stopped as '${previous.name}'`
    )
  }
  // A journal with `rollback` is always rolled back by the post step and `repair`
  // (src/operations/repair.ts). It is written just before the rollback's first change on the host,
  // not before its checks: a rollback that stopped at them (the DB or the Docker daemon out of
  // reach) changed nothing, and the node is judged as it is (a healthy new leader is finished).
  let changed = false
  const docker = beforeFirstChange(ctx.docker, () => {
    changed = true
    journal.step('rollback', { reason })
  })
  let rb: RollbackResult
  try {
    rb = await rollback(
      { ...ctx, docker },
      p.link,
      {
        name: p.leader.name,
        previous,
        others: r.others,
        created: r.created,
        newImage: ch.createRef,
        dbBefore: p.view.dbVersion,
        dbRollback: ch.rollback.dbRollback,
        backupFile: r.backupFile,
        settings: ch.rollback,
        downgrade: !!ch.downgrade
      },
      p.t,
      reason
    )
  } catch (re) {
    journal.step('rollback-failed', { reason: (re as Error).message })
    const unchanged = changed
      ? ''
      : ' Nothing of the node was changed by the rollback: it is as the failed step left it.'
    throw new OperationError(
      `${ch.operation} failed (${reason}) and the rollback failed too: ${(re as Error).message}.${unchanged} Run operation 'repair' after fixing the cause; the journal is ${journal.path}`
    )
  }
  const { forward } = rb
  if (forward !== undefined) {
    // Not where it was asked to be (the new version failed its gate) nor back: the job fails,
    // and the outputs name the image that serves.
    journal.done('failed')
    return {
      result: 'failed',
      ok: false,
      hostFault,
      message: `${ch.operation} to ${ch.display} failed (${reason}) and it could not be rolled back: ${forward}. '${p.leader.name}' serves again on ${ch.display}, the new version, on its own migrations`,
      outputs: {
        'previous-image': p.leader.image,
        image: ch.display,
        leader: p.leader.name,
        'leader-gap-ms': gapsOut(r.gaps),
        ...(r.backupFile ? { 'backup-file': r.backupFile } : {})
      }
    }
  }
  journal.done('rolled-back')
  return {
    result: 'rolled-back',
    ok: false,
    hostFault,
    message: `${ch.operation} to ${ch.display} failed (${reason}); rolled back: '${p.leader.name}' leads on ${p.leader.image}${rb.db ? `; ${rb.db}` : ''}`,
    outputs: {
      'previous-image': p.leader.image,
      image: p.leader.image,
      leader: p.leader.name,
      'leader-gap-ms': gapsOut(r.gaps)
    }
  }
}

/** The Docker calls that change something on the host (the others only look). */
const CHANGES: ReadonlySet<PropertyKey> = new Set<keyof DockerApi>([
  'create',
  'start',
  'stop',
  'restart',
  'signal',
  'remove',
  'setRestartPolicy',
  'rename',
  'runOnce',
  'connectNetwork'
])

/** `docker`, whose first call that changes something runs `first` before it (once). */
function beforeFirstChange(docker: DockerApi, first: () => void): DockerApi {
  let told = false
  return new Proxy(docker, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target)
      if (typeof v !== 'function') return v
      const call = v as (...a: unknown[]) => unknown
      if (!CHANGES.has(prop)) return call.bind(target)
      return (...a: unknown[]) => {
        if (!told) {
          told = true
          first()
        }
        return call.apply(target, a)
      }
    }
  })
}
