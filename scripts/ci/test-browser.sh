#!/usr/bin/env bash
# Real-browser test: headless Chromium (Debian's) opens a page served by a Python http.server on
# one loopback origin; the page shows a grid of <img> previews from orthanc-edge on another
# origin, with a real Orthanc behind the edge. Once with signed links, once with a session
# cookie, once without credentials (tests/browser/grid.test.mjs has the assertions). Then
# scripts/demo.sh, whose printed grid URL Chromium must show whole (tests/browser/demo.test.mjs).
#
#   scripts/ci/it-orthanc.sh scripts/ci/test-browser.sh     # standalone
#   scripts/ci/test-browser.sh                           # inside scripts/test.sh (Orthanc env set)
#
# Needs ORTHANC_EDGE_IT_URL/_USER/_PASSWORD/_MANIFEST, chromium, node >= 20 (scripts/ci/setup-deps.sh
# browser). Screenshots (kept as test artifacts) go to $SHOT_DIR, default target/test-artifacts. Starts and stops its own processes.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
: "${ORTHANC_EDGE_IT_URL:?run through scripts/ci/it-orthanc.sh}"

scratch browser


(cd tests/browser && if [[ ! -d node_modules/playwright-core ]]; then npm ci --no-audit --no-fund --silent; fi)
# The features of scripts/test.sh's test run: its build is reused, not redone.
build_test_bin
mkdir -p "${SHOT_DIR:-target/test-artifacts}"

edge_port=$(free_port)
page_port=$(free_port)
mint_key=browser-mint-key-$RANDOM$RANDOM
mkdir -p "$work/pages" "$work/cache"
printf '%s\n' "$ORTHANC_EDGE_IT_PASSWORD" >"$work/orthanc-password"
cat >"$work/edge.toml" <<TOML
[server]
listen = "127.0.0.1:$edge_port"
admin_listen = "127.0.0.1:0"
workers = 2
[orthanc]
url = "$ORTHANC_EDGE_IT_URL"
username = "$ORTHANC_EDGE_IT_USER"
password_file = "$work/orthanc-password"
[cache]
dir = "$work/cache"
[[auth.api_keys]]
name = "web-app"
hash = "$(target/debug/orthanc-edge hash-key "$mint_key")"
scopes = ["mint"]
[auth.jwt]
secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
[cors]
allowed_origins = ["http://127.0.0.1:$page_port"]
[log]
format = "json"
TOML

start_edge target/debug/orthanc-edge "$work/edge.toml" "$edge_port" "$work/edge.log" || exit 1
pids+=("$EDGE_PID")
python3 -m http.server "$page_port" --bind 127.0.0.1 --directory "$work/pages" \
  >"$work/pages.log" 2>&1 &
pids+=($!)
wait_http -f "http://127.0.0.1:$edge_port/readyz" "$EDGE_PID" 10 "$work/edge.log" || exit 1
wait_http -f "http://127.0.0.1:$page_port/" "${pids[-1]}" 10 "$work/pages.log" || exit 1

status=0
EDGE_URL="http://127.0.0.1:$edge_port" PAGE_ORIGIN="http://127.0.0.1:$page_port" \
  PAGE_DIR="$work/pages" MINT_KEY="$mint_key" MANIFEST="$ORTHANC_EDGE_IT_MANIFEST" \
  SHOT_DIR="${SHOT_DIR:-target/test-artifacts}" \
  timeout 300 node --test tests/browser/grid.test.mjs || status=$?
# The first ten minutes: the demo's printed grid URL, opened as a newcomer would (its own Orthanc).
DEMO_PORT=$(free_port) DEMO_ADMIN_PORT=$(free_port) ORTHANC_EDGE_BIN=$PWD/target/debug/orthanc-edge \
  SHOT_DIR="${SHOT_DIR:-target/test-artifacts}" timeout 300 node --test tests/browser/demo.test.mjs || status=$?
# The Orthanc service password must not have reached the edge's log either.
if grep -qF -- "$ORTHANC_EDGE_IT_PASSWORD" "$work/edge.log"; then
  echo "test-browser.sh: the Orthanc password appears in the edge log" >&2
  status=1
fi
[[ $status -eq 0 ]] || tail -n 30 "$work/edge.log" >&2
exit "$status"
