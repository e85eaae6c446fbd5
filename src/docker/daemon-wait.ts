// A Docker daemon that restarts (a package upgrade, config management, an OOM kill) is gone for
// seconds to a minute. A Docker call that meets it waits for it, bounded and cancellable, and is
// repeated only when that cannot act twice (docs/algorithm.md, "Docker daemon restarts").
// A leaf (no imports): the Docker client sits low in the import chain (scripts/import-depth.mjs).

/**
 * How a call failed to get an answer:
 * - `unreached`: the request never reached the daemon (the socket refuses, or its file is gone
 *   while the daemon restarts): nothing happened, any call may be repeated;
 * - `cut`: the connection broke while the request was out (reset, broken pipe, hang up): the
 *   daemon may have acted on it.
 * An HTTP status is an answer of a running daemon (a 5xx included: a daemon going down closes
 * its socket next, and the following call meets `unreached`), never waited on.
 */
type ConnectionFault = 'unreached' | 'cut'

export function connectionFault(e: unknown): ConnectionFault | undefined {
  if (!e || typeof e !== 'object') return undefined
  const x = e as { code?: unknown; statusCode?: unknown; message?: unknown; syscall?: unknown }
  if (x.statusCode !== undefined) return undefined
  const message = typeof x.message === 'string' ? x.message : ''
  if (x.code === 'ECONNREFUSED') return 'unreached'
  if (x.code === 'ENOENT' && (x.syscall === 'connect' || /\bconnect ENOENT\b/.test(message))) return 'unreached'
  if (x.code === 'ECONNRESET' || x.code === 'EPIPE' || x.code === 'ECONNABORTED') return 'cut'
  if (/socket hang up/i.test(message)) return 'cut'
  return undefined
}

/**
 * What repeating a call can do:
 * - `read`: nothing (inspect, list, logs, wait);
 * - `idempotent`: a repeat has the effect once (stop, remove with force, a restart policy, pull,
 *   start: a second start of a started container is "already started");
 * - `checked`: after a cut, the daemon's state says whether it took effect (create by name,
 *   rename, network connect), and it is repeated only when it did not;
 * - `once`: a repeat would act again (a signal, a restart): repeated only when unreached.
 */
export type CallKind = 'read' | 'idempotent' | 'checked' | 'once'

/** Pure: whether a call of `kind` that failed with `fault` may be made again. */
export function mayRetry(kind: CallKind, fault: ConnectionFault | undefined): boolean {
  if (!fault) return false
  return fault === 'unreached' || kind !== 'once'
}

export interface DaemonWaitOptions {
  /** how long one outage of the daemon is waited out (default 90 s) */
  waitMs?: number
  /** between two tries */
  pollMs?: number
  /** the run's cancellation: ends a wait at once */
  signal?: AbortSignal
  /** told once per outage, when the waiting starts */
  onWait?: (message: string) => void
}

/** A restart of the daemon takes seconds to a minute (a live-restore daemon reloads every container first). */
const DAEMON_WAIT_MS = 90_000

/**
 * The waits of one client: an outage is shared by the calls that meet it, so a daemon that stays
 * away costs the run one bound, not one per call.
 */
export class DaemonWait {
  private downSince?: number
  /** calls that met the daemon out of reach, repeated or not: evidence of a daemon restart */
  faultsSeen = 0
  private readonly waitMs: number
  private readonly pollMs: number

  constructor(
    private readonly where: string,
    private readonly o: DaemonWaitOptions = {}
  ) {
    this.waitMs = o.waitMs ?? DAEMON_WAIT_MS
    this.pollMs = o.pollMs ?? 1000
  }

  /**
   * `fn` (told its attempt, 0 first), repeated while the daemon is out of reach and `kind`
   * allows. For `checked`, `done` is asked after a cut (once the daemon answers): `{ value }`
   * means the call took effect, and the value is returned instead of a repeat.
   */
  async call<T>(
    what: string,
    kind: CallKind,
    fn: (attempt: number) => Promise<T>,
    done?: () => Promise<{ value: T } | undefined>
  ): Promise<T> {
    let firstFault: number | undefined
    for (let attempt = 0; ; attempt++) {
      let fault: ConnectionFault | undefined
      try {
        const v = await fn(attempt)
        this.downSince = undefined
        return v
      } catch (e) {
        if ((e as { statusCode?: unknown })?.statusCode !== undefined) this.downSince = undefined
        fault = connectionFault(e)
        if (fault) this.faultsSeen++
        if (!mayRetry(kind, fault)) throw e
        const now = Date.now()
        firstFault ??= now
        const outageStarts = this.downSince === undefined
        this.downSince ??= now
        const deadline = Math.min(firstFault, this.downSince) + this.waitMs
        if (this.o.signal?.aborted) throw new Error(`${what}: cancelled`)
        if (now >= deadline)
          throw new Error(
            `${what}: the Docker Engine at ${this.where} did not answer for ${fmtS(this.waitMs)} (${(e as Error).message})`
          )
        if (outageStarts)
          this.o.onWait?.(
            `the Docker Engine at ${this.where} does not answer (${(e as Error).message}): waiting up to ${fmtS(this.waitMs)} for it (a daemon restart)`
          )
        if (fault === 'cut' && kind === 'checked' && done) {
          // the daemon may have acted before the connection broke: its state says
          const took = await this.call(`${what} (checking whether it took effect)`, 'read', () => done())
          if (took) return took.value
          continue
        }
        await pause(Math.min(this.pollMs, Math.max(0, deadline - now)), what, this.o.signal)
      }
    }
  }
}

function fmtS(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`
}

/** A pause between two tries that the run's cancellation ends at once (as `bounded` does). */
function pause(ms: number, what: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error(`${what}: cancelled`))
    const onAbort = () => {
      clearTimeout(t)
      reject(new Error(`${what}: cancelled`))
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
