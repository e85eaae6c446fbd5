'use strict'
// Order of the test files for jest's workers: longest first, so that the long integration files
// (the fault matrix, the 60 s stable-for gates) start at once and the short ones fill the other
// workers around them; a long file started last would be the whole run's tail.
// The durations come from the last run's report (build/jest-*.json, written by test/run-tests.sh),
// else from SECONDS below (a fresh checkout, as in CI). A file in neither (a new one) starts
// before all of them: a short one costs nothing there, a long one started last would. A new
// integration file that takes over a minute belongs in SECONDS.
const { readFileSync } = require('node:fs')
const { basename, join } = require('node:path')
const Sequencer = require('@jest/test-sequencer').default

/** Seconds per file in band on the 2-core bed (build/jest-integration.json, 2026-11-30). */
const SECONDS = {
  'fault-matrix.test.ts': 437,
  'gates.test.ts': 303,
  'safety.test.ts': 216,
  'upgrade.test.ts': 198,
  'modes-pairs.test.ts': 187,
  'sim.test.ts': 164,
  'sessions.test.ts': 91,
  'ops.test.ts': 84,
  'bad-inputs.test.ts': 70,
  'backup-ops.test.ts': 47,
  'renovate.test.ts': 44,
  'cli.test.ts': 38
}

function lastRun(root) {
  const out = {}
  for (const f of ['jest-integration.json', 'jest-unit.json']) {
    try {
      const r = JSON.parse(readFileSync(join(root, 'build', f), 'utf8'))
      for (const t of r.testResults ?? []) if (t.endTime > t.startTime) out[t.name] = (t.endTime - t.startTime) / 1000
    } catch {
      // no report yet
    }
  }
  return out
}

class LongestFirst extends Sequencer {
  sort(tests) {
    const sorted = super.sort(tests)
    const root = sorted[0]?.context.config.rootDir ?? process.cwd()
    const last = lastRun(root)
    const seconds = (t) => last[t.path] ?? SECONDS[basename(t.path)] ?? 1e9
    return [...sorted].sort((a, b) => seconds(b) - seconds(a))
  }
}

module.exports = LongestFirst
