import { describe, expect, it } from '@jest/globals'
import { Report } from '../../src/report.js'

/** Rows of the Markdown table under `### heading`, as arrays of cells (pipes escaped as \|). */
function table(md: string, heading: string): string[][] {
  const lines = md.split('\n')
  const i = lines.indexOf(`### ${heading}`)
  if (i < 0) return []
  const rows: string[][] = []
  for (const l of lines.slice(i + 2)) {
    if (!l.startsWith('|')) break
    rows.push(
      l
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim())
    )
  }
  return rows.slice(2) // header and separator
}

function factsTable(md: string): string[][] {
  const lines = md.split('\n')
  const i = lines.indexOf('| | |')
  const rows: string[][] = []
  for (const l of lines.slice(i + 2)) {
    if (!l.startsWith('|')) break
    rows.push(
      l
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim())
    )
  }
  return rows
}

describe('Report.markdown', () => {
  it('title with the result', () => {
    expect(new Report().markdown('upgraded').split('\n')[0]).toBe('## chainlink-rollout: upgraded')
    expect(new Report().markdown().split('\n')[0]).toBe('## chainlink-rollout')
  })

  it('facts in a table, a repeated fact replaced in place', () => {
    const r = new Report()
    r.fact('Leader', 'chainlink (2.18.0)')
    r.fact('Image', 'smartcontract/chainlink:2.19.0@sha256:abc')
    r.fact('Leader', 'chainlink (2.19.0)')
    expect(factsTable(r.markdown())).toEqual([
      ['Leader', 'chainlink (2.19.0)'],
      ['Image', 'smartcontract/chainlink:2.19.0@sha256:abc']
    ])
  })

  it('handoffs with lock time, leader gap and whether the stop was aimed', () => {
    const r = new Report()
    r.handoffs.push({
      from: 'chainlink',
      to: 'chainlink-next',
      stop: 'graceful',
      lockTakenMs: 412,
      gapMs: 2345,
      note: 'aimed (held 812 ms)'
    })
    r.handoffs.push({ from: 'chainlink-next', to: 'chainlink', stop: 'killed', note: 'not aimed: swap' })
    expect(table(r.markdown(), 'Handoffs')).toEqual([
      ['chainlink', 'chainlink-next', 'graceful', '412 ms', '2.35 s', 'aimed (held 812 ms)'],
      ['chainlink-next', 'chainlink', 'killed', '-', '-', 'not aimed: swap']
    ])
  })

  it('gates: passed and failed, with evidence', () => {
    const r = new Report()
    r.gate('standby-ready', true, 'session of 2.19.0, waiting for the lease')
    r.gate('health', false, '/readyz 503 for 10m')
    const md = r.markdown('rolled-back')
    expect(table(md, 'Gates')).toEqual([
      ['standby-ready', 'passed', 'session of 2.19.0, waiting for the lease'],
      ['health', '**failed**', '/readyz 503 for 10m']
    ])
  })

  it('timeline in order, relative to the start, with details', () => {
    const r = new Report()
    r.step('preflight')
    r.step('standby started', 'chainlink-next on 127.0.0.1:40123')
    const rows = table(r.markdown(), 'Timeline')
    expect(rows.map((x) => x.slice(1))).toEqual([
      ['preflight', ''],
      ['standby started', 'chainlink-next on 127.0.0.1:40123']
    ])
    for (const [t] of rows) expect(t).toMatch(/^\+\d+\.\d\d s$/)
  })

  it('pipes and newlines in values cannot break a table', () => {
    const r = new Report()
    r.fact('Command', 'node | tee log')
    r.gate('health', false, 'line one\nline | two')
    r.step('db rollback', 'a|b')
    r.tables.push({ heading: 'Backups', header: ['file', 'size'], rows: [['x|y.dump', '1 MB']] })
    const md = r.markdown()
    expect(factsTable(md)).toEqual([['Command', 'node \\| tee log']])
    expect(table(md, 'Gates')).toEqual([['health', '**failed**', 'line one<br>line \\| two']])
    expect(table(md, 'Timeline')[0].slice(1)).toEqual(['db rollback', 'a\\|b'])
    expect(table(md, 'Backups')).toEqual([['x\\|y.dump', '1 MB']])
    // every table row has exactly its columns
    for (const l of md.split('\n').filter((l) => l.startsWith('| '))) {
      const cells = l.slice(1, -1).split(/(?<!\\)\|/)
      expect([2, 3, 5]).toContain(cells.length)
    }
  })

  it('logs of containers go in collapsed details, fenced', () => {
    const r = new Report()
    r.logs.push({
      container: 'chainlink-next',
      text: '[INFO] Another application is currently holding the database lease\n[CRIT] exiting\n\n'
    })
    const md = r.markdown('rolled-back')
    const i = md.indexOf('<details><summary>Last log lines of chainlink-next</summary>')
    expect(i).toBeGreaterThan(0)
    expect(md.slice(i)).toContain(
      '```\n[INFO] Another application is currently holding the database lease\n[CRIT] exiting\n```\n</details>'
    )
  })

  it('notes are quoted', () => {
    const r = new Report()
    r.note('the backup was skipped (backup: false)')
    expect(r.markdown()).toContain('> the backup was skipped (backup: false)')
  })

  it('empty sections are left out', () => {
    const md = new Report().markdown('unchanged')
    for (const h of ['### Handoffs', '### Gates', '### Timeline', '<details>', '| | |']) expect(md).not.toContain(h)
  })

  it('steps, gates and notes are also streamed to the log as they happen', () => {
    const lines: string[] = []
    const r = new Report((l) => lines.push(l))
    r.step('standby started', 'chainlink-next')
    r.gate('health', false, '/readyz 503')
    r.note('rolled back')
    r.fact('x', 'y')
    expect(lines).toEqual(['standby started: chainlink-next', 'gate health: FAILED (/readyz 503)', 'rolled back'])
  })
})
