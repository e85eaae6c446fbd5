// The health gate's look when a Docker daemon restart falls between two of its calls (the
// fault-real row "dockerd SIGKILL + start at health gate, between two calls": the runner paused
// across the restart). The daemon, back without live-restore, stops the node (it exits 0 and
// releases its lease) and may start it again by its restart policy (no restart counted). Whatever
// the gate then judges must be the host's fault, never the image's (issue 21 N16): the target is
// not quarantined.
import { describe, expect, test } from '@jest/globals'
import { lockThenContainer } from '../../../src/handoff/gate-loops.js'
import { judgeHealth, type ContainerObs, type HealthParams, type LockObs } from '../../../src/handoff/gates.js'
import { notTheImage } from '../../../src/safeguards/quarantine.js'

const NEW = 'bbbbbbbb-2222-4222-8222-222222222222'

/** The node's container and its lock on a daemon that restarts once, when `restart()` is called. */
function world(after: 'exited' | 'started again') {
  let container: ContainerObs = { running: true, status: 'running', exitCode: 0, restartCount: 0, startedAt: 'T1' }
  let lock: LockObs = { holder: NEW, sessions: [] }
  return {
    restart() {
      // the daemon's stop: a graceful exit that releases the lease
      lock = { holder: undefined, problem: 'the lease expired and nobody renewed it', sessions: [] }
      container =
        after === 'exited'
          ? { running: false, status: 'exited', exitCode: 0, restartCount: 0, startedAt: 'T1' }
          : { running: true, status: 'running', exitCode: 0, restartCount: 0, startedAt: 'T2' }
    },
    lock: async () => lock,
    container: async () => container
  }
}

const params: HealthParams = {
  name: 'chainlink',
  appId: NEW,
  restarts0: 0,
  startedAt0: 'T1',
  before: [],
  stableMs: 10_000,
  readyBy: 60_000,
  readyTimeout: '1m'
}

describe('a daemon restart between the gate’s two calls is judged the host’s fault', () => {
  test.each(['exited', 'started again'] as const)('the daemon left the node %s', async (after) => {
    const w = world(after)
    let calls = 0
    // the runner is paused after its first call of the look; the daemon restarts meanwhile
    const paused =
      <T>(f: () => Promise<T>) =>
      async () => {
        const v = await f()
        if (++calls === 1) w.restart()
        return v
      }
    const { lock, container } = await lockThenContainer(paused(w.lock), paused(w.container))
    const v = judgeHealth([{ at: 0, container, lock }], params)
    expect(v.kind).toBe('fail')
    const reason = v.kind === 'fail' ? v.reason : ''
    const hostFault = v.kind === 'fail' ? v.hostFault : undefined
    expect(reason).not.toMatch(/lost the lock/)
    expect(notTheImage({ reason, hostFault, dbRestarted: false, daemonOutages: 0 })).toBeDefined()
  })
})
