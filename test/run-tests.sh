#!/usr/bin/env bash
# All tests: brings up the bed (installs what is missing, starts dockerd, Postgres, the
# registry, builds the simulator images), then unit and integration tests on Node 24, the
# runtime of the action. Integration tests drive the committed dist/ as the runner does, so
# the bundle is rebuilt first when the source is newer.
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
status=0
"${jest[@]}" --selectProjects unit --json --outputFile=build/jest-unit.json || status=1
"${jest[@]}" --selectProjects integration --runInBand --json --outputFile=build/jest-integration.json "$@" || status=1
# one closing line for both runs, in the plain form CI reads
"$BED_NODE24" -e '
  let p = 0, f = 0, s = 0
  for (const file of process.argv.slice(1)) {
    try { const r = JSON.parse(require("fs").readFileSync(file, "utf8")); p += r.numPassedTests; f += r.numFailedTests; s += r.numPendingTests } catch { f += 1 }
  }
  console.log(`tests: ${p} passed, ${f} failed` + (s ? `, ${s} skipped` : ""))' build/jest-unit.json build/jest-integration.json
exit $status
