#!/usr/bin/env bash
# Simulator images (test/node-sim): one per node version and one per fault, pushed to the bed's
# registry as $BED_REGISTRY/smartcontract/chainlink:<tag>. Nothing can be pulled from the
# internet, so the root filesystem is assembled here (the host's node binary, the shared libraries
# ldd lists, the ncc bundle as /usr/local/bin/chainlink, a minimal /etc) and loaded with
# `docker import`; a classic `docker build` FROM that base adds /sim/version, /sim/fault and the
# HEALTHCHECK, which docker import cannot set. The HEALTHCHECK keeps Docker's defaults (interval
# 30 s, timeout 30 s, retries 3, no start period), as core/chainlink.Dockerfile's does. Idempotent: every image carries a label with a
# hash of the simulator's sources, and a tag whose registry copy has the same hash is skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=./env.sh
source "$here/env.sh"
log() { printf '[bed] images: %s\n' "$*" >&2; }
t0=$(date +%s%N)

repo=${BED_SIM_REPO:-smartcontract/chainlink}   # another repo keeps a simulator under development apart from the main bed
label=org.chainlink-rollout.sim-hash
sim_node=${BED_SIM_NODE:-/usr/bin/node}   # the node binary inside the images (any glibc build works)
# tag version fault
tags=(
  "1.2.0 1.2.0 -"
  "1.13.0 1.13.0 -"
  "2.18.0 2.18.0 -"
  "2.19.0 2.19.0 -"
  "2.20.0 2.20.0 -"
)
for f in crash-before-lock never-ready migrate-then-crash slow-migrations ignore-sigterm exit-after-lock lose-db \
  new-check-fails migration-fails; do
  tags+=("2.20.0-$f 2.20.0 $f")
done

mkdir -p "$BED_DIR"
exec 9>"$BED_DIR/images.lock"
flock 9 # one build at a time

