#!/usr/bin/env bash
# The demo: a simulated Chainlink node in the docs' layout (bridge network, 6688 published on
# 127.0.0.1) upgraded for real by the committed bundle, run exactly as the GitHub runner runs
# it, while a prober watches the node's port. Prints the job summary. Cleans up after itself.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/test/bed/up.sh"
source "$root/test/bed/env.sh"
gateway=$(ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1)
from=${DEMO_FROM:-2.18.0}
to=${DEMO_TO:-2.19.0}
name=chainlink-demo
db=demo_$(date +%s)
work=$(mktemp -d)
export PGPASSWORD=$BED_PG_PASSWORD
psql_admin() { psql -h 127.0.0.1 -p "$BED_PG_PORT" -U "$BED_PG_USER" -d postgres -qAt "$@"; }
cleanup() {
  docker rm -f "$name" "$name-rollout-next" "$name-rollout-previous" >/dev/null 2>&1 || true
  psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
cleanup; work=$(mktemp -d)
psql_admin -c "CREATE DATABASE $db"
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
echo "== starting $name on $BED_REGISTRY/smartcontract/chainlink:$from, UI on 127.0.0.1:$port"
docker run -d --name "$name" --restart unless-stopped -p "127.0.0.1:$port:6688" \
  -e "CL_DATABASE_URL=postgres://$BED_PG_USER:$BED_PG_PASSWORD@$gateway:$BED_PG_PORT/$db?sslmode=disable" \
  "$BED_REGISTRY/smartcontract/chainlink:$from" >/dev/null
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
echo "== $name is ready; upgrading to $to with chainlink-rollout (dist/index.js on Node 24)"
: >"$work/output"; : >"$work/state"; : >"$work/summary"
env "INPUT_OPERATION=upgrade" "INPUT_CONTAINER=$name" "INPUT_IMAGE=$BED_REGISTRY/smartcontract/chainlink:$to" \
  "INPUT_STATE-DIR=$work/state-dir" "INPUT_BACKUP-DIR=$work/backups" "INPUT_STABLE-FOR=5s" \
  GITHUB_OUTPUT="$work/output" GITHUB_STATE="$work/state" GITHUB_STEP_SUMMARY="$work/summary" \
  "$BED_NODE24" "$root/dist/index.js" | grep -v '^::add-mask::'
code=${PIPESTATUS[0]}
echo; echo "== job summary"; cat "$work/summary"
echo; echo "== outputs"; grep -v '^ghadelimiter' "$work/output" | paste -sd' ' | sed 's/<<ghadelimiter_[^ ]*//g'
echo; echo "== after: $(docker ps --filter "name=^$name" --format '{{.Names}} {{.Image}} {{.Ports}}')"
echo "== 127.0.0.1:$port/readyz -> $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")"
exit "$code"
