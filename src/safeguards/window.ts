// Upgrade windows: "Mon-Fri 08:00-18:00 Europe/Berlin", several separated by commas. Days are one
// day or a range (wrapping over the week end, "Fri-Mon"), times HH:MM in 24 h, the end exclusive
// ("24:00" is the end of the day; an end before the start runs past midnight into the next day),
// and the zone an IANA name resolved by Intl (UTC when left out). Pure: the caller passes `now`.

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const

export interface Window {
  /** the window as written */
  text: string
  /** 0 = Monday ... 6 = Sunday: days the window starts on */
  days: Set<number>
  /** minutes after local midnight */
  start: number
  end: number
  zone: string
}

export class WindowError extends Error {}

function day(s: string, text: string): number {
  // three-letter abbreviations and full names, any case
  const full = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday']
  const v = s.toLowerCase()
  const i = DAYS.indexOf(v as (typeof DAYS)[number]) >= 0 ? DAYS.indexOf(v as (typeof DAYS)[number]) : full.indexOf(v)
  if (i < 0) throw new WindowError(`unknown day '${s}' in '${text}' (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)`)
  return i
}

function minutes(s: string, text: string, isEnd: boolean): number {
  const m = /^(\d{1,2}):(\d{2})$/.exec(s)
  if (!m) throw new WindowError(`'${s}' in '${text}' is not a time like 08:00`)
  const h = Number(m[1])
  const min = Number(m[2])
  if (isEnd && h === 24 && min === 0) return 1440
  if (h > 23 || min > 59) throw new WindowError(`'${s}' in '${text}' is not a time of day (00:00 to 23:59)`)
  return h * 60 + min
}

function zoneOf(s: string, text: string): string {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: s }).resolvedOptions().timeZone
  } catch {
    throw new WindowError(`unknown time zone '${s}' in '${text}' (use an IANA name such as Europe/Berlin or UTC)`)
  }
}

function parseOne(text: string): Window {
  const parts = text.trim().split(/\s+/)
  if (parts.length < 2 || parts.length > 3)
    throw new WindowError(`'${text}' must look like 'Mon-Fri 08:00-18:00 Europe/Berlin' (days, time range, zone)`)
  const [daysText, range, zoneText] = parts
  const days = new Set<number>()
  if (/^(daily|\*)$/i.test(daysText)) for (let i = 0; i < 7; i++) days.add(i)
  else {
    const d = daysText.split('-')
    if (d.length > 2) throw new WindowError(`'${daysText}' in '${text}' is not a day or a range of days like Mon-Fri`)
    const a = day(d[0], text)
    const b = d.length === 2 ? day(d[1], text) : a
    for (let i = a; ; i = (i + 1) % 7) {
      days.add(i)
      if (i === b) break
    }
  }
  const r = range.split('-')
  if (r.length !== 2) throw new WindowError(`'${range}' in '${text}' is not a time range like 08:00-18:00`)
  const start = minutes(r[0], text, false)
  const end = minutes(r[1], text, true)
  if (start === end) throw new WindowError(`'${range}' in '${text}' is empty: start and end are the same`)
  return { text: text.trim(), days, start, end, zone: zoneText ? zoneOf(zoneText, text) : 'UTC' }
}

/** Parses the `window` input; throws WindowError naming what is wrong. Empty: no window. */
export function parseWindows(text: string): Window[] {
  if (!text.trim()) return []
  const ws = text.split(',').map((t) => t.trim())
  if (ws.some((w) => !w)) throw new WindowError(`'${text}' has an empty window between commas`)
  return ws.map(parseOne)
}

const formatters = new Map<string, Intl.DateTimeFormat>()

/** Weekday (0 = Monday) and minute of the day of an instant in a zone. */
function localTime(at: Date, zone: string): { weekday: number; minute: number } {
  let f = formatters.get(zone)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23'
    })
    formatters.set(zone, f)
  }
  const p = Object.fromEntries(f.formatToParts(at).map((x) => [x.type, x.value]))
  return {
    weekday: DAYS.indexOf(p.weekday.toLowerCase() as (typeof DAYS)[number]),
    minute: Number(p.hour) * 60 + Number(p.minute)
  }
}

function inWindow(w: Window, at: Date): boolean {
  const { weekday, minute } = localTime(at, w.zone)
  if (w.start < w.end) return w.days.has(weekday) && minute >= w.start && minute < w.end
  // past midnight: the evening of a listed day, or the morning after one
  return (w.days.has(weekday) && minute >= w.start) || (w.days.has((weekday + 6) % 7) && minute < w.end)
}

/** True when no window is set or `at` lies in one of them. */
export function isOpen(ws: Window[], at: Date): boolean {
  return ws.length === 0 || ws.some((w) => inWindow(w, at))
}

/** The first minute at or after `now` inside a window (DST-safe: steps real minutes). */
export function nextOpening(ws: Window[], now: Date): { at: Date; window: Window } | undefined {
  const t0 = Math.ceil(now.getTime() / 60_000) * 60_000
  for (let t = t0; t < t0 + 8 * 24 * 60 * 60_000; t += 60_000) {
    const at = new Date(t)
    const w = ws.find((x) => inWindow(x, at))
    if (w) return { at, window: w }
  }
  return undefined
}

/** "Mon 08:00 Europe/Berlin (2026-11-30T07:00:00Z, in 2 h 5 min)" */
export function describeOpening(o: { at: Date; window: Window }, now: Date): string {
  const f = new Intl.DateTimeFormat('en-GB', {
    timeZone: o.window.zone,
    weekday: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23'
  })
  const mins = Math.max(0, Math.round((o.at.getTime() - now.getTime()) / 60_000))
  const inText =
    mins >= 60 * 24
      ? `${Math.floor(mins / 1440)} d ${Math.floor((mins % 1440) / 60)} h`
      : mins >= 60
        ? `${Math.floor(mins / 60)} h ${mins % 60} min`
        : `${mins} min`
  return `${f.format(o.at).replace(',', '')} ${o.window.zone} (${o.at.toISOString().replace('.000', '')}, in ${inText})`
}