# The hash covers everything that ends up in an image.
hash=$({
  cd "$root"
  cat test/node-sim/*.js test/node-sim/package.json test/bed/images.sh
  for p in pg pg-pool pg-protocol smol-toml semver; do node -p "require('./node_modules/$p/package.json').version" 2>/dev/null || echo "$p?"; done
  "$sim_node" --version
  printf '%s\n' "${tags[@]}"
} | sha256sum | cut -c1-16)

# Which tags the registry lacks, or holds from other sources (labels read from the image config).
stale=$(node - "$BED_REGISTRY" "$repo" "$label" "$hash" "${tags[@]%% *}" <<'JS'
const [reg, repo, label, hash, ...tags] = process.argv.slice(2)
const accept = 'application/vnd.docker.distribution.manifest.v2+json'
const labelOf = async (tag) => {
  const m = await fetch(`http://${reg}/v2/${repo}/manifests/${tag}`, { headers: { accept } })
  if (!m.ok) return ''
  const cfg = await (await fetch(`http://${reg}/v2/${repo}/blobs/${(await m.json()).config.digest}`)).json()
  return cfg.config?.Labels?.[label] ?? ''
}
Promise.all(tags.map(async (t) => ((await labelOf(t).catch(() => '')) === hash ? '' : t))).then((r) =>
  console.log(r.filter(Boolean).join(' '))
)
JS
)

built=()
pulled=()
if [ -n "$stale" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  base="chainlink-sim-base:$hash"
  if ! docker image inspect "$base" >/dev/null 2>&1; then
    (cd "$root" && npx --no-install ncc build test/node-sim/chainlink.js -o "$work/bundle" >/dev/null 2>&1) ||
      { log "ncc build of test/node-sim failed"; exit 1; }
    rootfs=$work/rootfs
    mkdir -p "$rootfs"/{usr/local/bin,etc,tmp,sim,home/chainlink}
    cp "$sim_node" "$rootfs/usr/local/bin/node"
    for lib in $(ldd "$sim_node" | grep -o '/[^ ]*'); do cp -L --parents "$lib" "$rootfs"; done
    { echo '#!/usr/local/bin/node'; sed '1{/^#!/d}' "$work/bundle/index.js"; } >"$rootfs/usr/local/bin/chainlink"
    chmod 755 "$rootfs/usr/local/bin/chainlink"
    # Release images run as user chainlink, uid 14933, in /home/chainlink (chainlink-node.md §8)
    printf 'root:x:0:0:root:/root:/sbin/nologin\nchainlink:x:14933:14933::/home/chainlink:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nchainlink:x:14933:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
    printf '127.0.0.1 localhost\n::1 localhost\n' >"$rootfs/etc/hosts"
    printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
    chmod 1777 "$rootfs/tmp"
    chown 14933:14933 "$rootfs/home/chainlink"
    tar -C "$rootfs" --numeric-owner -c . | docker import \
      --change 'ENTRYPOINT ["chainlink"]' --change 'CMD ["local","node"]' --change 'EXPOSE 6688' \
      --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'ENV HOME=/home/chainlink' \
      --change 'USER chainlink' --change 'WORKDIR /home/chainlink' \
      - "$base" >/dev/null
    log "imported base $base ($(du -sh "$rootfs" | cut -f1) root filesystem)"
  fi
  for entry in "${tags[@]}"; do
    read -r tag version fault <<<"$entry"
    case " $stale " in *" $tag "*) ;; *) continue ;; esac
    ref="$BED_REGISTRY/$repo:$tag"
    # The registry lost it but the local image is current (or the other way round): push/pull only.
    if [ "$(docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$ref" 2>/dev/null)" != "$hash" ]; then
      ctx=$work/ctx-$tag
      mkdir -p "$ctx/sim"
      echo "$version" >"$ctx/sim/version"
      [ "$fault" = - ] || echo "$fault" >"$ctx/sim/fault"
      cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $base
COPY sim/ /sim/
LABEL $label=$hash org.opencontainers.image.version=$version org.chainlink-rollout.sim-fault=${fault#-}
HEALTHCHECK CMD ["chainlink","health-probe"]
DOCKERFILE
      # The legacy builder needs no BuildKit and pulls nothing: FROM is the local base image.
      DOCKER_BUILDKIT=0 docker build -q -t "$ref" "$ctx" >"$work/build.log" 2>&1 ||
        { cat "$work/build.log" >&2; log "docker build of $tag failed"; exit 1; }
    fi
    docker push "$ref" >/dev/null
    built+=("$tag")
  done
  # Drop this script's older images (unused ones only; docker refuses to remove images in use).
  for old in $(docker images chainlink-sim-base --format '{{.Tag}}'); do
    [ "$old" = "$hash" ] || docker rmi "chainlink-sim-base:$old" >/dev/null 2>&1 || true
  done
  docker image prune -f --filter "label=$label" >/dev/null 2>&1 || true
fi

# Registry current but the local copy missing or old (e.g. after an image prune): pull it.
for entry in "${tags[@]}"; do
  read -r tag _ _ <<<"$entry"
  ref="$BED_REGISTRY/$repo:$tag"
  if [ "$(docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$ref" 2>/dev/null)" != "$hash" ]; then
    docker pull -q "$ref" >/dev/null
    pulled+=("$tag")
  fi
done

ms=$((($(date +%s%N) - t0) / 1000000))
secs=$((ms / 1000)).$(printf '%03d' $((ms % 1000)))
if [ ${#built[@]} -eq 0 ] && [ ${#pulled[@]} -eq 0 ]; then
  log "all ${#tags[@]} tags up to date (sim hash $hash) in ${secs}s"
else
  [ ${#built[@]} -eq 0 ] || log "built and pushed ${built[*]} (sim hash $hash)"
  [ ${#pulled[@]} -eq 0 ] || log "pulled ${pulled[*]} from $BED_REGISTRY"
  log "done in ${secs}s"
fi
