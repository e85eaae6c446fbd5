#!/usr/bin/env bash
# Installs the real Renovate CLI from the npm registry into a cache directory outside the repo,
# once (idempotent: a second run with the same version does nothing). Renovate 44 needs Node
# ^24.11; the bed's Node 24 (test/bed/env.sh) runs it, npm itself may be any version.
# Prints the path of Renovate's entry point (dist/renovate.js) on stdout.
#   RENOVATE_PREFIX   where to install (default /opt/chainlink-rollout-renovate)
#   RENOVATE_VERSION  npm version spec (default 44.121.2, the version the research used)
set -euo pipefail
: "${RENOVATE_PREFIX:=/opt/chainlink-rollout-renovate}"
: "${RENOVATE_VERSION:=44.121.2}"
entry=$RENOVATE_PREFIX/node_modules/renovate/dist/renovate.js
pkg=$RENOVATE_PREFIX/node_modules/renovate/package.json
installed=""
[ -f "$pkg" ] && installed=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$pkg" | head -1)
if [ -f "$entry" ] && { [ "$installed" = "$RENOVATE_VERSION" ] || [ "$RENOVATE_VERSION" = latest ]; }; then
  echo "$entry"
  exit 0
fi
echo "[renovate] installing renovate@$RENOVATE_VERSION into $RENOVATE_PREFIX (takes ~2 min)" >&2
mkdir -p "$RENOVATE_PREFIX"
[ -f "$RENOVATE_PREFIX/package.json" ] || echo '{"name":"chainlink-rollout-renovate","private":true}' >"$RENOVATE_PREFIX/package.json"
# --ignore-scripts: native addons (re2) are optional; Renovate falls back to RegExp.
# --engine-strict=false: the npm running this may sit on an older Node than Renovate wants.
npm install --prefix "$RENOVATE_PREFIX" --no-audit --no-fund --ignore-scripts --engine-strict=false \
  --loglevel=error "renovate@$RENOVATE_VERSION" >&2
[ -f "$entry" ] || { echo "[renovate] install finished but $entry is missing" >&2; exit 1; }
echo "$entry"
