#!/usr/bin/env bash
# `npm run bench [-- name...]`: brings the test bed up, then runs every bench in test/bench/
# (downtime.ts first, then the others by name), or only the named ones (`downtime`, `backup`).
# Each bench is a TypeScript file bundled by ncc (ESM, the repo's tsconfig; transpile-only, so
# one half-written file elsewhere in the repo does not stop the bench) and run on the
# action's own runtime, Node 24. Contract of a bench file: the Markdown report on stdout,
# progress on stderr. The reports are also kept as build/bench-<name>.md and, all together,
# build/bench.md. Env: BENCH_RUNS (runs per way, default 5), BENCH_ONLY (see downtime.ts).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
bash test/bed/up.sh || exit 1
# shellcheck source=../bed/env.sh
source test/bed/env.sh
mkdir -p build

names=()
if [ $# -gt 0 ]; then
  for n in "$@"; do
    n=${n%.ts}
    [ -f "test/bench/$n.ts" ] || { echo "[bench] no bench test/bench/$n.ts" >&2; exit 2; }
    names+=("$n")
  done
else
  [ -f test/bench/downtime.ts ] && names+=(downtime)
  for f in test/bench/*.ts; do
    n=$(basename "$f" .ts)
    [ "$n" = downtime ] || names+=("$n")
  done
fi

status=0
reports=()
for n in "${names[@]}"; do
  echo "[bench] $n: bundling test/bench/$n.ts" >&2
  rm -rf "build/bench-$n"
  if ! node_modules/.bin/ncc build "test/bench/$n.ts" -o "build/bench-$n" -q --transpile-only >&2; then
    echo "[bench] $n: bundling failed" >&2
    status=1
    continue
  fi
  echo "[bench] $n: running on $("$BED_NODE24" --version)" >&2
  BENCH_ROOT=$root "$BED_NODE24" "build/bench-$n/index.js" | tee "build/bench-$n.md"
  code=${PIPESTATUS[0]}
  if [ "$code" -ne 0 ]; then
    echo "[bench] $n: exit $code" >&2
    status=1
  fi
  reports+=("build/bench-$n.md")
done

{
  for r in "${reports[@]}"; do
    cat "$r"
    echo
  done
} >build/bench.md
echo "[bench] report: build/bench.md" >&2
exit "$status"
