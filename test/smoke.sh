#!/usr/bin/env bash
# The committed bundle, run as the runner runs it, on paths that need no Docker: a missing or
# malformed input must exit 1 with one ::error annotation (titled) naming the input.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/test/bed/env.sh"
node=${BED_NODE24:-node}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # expected-pattern env...
  local want=$1; shift
  : >"$tmp/out"; : >"$tmp/state"
  set +e
  out=$(env -i PATH="$PATH" GITHUB_OUTPUT="$tmp/out" GITHUB_STATE="$tmp/state" "$@" "$node" "$root/dist/index.js" 2>&1)
  code=$?
  set -e
  if [ $code -ne 1 ] || ! grep -q "^::error title=chainlink-rollout%3A input '[a-z-]*'::.*$want" <<<"$out"; then
    echo "smoke FAILED ($*): exit $code, output: $out" >&2; fail=1
  else
    echo "smoke ok: $(grep '^::error' <<<"$out")"
  fi
}
check "Input 'image' is required" INPUT_OPERATION=upgrade
check "Input 'operation' must be one of" INPUT_OPERATION=explode
check "Input 'stable-for'" INPUT_OPERATION=status INPUT_STABLE-FOR=soon
check "Input 'image' is not a valid image reference" INPUT_OPERATION=upgrade "INPUT_IMAGE=Foo Bar"
check "Input 'database-url'" INPUT_OPERATION=status INPUT_DATABASE-URL=mysql://x
check "Input 'container'" INPUT_OPERATION=status "INPUT_CONTAINER=bad name!"
exit $fail
