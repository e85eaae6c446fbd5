#!/usr/bin/env bash
# `npm run soak -- --runs N --seed S [--only K]`: the fault campaign (test/soak/campaign.ts,
# docs/reliability.md "Fault campaign"). Brings the bed up, builds the action's bundle (the
# campaign drives dist/index.js as the runner does), bundles the campaign with ncc (transpile-only,
# as test/bench/run.sh does) and runs it on the action's runtime, Node 24. The table goes to
# stdout and build/soak.md; exit 1 on any invariant violation (or a run that could not be set up).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
bash test/bed/up.sh >&2 || exit 1
# shellcheck source=../bed/env.sh
source test/bed/env.sh
mkdir -p build
# the action's bundle only (the campaign drives dist/index.js; the CLI's is not needed)
node_modules/.bin/ncc build src/index.ts -o dist --license licenses.txt -q >&2 || {
  echo "[soak] bundling the action failed" >&2
  exit 1
}
rm -rf build/soak
node_modules/.bin/ncc build test/soak/campaign.ts -o build/soak -q --transpile-only >&2 || {
  echo "[soak] bundling the campaign failed" >&2
  exit 1
}
SOAK_ROOT=$root exec "$BED_NODE24" build/soak/index.js "$@"
