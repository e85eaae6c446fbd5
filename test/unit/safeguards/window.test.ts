import { describe, expect, it, test } from '@jest/globals'
import { describeOpening, isOpen, nextOpening, parseWindows, WindowError } from '../../../src/safeguards/window.js'

const at = (iso: string) => new Date(iso)

describe('parseWindows', () => {
  it('reads days, a time range and an IANA zone', () => {
    const [w] = parseWindows('Mon-Fri 08:00-18:00 Europe/Berlin')
    expect([...w.days]).toEqual([0, 1, 2, 3, 4])
    expect(w).toMatchObject({ start: 480, end: 1080, zone: 'Europe/Berlin' })
  })

  it('several windows, a single day, full names, wrapping ranges, daily, UTC by default, 24:00', () => {
    const ws = parseWindows('Sat 10:00-12:00 UTC, friday-Mon 22:00-02:00 America/New_York,daily 00:00-24:00')
    expect(ws).toHaveLength(3)
    expect([...ws[0].days]).toEqual([5])
    expect([...ws[1].days]).toEqual([4, 5, 6, 0])
    expect(ws[2]).toMatchObject({ start: 0, end: 1440, zone: 'UTC' })
    expect(parseWindows('  ')).toEqual([])
  })

  test.each([
    ['Mon-Fri 08:00-18:00 Mars/Olympus', /unknown time zone 'Mars\/Olympus'/],
    ['Mon-Fry 08:00-18:00', /unknown day 'Fry'/],
    ['Mon-Fri 8-18', /'8' .* is not a time like 08:00/],
    ['Mon-Fri 08:00-25:00', /not a time of day/],
    ['Mon-Fri 08:00', /not a time range/],
    ['Mon-Fri 08:00-08:00', /is empty/],
    ['08:00-18:00', /must look like/],
    ['Mon-Fri 08:00-18:00 UTC extra', /must look like/],
    ['Mon-Tue-Wed 08:00-18:00', /not a day or a range/],
    ['Mon 08:00-09:00,,Tue 08:00-09:00', /empty window/]
  ])('refuses %p', (text, message) => {
    expect(() => parseWindows(text)).toThrow(WindowError)
    expect(() => parseWindows(text)).toThrow(message)
  })
})

describe('isOpen / nextOpening', () => {
  const berlin = parseWindows('Mon-Fri 08:00-18:00 Europe/Berlin')

  it('no window: always open', () => {
    expect(isOpen([], at('2026-11-29T03:00:00Z'))).toBe(true)
  })

  it('judges the time in the window zone (CET is UTC+1 in winter, CEST UTC+2 in summer)', () => {
    expect(isOpen(berlin, at('2026-11-30T07:00:00Z'))).toBe(true) // Mon 08:00 CET
    expect(isOpen(berlin, at('2026-11-30T06:59:00Z'))).toBe(false)
    expect(isOpen(berlin, at('2026-11-30T16:59:00Z'))).toBe(true)
    expect(isOpen(berlin, at('2026-11-30T17:00:00Z'))).toBe(false) // end exclusive
    expect(isOpen(berlin, at('2026-07-06T06:00:00Z'))).toBe(true) // Mon 08:00 CEST
    expect(isOpen(berlin, at('2026-11-29T10:00:00Z'))).toBe(false) // Sunday
  })

  it('finds the next opening over a weekend and names it in the zone', () => {
    const now = at('2026-11-27T17:30:00Z') // Fri 18:30 Berlin
    const o = nextOpening(berlin, now)!
    expect(o.at.toISOString()).toBe('2026-11-30T07:00:00.000Z')
    expect(describeOpening(o, now)).toBe('Mon 08:00 Europe/Berlin (2026-11-30T07:00:00Z, in 2 d 13 h)')
  })

  it('a window past midnight is open in the morning after a listed day, not after another', () => {
    const [w] = parseWindows('Fri 22:00-02:00 UTC')
    expect(isOpen([w], at('2026-11-27T23:00:00Z'))).toBe(true) // Fri 23:00
    expect(isOpen([w], at('2026-11-28T01:59:00Z'))).toBe(true) // Sat 01:59
    expect(isOpen([w], at('2026-11-28T02:00:00Z'))).toBe(false)
    expect(isOpen([w], at('2026-11-27T01:00:00Z'))).toBe(false) // Fri 01:00: Thursday is not listed
  })

  it('over a DST change the opening is the real local time (America/New_York, 2026-03-08)', () => {
    const ws = parseWindows('Sun 03:00-04:00 America/New_York')
    const o = nextOpening(ws, at('2026-03-08T05:00:00Z'))! // 00:00 EST
    expect(o.at.toISOString()).toBe('2026-03-08T07:00:00.000Z') // 03:00 EDT
  })

  it('the first of several windows to open', () => {
    const ws = parseWindows('Mon-Fri 08:00-18:00 Europe/Berlin, Sat 10:00-11:00 UTC')
    expect(nextOpening(ws, at('2026-11-27T17:30:00Z'))!.at.toISOString()).toBe('2026-11-28T10:00:00.000Z')
  })
})
