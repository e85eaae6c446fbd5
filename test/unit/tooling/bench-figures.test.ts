// The downtime bench's figures, read from what the nodes and the action record: the port's dark
// window from each container's serving span, the busiest client address from the simulator's
// request counts, and the aim of each stop from the action's own job summary.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Report } from '../../../src/report.js'
import { busiest } from '../../bench/lib/requests.js'
import { summaryHandoffs } from '../../bench/lib/summary.js'
import { longestGap, servingAt } from '../../bench/probe.js'

describe('longestGap', () => {
  it('is the time between the old container stopping and the new one serving', () => {
    expect(longestGap([{ from: 0, to: 1000 }, { from: 1800 }], 500, 5000)).toEqual({ ms: 800, recovered: true })
  })
  it('is 0 when the spans overlap (two containers on the same address)', () => {
    expect(longestGap([{ from: 0, to: 1000 }, { from: 900 }], 500, 5000)).toEqual({ ms: 0, recovered: true })
  })
  it('keeps the longest of several dark windows', () => {
    const spans = [{ from: 0, to: 1000 }, { from: 1100, to: 2000 }, { from: 2700 }]
    expect(longestGap(spans, 0, 5000)).toEqual({ ms: 700, recovered: true })
  })
  it('reports a window still dark at the end as not recovered', () => {
    expect(longestGap([{ from: 0, to: 1000 }], 0, 3000)).toEqual({ ms: 2000, recovered: false })
  })
  it('servingAt: only inside a span', () => {
    const spans = [{ from: 0, to: 1000 }, { from: 1500 }]
    expect([servingAt(spans, 999), servingAt(spans, 1000), servingAt(spans, 1600)]).toEqual([true, false, true])
  })
})

describe('busiest', () => {
  let dir: string
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'bench-req-'))))
  afterEach(() => rmSync(dir, { recursive: true, force: true }))
  const file = (name: string, clients: Record<string, { rejected?: number; perSecond: Array<[number, number]> }>) =>
    writeFileSync(
      join(dir, name),
      JSON.stringify({
        clients: Object.fromEntries(
          Object.entries(clients).map(([a, c]) => [a, { total: 0, max60s: 0, rejected: c.rejected ?? 0, ...c }])
        )
      })
    )

  it("adds one address's requests across the node's containers, in the upgrade's time only", () => {
    file('old.json', {
      '127.0.0.1': {
        perSecond: [
          [99, 500],
          [100, 10],
          [130, 20]
        ]
      }
    })
    file('new.json', {
      '127.0.0.1': {
        perSecond: [
          [140, 30],
          [200, 40]
        ]
      },
      '172.17.0.1': { perSecond: [[140, 5]] }
    })
    // seconds 100..200: the busiest 60 s are 100..159 (10 + 20 + 30); second 99 is before the start
    expect(busiest(dir, 100_000, 200_999)).toEqual({ address: '127.0.0.1', max60s: 60, rejected: 0 })
  })
  it('counts every 429 the node answered', () => {
    file('a.json', { '127.0.0.1': { rejected: 3, perSecond: [[100, 1]] } })
    expect(busiest(dir, 100_000, 100_000).rejected).toBe(3)
  })
  it('is 0 when no container wrote its counts', () => {
    expect(busiest(join(dir, 'none'), 0, 1000)).toEqual({ max60s: 0, rejected: 0 })
  })
})

describe('summaryHandoffs', () => {
  it("reads each handoff's lock-taken time and aim from the action's job summary", () => {
    const r = new Report()
    r.handoffs.push(
      {
        from: 'node',
        to: 'node-standby',
        stop: 'graceful',
        lockTakenMs: 108,
        gapMs: 1302,
        note: 'aimed (held 640 ms)'
      },
      {
        from: 'node-standby',
        to: 'node (new container)',
        stop: 'graceful',
        lockTakenMs: 1250,
        note: 'not aimed: swap: the new node starts after the stop'
      },
      { from: 'a', to: 'b', stop: 'graceful', lockTakenMs: 950, note: "not aimed: the standby's app id is not known" }
    )
    expect(summaryHandoffs(r.markdown('upgraded'))).toEqual([
      { stop: 'graceful', lockTakenMs: 108, aimed: true, swap: false, note: 'aimed (held 640 ms)' },
      {
        stop: 'graceful',
        lockTakenMs: 1250,
        aimed: false,
        swap: true,
        note: 'not aimed: swap: the new node starts after the stop'
      },
      {
        stop: 'graceful',
        lockTakenMs: 950,
        aimed: false,
        swap: false,
        note: "not aimed: the standby's app id is not known"
      }
    ])
  })
  it('is empty without a Handoffs table', () => {
    expect(summaryHandoffs('## chainlink-rollout: failed\n')).toEqual([])
  })
})
