#!/usr/bin/env bash
# Podman for test/integration/podman.test.ts (docs/podman.md), idempotent: Debian's podman (4.3
# on Debian 12), set up for a machine without systemd, and its Docker-compatible API served on a
# socket of the bed's own ($BED_PODMAN_SOCK), never Podman's default one. Prints "started <pid>"
# when it started the service (the pid is also in $BED_DIR/podman.pid; down.sh stops it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=./env.sh
source "$here/env.sh"
log() { printf '[bed] podman: %s\n' "$*" >&2; }
mkdir -p "$BED_DIR"

if ! command -v podman >/dev/null; then
  log "installing podman"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq podman >/dev/null
fi

# No systemd here: cgroupfs and file events. No CAP_SYS_RESOURCE: Podman's default ulimits
# (nofile, nproc at the host's hard limits) fail every start in runc, lower ones work.
conf=/etc/containers/containers.conf.d/50-chainlink-rollout-bed.conf
if [ ! -f "$conf" ]; then
  mkdir -p "$(dirname "$conf")"
  cat >"$conf" <<CONF
# chainlink-rollout test bed (test/bed/podman.sh)
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
fi
# The bed's registry is plain HTTP: the action's pulls through the compat API need it marked.
reg=/etc/containers/registries.conf.d/50-chainlink-rollout-bed.conf
if [ ! -f "$reg" ]; then
  mkdir -p "$(dirname "$reg")"
  printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$BED_REGISTRY" >"$reg"
fi

answers() { curl -fsS --max-time 20 --unix-socket "$BED_PODMAN_SOCK" http://podman/v1.41/version >/dev/null 2>&1; }
if ! answers; then
  # a service of ours that is alive but slow keeps its socket: a second one would take the path
  # from it and leave it serving nobody
  old=$(cat "$BED_DIR/podman.pid" 2>/dev/null || true)
  if [ -n "$old" ] && grep -qa 'system.service' "/proc/$old/cmdline" 2>/dev/null; then
    log "the service (pid $old) does not answer on $BED_PODMAN_SOCK; stop it (kill $old) and run again"
    exit 1
  fi
  log "starting podman system service on $BED_PODMAN_SOCK"
  mkdir -p "$(dirname "$BED_PODMAN_SOCK")"
  rm -f "$BED_PODMAN_SOCK"
  nohup podman --cgroup-manager=cgroupfs --events-backend=file system service --time=0 \
    "unix://$BED_PODMAN_SOCK" >"$BED_DIR/podman.log" 2>&1 &
  pid=$!
  echo "$pid" >"$BED_DIR/podman.pid"
  for _ in $(seq 1 40); do answers && break; sleep 0.25; done
  answers || { tail -20 "$BED_DIR/podman.log" >&2; log "the service did not answer"; exit 1; }
  echo "started $pid"
fi
