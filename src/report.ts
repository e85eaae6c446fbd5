// The job summary: what was done, when, with which evidence. Built as plain data during the
// run, rendered once at the end (also after a failure) as Markdown.
import { formatMs } from './duration.js'

interface TimelineEntry {
  at: number
  step: string
  detail?: string
}

interface Gate {
  name: string
  passed: boolean
  detail: string
}

interface Handoff {
  from: string
  to: string
  gapMs?: number
  /** how the old leader went: graceful, killed */
  stop: string
  lockTakenMs?: number
  /** whether the stop was aimed at the standby's lock poll (and why not), or what the wait was */
  note?: string
}

export class Report {
  title = 'chainlink-rollout'
  readonly started = Date.now()
  readonly facts: Array<[string, string]> = []
  readonly timeline: TimelineEntry[] = []
  readonly gates: Gate[] = []
  readonly handoffs: Handoff[] = []
  readonly logs: Array<{ container: string; text: string }> = []
  readonly notes: string[] = []
  tables: Array<{ heading: string; header: string[]; rows: string[][] }> = []

  constructor(private readonly sink?: (line: string) => void) {}

  fact(name: string, value: string): void {
    const i = this.facts.findIndex(([n]) => n === name)
    if (i >= 0) this.facts[i] = [name, value]
    else this.facts.push([name, value])
  }

  step(step: string, detail?: string): void {
    this.timeline.push({ at: Date.now(), step, detail })
    this.sink?.(`${step}${detail ? `: ${detail}` : ''}`)
  }

  gate(name: string, passed: boolean, detail: string): void {
    this.gates.push({ name, passed, detail })
    this.sink?.(`gate ${name}: ${passed ? 'passed' : 'FAILED'} (${detail})`)
  }

  note(text: string): void {
    this.notes.push(text)
    this.sink?.(text)
  }

  markdown(result?: string): string {
    const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, '<br>')
    const out: string[] = [`## ${this.title}${result ? `: ${result}` : ''}`, '']
    if (this.facts.length) {
      out.push('| | |', '|---|---|', ...this.facts.map(([k, v]) => `| ${esc(k)} | ${esc(v)} |`), '')
    }
    for (const t of this.tables) {
      out.push(
        `### ${t.heading}`,
        '',
        `| ${t.header.join(' | ')} |`,
        `|${t.header.map(() => '---').join('|')}|`,
        ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
        ''
      )
    }
    if (this.handoffs.length) {
      out.push(
        '### Handoffs',
        '',
        '| from | to | stop | lock taken after | leader gap | note |',
        '|---|---|---|---|---|---|'
      )
      for (const h of this.handoffs)
        out.push(
          `| ${esc(h.from)} | ${esc(h.to)} | ${h.stop} | ${h.lockTakenMs !== undefined ? formatMs(h.lockTakenMs) : '-'} | ${h.gapMs !== undefined ? formatMs(h.gapMs) : '-'} | ${esc(h.note ?? '')} |`
        )
      out.push('')
    }
    if (this.gates.length) {
      out.push(
        '### Gates',
        '',
        '| gate | result | evidence |',
        '|---|---|---|',
        ...this.gates.map((g) => `| ${esc(g.name)} | ${g.passed ? 'passed' : '**failed**'} | ${esc(g.detail)} |`),
        ''
      )
    }
    if (this.timeline.length) {
      out.push('### Timeline', '', '| t | step | detail |', '|---|---|---|')
      for (const e of this.timeline)
        out.push(`| +${((e.at - this.started) / 1000).toFixed(2)} s | ${esc(e.step)} | ${esc(e.detail ?? '')} |`)
      out.push('')
    }
    if (this.notes.length) out.push(...this.notes.map((n) => `> ${n}`), '')
    for (const l of this.logs)
      out.push(
        `<details><summary>Last log lines of ${l.container}</summary>`,
        '',
        '```',
        l.text.trimEnd(),
        '```',
        '</details>',
        ''
      )
    return out.join('\n')
  }
}
