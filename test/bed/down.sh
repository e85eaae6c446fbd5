#!/usr/bin/env bash
# Stops what up.sh started (by the pids it recorded), nothing else.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
if [ -f "$BED_DIR/pg/postmaster.pid" ]; then
  runuser -u postgres -- "/usr/lib/postgresql/$BED_PG_MAJOR/bin/pg_ctl" -D "$BED_DIR/pg" -m fast stop >/dev/null 2>&1 || true
fi
for svc in podman registry dockerd; do
  f=$BED_DIR/$svc.pid
  [ -f "$f" ] || continue
  pid=$(cat "$f"); kill "$pid" 2>/dev/null && echo "[bed] stopped $svc ($pid)"; rm -f "$f"
done
