import { describe, expect, test } from '@jest/globals'
import type { Observer } from '../../../src/node/observer.js'
import { ReadinessWatcher } from '../../../src/handoff/watch.js'

// An observer fed by hand: what the watcher reads of it is the list of /readyz answers.
function fakeObserver() {
  const ready: { at: number }[] = []
  let pokes = 0
  const obs = {
    url: 'http://127.0.0.1:6688',
    watch: () => async () => {},
    poke: () => void pokes++,
    lastReadyBefore: (t = Infinity) => ready.filter((o) => o.at <= t).at(-1)?.at
  }
  return { obs: obs as unknown as Observer, ready, pokes: () => pokes }
}

describe('ReadinessWatcher.readySeen: the old leader seen ready once before its stop (one side of the gap)', () => {
  test('a ready answer from before the watcher started does not count; one after it does', async () => {
    const f = fakeObserver()
    f.ready.push({ at: Date.now() - 5000 })
    const w = new ReadinessWatcher(f.obs).start()
    const seen = w.readySeen(2000)
    setTimeout(() => f.ready.push({ at: Date.now() }), 60)
    await expect(seen).resolves.toBe(true)
    expect(w.lastReadyBefore()).toBeDefined()
    expect(f.pokes()).toBeGreaterThan(0)
  })

  test('no ready answer within the bound: false, and the caller goes on without waiting longer', async () => {
    const f = fakeObserver()
    const w = new ReadinessWatcher(f.obs).start()
    await expect(w.readySeen(100)).resolves.toBe(false)
  })
})
