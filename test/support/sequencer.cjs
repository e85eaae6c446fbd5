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

/** Seconds per file on the 2-core bed: the CI run of 2026-12-04 (4 workers), and for
 *  fault-real, gates and bad-inputs, which now run their own tests side by side, the file alone
 *  on the same bed. Every integration file is listed: a file missing here starts first in CI,
 *  where no report exists; once the long files were missing they started last, 9 minutes into
 *  the run, and it took 21 minutes (test/unit/bed/sequencer.test.ts keeps the table complete). */
const SECONDS = {
  'fault-matrix.test.ts': 461,
  'fault-real.test.ts': 374,
  'port-holder.test.ts': 281,
  'upgrade.test.ts': 268,
  'safety.test.ts': 248,
  'ops.test.ts': 246,
  'modes-pairs.test.ts': 232,
  'sim.test.ts': 189,
  'bad-inputs.test.ts': 131,
  'sessions.test.ts': 129,
  'down-migration.test.ts': 119,
  'repair-again.test.ts': 113,
  'hosts.test.ts': 111,
  'hosts-upgrade.test.ts': 240,
  'hosts-back.test.ts': 125,
  'lingering-session.test.ts': 70,
  'restore-atomic.test.ts': 110,
  'gates.test.ts': 104,
  'downgrade.test.ts': 101,
  'backup-ops.test.ts': 94,
  'podman.test.ts': 88,
  'foreign-node.test.ts': 82,
  'renovate.test.ts': 81,
  'host-lock.test.ts': 79,
  'cli.test.ts': 77,
  'backup-owner.test.ts': 73,
  'restore-owner.test.ts': 73,
  'other-updaters.test.ts': 65,
  'health-routes.test.ts': 60,
  'backup.test.ts': 46,
  'host-db-reach.test.ts': 45,
  'notify.test.ts': 43,
  'security.test.ts': 40,
  'leak.test.ts': 32,
  'compose.test.ts': 30,
  'cli-usage.test.ts': 24,
  'target-pinned.test.ts': 22,
  'sim-reconnect.test.ts': 22,
  'status.test.ts': 16,
  'restore-keep.test.ts': 16,
  'bundle-licenses.test.ts': 1
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
module.exports.SECONDS = SECONDS
