#!/usr/bin/env bash
# All tests: brings up the bed (installs what is missing, starts dockerd, Postgres, the
# registry, builds the simulator images), then unit and integration tests on Node 24, the
# runtime of the action. Integration tests drive the committed dist/ as the runner does, so
# the bundle is rebuilt first when the source is newer.
#
# The integration files run side by side, ITG_WORKERS jest workers (default 5) even on 2 cores,
# the unit run beside them: their time is mostly waiting (boots, lease expiries, health gates,
# stable-for), not CPU. The fault matrix also runs FM_CONCURRENCY rows at once (default 2), and a
# few files run their own tests side by side (test/support/pool.ts). The longest files start first
# (test/support/sequencer.cjs). This holds only while every test is isolated, the rule for every
# new test file (test/support/bed.ts):
#   - names from uniqueName(): containers, databases, image tags, networks, volumes; cleanup and
#     "nothing left / nothing changed" checks filter by that prefix (or a label), never the
#     whole host's `docker ps`, volumes or databases, which other files change meanwhile;
#   - its own state-dir, backup-dir and temp dirs (mkdtemp), host ports from freePort();
#   - nothing host-wide restarted or reconfigured (dockerd, Postgres, the registry, images).
# ITG_WORKERS=1 runs them in band, one at a time, as before.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash test/bed/up.sh
source test/bed/env.sh
jest=("$BED_NODE24" --experimental-vm-modules node_modules/jest/bin/jest.js --forceExit)
export NODE_NO_WARNINGS=1
if [ ! -f dist/index.js ] || [ -n "$(find src -newer dist/index.js -name '*.ts' | head -1)" ]; then
  echo "[test] src/ is newer than dist/: rebuilding the bundle"
  npm run bundle >/dev/null
fi
mkdir -p build
workers=${ITG_WORKERS:-5}
export FM_CONCURRENCY=${FM_CONCURRENCY:-2}
status=0
# The unit run goes beside the integration run, on one worker, its output shown at the end: it is a
# minute of mostly real-time waits (the orchestration tests' health gates), and would otherwise
# come before the integration run's first file.
unit() {
  local t=$SECONDS rc=0
  "${jest[@]}" --selectProjects unit --maxWorkers=1 --json --outputFile=build/jest-unit.json >build/jest-unit.log 2>&1 || rc=1
  echo "[test] unit $((SECONDS - t)) s, beside the integration run" >>build/jest-unit.log
  return $rc
}
t0=$SECONDS
unit &
unit_pid=$!
"${jest[@]}" --selectProjects integration --maxWorkers="$workers" --json --outputFile=build/jest-integration.json "$@" ||
  status=1
echo "[test] integration $((SECONDS - t0)) s on $workers workers"
wait "$unit_pid" || status=1
cat build/jest-unit.log
echo "[test] unit and integration: $((SECONDS - t0)) s"
# one closing line for both runs, in the plain form CI reads
"$BED_NODE24" -e '
  let p = 0, f = 0, s = 0
  for (const file of process.argv.slice(1)) {
    try { const r = JSON.parse(require("fs").readFileSync(file, "utf8")); p += r.numPassedTests; f += r.numFailedTests; s += r.numPendingTests } catch { f += 1 }
  }
  console.log(`tests: ${p} passed, ${f} failed` + (s ? `, ${s} skipped` : ""))' build/jest-unit.json build/jest-integration.json
exit $status
