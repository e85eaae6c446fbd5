// The bound the integration files put on their side-by-side tests (test/support/pool.ts): how
// many run at once, which slot (a dedicated daemon) each holds, and a row bounded from its start.
import { describe, expect, it } from '@jest/globals'
import { pool } from '../../support/pool.js'

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('pool', () => {
  it('runs at most size jobs at once, in the order submitted, each on a slot no other job holds meanwhile', async () => {
    const slot = pool(2)
    const held = new Set<number>()
    let running = 0
    let most = 0
    const started: number[] = []
    const job = (i: number) =>
      slot(async (s) => {
        expect(held.has(s)).toBe(false)
        held.add(s)
        started.push(i)
        most = Math.max(most, ++running)
        await tick(5)
        running--
        held.delete(s)
        return s
      })
    const slots = await Promise.all([0, 1, 2, 3, 4].map(job))
    expect(most).toBe(2)
    expect(started).toEqual([0, 1, 2, 3, 4])
    expect(slots.every((s) => s === 0 || s === 1)).toBe(true)
  })

  it('a job that fails gives its slot to the next one', async () => {
    const slot = pool(1)
    await expect(slot(() => Promise.reject(new Error('row failed')))).rejects.toThrow('row failed')
    await expect(slot(async () => 'next')).resolves.toBe('next')
  })

  it('with runMs: a job still running fails then, counted from its own start, and keeps its slot until it ends', async () => {
    const slot = pool(1, 40)
    let firstEnded = false
    const first = slot(async () => {
      await tick(80)
      firstEnded = true
    })
    // queued behind the first for about 80 ms, longer than runMs: not held against it
    const second = slot(async () => {
      expect(firstEnded).toBe(true)
      await tick(10)
      return 'second'
    })
    await expect(first).rejects.toThrow(/still running 40 ms after it started/)
    await expect(second).resolves.toBe('second')
  })
})
