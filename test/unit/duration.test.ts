import { describe, expect, test } from '@jest/globals'
import { formatMs, parseDuration, parseGoDuration } from '../../src/duration.js'

describe('parseDuration (action inputs)', () => {
  test.each([
    ['1500ms', 1500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['45', 45_000],
    ['2.5', 2500],
    ['0', 0],
    ['0.5s', 500],
    ['1.5m', 90_000],
    ['  30s  ', 30_000],
    ['30 s', 30_000],
    ['0.0004', 0]
  ])('%j -> %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms))

  test.each([
    '',
    ' ',
    'ms',
    's',
    '-1',
    '-5s',
    '+5s',
    '1,5s',
    '.5',
    '5.',
    '5d',
    '10S',
    '5 min',
    '1m30s',
    '1e3',
    'NaN',
    'Infinity',
    '0x10',
    '30s extra'
  ])('%j is not a duration', (text) => {
    expect(parseDuration(text)).toBeUndefined()
  })
})

describe('parseGoDuration (the node own settings)', () => {
  test.each([
    ['10s', 10_000],
    ['1m30s', 90_000],
    ['500ms', 500],
    ['1h2m3s', 3_723_000],
    ['1.5s', 1500],
    ['2m', 120_000],
    ['250000us', 250],
    ['250000µs', 250],
    ['1000000ns', 1],
    [' 10s ', 10_000],
    // plain numbers are read as seconds, like the action's inputs
    ['45', 45_000]
  ])('%j -> %d ms', (text, ms) => expect(parseGoDuration(text)).toBe(ms))

  test.each(['', '   ', 'ten seconds', '10x', '1m30', 's10', '10s5', 'x10s', '10s 5m', '-10s', '10 s5m'])(
    '%j is not a duration',
    (text) => {
      expect(parseGoDuration(text)).toBeUndefined()
    }
  )
})

describe('formatMs', () => {
  test.each([
    [0, '0 ms'],
    [12.4, '12 ms'],
    [999, '999 ms'],
    [1000, '1.00 s'],
    [1234, '1.23 s'],
    [119_990, '119.99 s'],
    [120_000, '2.0 min'],
    [754_000, '12.6 min']
  ])('%d -> %s', (ms, text) => expect(formatMs(ms)).toBe(text))
})
