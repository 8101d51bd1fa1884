#!/usr/bin/env bash
# The demo: a private Orthanc with sample studies (loopback only), and orthanc-edge in front of it
# on 127.0.0.1:${DEMO_PORT:-8080} (admin listener, /metrics: ${DEMO_ADMIN_PORT:-9721}). Prints a
# browser URL of the sample study's grid (a session token valid for an hour), the ids, where its
# edge.toml is, and working curl and `orthanc-edge warm` lines. Ctrl-C stops both.
#
# Installs what it needs (scripts/ci/setup-deps.sh orthanc python: the Debian orthanc package,
# pydicom and numpy from PyPI or Debian) and builds the release binary, unless ORTHANC_EDGE_BIN
# names a built one (tests/browser/demo.test.mjs uses the debug build). DEMO_PRINT_FILE: also
# write the printed lines there (the browser test reads the URL from it).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ci/setup-deps.sh orthanc python
if [[ -n ${ORTHANC_EDGE_BIN:-} ]]; then
  bin=$ORTHANC_EDGE_BIN
else
  cargo build --release --quiet
  bin=target/release/orthanc-edge
fi
WORKDIR=${WORKDIR:-$(mktemp -d /tmp/orthanc-edge-demo.XXXXXX)}
export WORKDIR
# shellcheck source=scripts/ci/it-orthanc.sh
source scripts/ci/it-orthanc.sh

port=${DEMO_PORT:-8080}
admin_port=${DEMO_ADMIN_PORT:-9721}
base=http://127.0.0.1:$port
# A demo key with every scope, and a JWT secret so the edge mints session tokens and links.
key=demo-key
printf '%s\n' "$key" >"$WORKDIR/demo-key.txt"
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >"$WORKDIR/edge.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
admin_listen = "127.0.0.1:$admin_port"
[orthanc]
url = "$ORTHANC_EDGE_IT_URL"
username = "$ORTHANC_EDGE_IT_USER"
password = "$ORTHANC_EDGE_IT_PASSWORD"
[cache]
dir = "$WORKDIR/edge-cache"
[[auth.api_keys]]
name = "demo"
hash = "$("$bin" hash-key "$key")"
scopes = ["preview", "admin", "warm", "mint"]
[auth.jwt]
secret = "$secret"
[auth.sign]
public_url = "$base"
TOML

manifest=$ORTHANC_EDGE_IT_MANIFEST
field() { python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$manifest" "$1"; }
study=$(field 'm["study"]')
ct=$(field 'm["instances"]["ct16"]["instance"]')
ct_series=$(field 'm["instances"]["ct16"]["series"]')
token=$("$bin" token --sub demo --study "$study" --lifetime 1h --config "$WORKDIR/edge.toml")

message() {
  cat <<MSG

orthanc-edge demo on $base   (Orthanc itself: $ORTHANC_EDGE_IT_URL, loopback only, not exposed)

Open in a browser (the sample study's grid; a session token valid for an hour):
  $base/studies/$study/grid?token=$token

Study $study, CT series $ct_series, CT instance $ct
Config: $WORKDIR/edge.toml   (API key "$key" in $WORKDIR/demo-key.txt, every scope)
Try:
  curl -si -H 'X-Api-Key: $key' $base/instances/$ct/preview -o /dev/null -D -   # X-Cache: miss
  curl -si -H 'X-Api-Key: $key' $base/instances/$ct/preview -o /dev/null -D -   # X-Cache: hit-memory
  curl -s -H 'X-Api-Key: $key' $base/studies/$study/grid.json                   # the grid as JSON
  curl -si $base/instances/$ct/preview      # 401 JSON, no browser prompt
  curl -si $base/system                     # 404: only preview routes exist
  curl -s http://127.0.0.1:$admin_port/metrics | grep cache_lookups   # Prometheus, admin listener only
  $bin warm --url $base --api-key-file $WORKDIR/demo-key.txt --study $study --preset thumb
  $bin token --sub you --study $study --config $WORKDIR/edge.toml   # another session token
Sample instances: $manifest

MSG
}
message
if [[ -n ${DEMO_PRINT_FILE:-} ]]; then message >"$DEMO_PRINT_FILE"; fi
"$bin" serve --config "$WORKDIR/edge.toml"
