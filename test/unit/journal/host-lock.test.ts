import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { HostLock, processStart } from '../../../src/journal/host-lock.js'
import { JournalWriter, journalPath, nodeKey, readJournal } from '../../../src/journal/journal.js'
import type { JournalPlan } from '../../../src/journal/journal.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'clr-hostlock-'))
})
afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

const bootId = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()

describe('the host lock and the journal belong to the node, not to the container input', () => {
  it('container a with standby b and container b with standby a are one node', async () => {
    const ab = nodeKey({ container: 'a', standby: 'b' })
    expect(nodeKey({ container: 'b', standby: 'a' })).toBe(ab)
    const first = await HostLock.acquire(dir, ab, 1000)
    await expect(HostLock.acquire(dir, nodeKey({ container: 'b', standby: 'a' }), 300)).rejects.toThrow(/lock-timeout/)
    first.release()
    new JournalWriter(journalPath(dir, ab), {
      runId: 'r1',
      operation: 'upgrade',
      container: 'a',
      plan: {} as JournalPlan
    })
    expect(readJournal(dir, nodeKey({ container: 'b', standby: 'a' }))?.runId).toBe('r1')
  })

  it('a single container keeps its own name (journals of earlier versions are still found)', () => {
    expect(nodeKey({ container: 'chainlink' })).toBe('chainlink')
  })

  it('a pair never shares a file with a single container of a similar name', () => {
    expect(journalPath(dir, nodeKey({ container: 'a', standby: 'b' }))).not.toBe(journalPath(dir, 'a_b'))
  })
})

describe('a stale host lock is taken over at once, never waited out', () => {
  const lockFile = join('%d', 'chainlink.lock')
  const file = () => lockFile.replace('%d', dir)

  it('records the boot id and the start time of its process', async () => {
    const lock = await HostLock.acquire(dir, 'chainlink', 1000)
    const owner = JSON.parse(readFileSync(file(), 'utf8'))
    expect(owner).toMatchObject({ pid: process.pid, bootId: bootId(), startTime: processStart(process.pid) })
    lock.release()
  })

  it('a lock from before a reboot (another boot id), its pid now alive', async () => {
    writeFileSync(
      file(),
      JSON.stringify({ pid: 1, host: hostname(), at: '2025-01-01T00:00:00Z', bootId: 'x', startTime: '1' })
    )
    const lock = await HostLock.acquire(dir, 'chainlink', 300)
    lock.release()
  })

  it('a lock whose pid was reused by another process (another start time)', async () => {
    writeFileSync(
      file(),
      JSON.stringify({ pid: 1, host: hostname(), at: '2025-01-01T00:00:00Z', bootId: bootId(), startTime: '999999999' })
    )
    const lock = await HostLock.acquire(dir, 'chainlink', 300)
    lock.release()
  })

  it('a lock of an earlier version ({pid, host}) whose pid is alive but not refreshed for an hour', async () => {
    writeFileSync(file(), JSON.stringify({ pid: 1, host: hostname(), at: '2025-01-01T00:00:00Z' }))
    const old = new Date(Date.now() - 3600_000)
    utimesSync(file(), old, old)
    const lock = await HostLock.acquire(dir, 'chainlink', 300)
    lock.release()
  })

  it('the lock of a live run (same boot, same process) is respected, even when its mtime is old', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'])
    try {
      await new Promise((r) => setTimeout(r, 100))
      writeFileSync(
        file(),
        JSON.stringify({
          pid: child.pid,
          host: hostname(),
          at: '2025-01-01T00:00:00Z',
          bootId: bootId(),
          startTime: processStart(child.pid!)
        })
      )
      const old = new Date(Date.now() - 3600_000)
      utimesSync(file(), old, old)
      await expect(HostLock.acquire(dir, 'chainlink', 300)).rejects.toThrow(/lock-timeout/)
    } finally {
      child.kill()
    }
  })
})
