import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
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

// review N10: the lock is host-wide (not per state-dir), names the run that holds it, and a lock
// left by a run whose journal is open in another state-dir is not taken over silently.
describe('a host-wide lock names its holder and hands over an open journal elsewhere', () => {
  const plan = {} as JournalPlan

  it('a waiter is told which operation of which node holds it, and its state-dir', async () => {
    const first = await HostLock.acquire(dir, 'db-0123456789abcdef', 1000, undefined, undefined, {
      shared: true,
      what: "upgrade of 'a' (standby 'b')",
      journal: join(dir, 'state-1', 'db-0123456789abcdef.journal.json')
    })
    expect(first.path).toBe(join(dir, 'chainlink-rollout-db-0123456789abcdef.lock'))
    // readable by every user of the host, so that another user's run can name the holder
    expect(statSync(first.path).mode & 0o777).toBe(0o644)
    const waits: string[] = []
    const err = await HostLock.acquire(dir, 'db-0123456789abcdef', 300, undefined, (o) => waits.push(o), {
      shared: true
    }).catch((e: Error) => e)
    expect((err as Error).message).toMatch(/upgrade of 'a' \(standby 'b'\), pid \d+ since .* on .*state-dir .*state-1/)
    expect(waits[0]).toMatch(/upgrade of 'a'/)
    first.release()
  })

  it('a run that ends with its journal open leaves its state-dir on record; a run of another state-dir is refused', async () => {
    const other = join(dir, 'state-1')
    const theirs = join(other, 'db-0123456789abcdef.journal.json')
    const first = await HostLock.acquire(dir, 'db-0123456789abcdef', 1000, undefined, undefined, {
      shared: true,
      what: "upgrade of 'a'",
      journal: theirs
    })
    mkdirSync(other)
    const w = new JournalWriter(theirs, { runId: 'r1', operation: 'upgrade', container: 'a', plan })
    first.release()
    const mine = join(dir, 'state-2', 'db-0123456789abcdef.journal.json')
    const opts = { shared: true, what: "upgrade of 'b'", journal: mine }
    await expect(HostLock.acquire(dir, 'db-0123456789abcdef', 1000, undefined, undefined, opts)).rejects.toThrow(
      new RegExp(`interrupted upgrade \\(run r1.*${theirs}.*state-dir '${other}'`)
    )
    // the same state-dir goes on (its own journal check refuses or repairs)
    const same = await HostLock.acquire(dir, 'db-0123456789abcdef', 1000, undefined, undefined, {
      ...opts,
      journal: theirs
    })
    same.release()
    // once that journal is closed, any state-dir may take the lock
    w.done('upgraded')
    const after = await HostLock.acquire(dir, 'db-0123456789abcdef', 1000, undefined, undefined, opts)
    after.release()
    expect(readdirSync(dir).filter((f) => f.endsWith('.lock'))).toEqual([])
  })

  it('a killed run (its lock stale) with an unreadable journal in another state-dir: refused, naming the file', async () => {
    const theirs = join(dir, 'state-1', 'db-0123456789abcdef.journal.json')
    mkdirSync(join(dir, 'state-1'))
    writeFileSync(theirs, '{"torn')
    writeFileSync(
      join(dir, 'chainlink-rollout-db-0123456789abcdef.lock'),
      JSON.stringify({ pid: 1, host: hostname(), at: '2025-01-01T00:00:00Z', bootId: 'x', journal: theirs })
    )
    await expect(
      HostLock.acquire(dir, 'db-0123456789abcdef', 1000, undefined, undefined, {
        shared: true,
        journal: join(dir, 'state-2', 'x.journal.json')
      })
    ).rejects.toThrow(new RegExp(`${theirs}.*not valid JSON`))
  })
})
