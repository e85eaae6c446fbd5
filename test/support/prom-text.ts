// A strict reader of the Prometheus text exposition format (0.0.4) as node_exporter's textfile
// collector takes it: every line a comment (# HELP/# TYPE) or a sample, metric and label names
// by the format's grammar, label values escaped, values floats, no timestamps (the collector
// refuses them), HELP and TYPE at most once per family and before its samples, a family's
// samples together, no sample twice. Returns the problems (none: valid) and the samples.
export interface PromSample {
  name: string
  labels: Record<string, string>
  value: number
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*'
const VALUE = '(?:[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?|[+-]?Inf|NaN)'
const LABEL_PAIR = `${LABEL}="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL_PAIR})(?:,${LABEL_PAIR})*)?,?\\})? (${VALUE})$`)

export function readPromText(text: string): { problems: string[]; samples: PromSample[] } {
  const problems: string[] = []
  const samples: PromSample[] = []
  if (!text.endsWith('\n')) problems.push('does not end with a line feed')
  const help = new Set<string>()
  const type = new Map<string, string>()
  const done = new Set<string>()
  const seen = new Set<string>()
  let current = ''
  const family = (name: string) => {
    const base = name.replace(/_(bucket|sum|count)$/, '')
    return type.has(base) ? base : name
  }
  for (const [i, line] of text.replace(/\n$/, '').split('\n').entries()) {
    const at = `line ${i + 1}`
    let m: RegExpExecArray | null
    if ((m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line))) {
      if (help.has(m[1])) problems.push(`${at}: second HELP for ${m[1]}`)
      if (done.has(m[1]) || current === m[1]) problems.push(`${at}: HELP for ${m[1]} after its samples`)
      help.add(m[1])
    } else if ((m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      if (type.has(m[1])) problems.push(`${at}: second TYPE for ${m[1]}`)
      if (done.has(m[1]) || current === m[1]) problems.push(`${at}: TYPE for ${m[1]} after its samples`)
      type.set(m[1], m[2])
    } else if (line.startsWith('#')) {
      if (/^#\s*(HELP|TYPE)\b/.test(line)) problems.push(`${at}: malformed ${line}`)
    } else if ((m = SAMPLE.exec(line))) {
      const f = family(m[1])
      if (f !== current) {
        if (done.has(f)) problems.push(`${at}: samples of ${f} are not together`)
        if (current) done.add(current)
        current = f
      }
      if (type.get(f) === 'counter' && !m[1].endsWith('_total')) problems.push(`${at}: counter ${m[1]} without _total`)
      const labels: Record<string, string> = {}
      for (const p of (m[2] ?? '').matchAll(new RegExp(`(${LABEL})="((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"`, 'g'))) {
        if (p[1] in labels) problems.push(`${at}: label ${p[1]} twice`)
        labels[p[1]] = p[2].replace(/\\(.)/g, (_x, c: string) => (c === 'n' ? '\n' : c))
      }
      const key = `${m[1]}${JSON.stringify(Object.entries(labels).sort())}`
      if (seen.has(key)) problems.push(`${at}: sample ${m[1]} with the same labels twice`)
      seen.add(key)
      samples.push({ name: m[1], labels, value: Number(m[3]) })
    } else problems.push(`${at}: not a comment or a sample: ${JSON.stringify(line)}`)
  }
  return { problems, samples }
}
