#!/usr/bin/env bash
# The demo: a real Orthanc with sample studies on loopback, and orthanc-edge in front of it on
# 127.0.0.1:${DEMO_PORT:-8080} with the API key `demo-key`. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ci/setup-deps.sh orthanc python
cargo build --release --quiet
WORKDIR=${WORKDIR:-$(mktemp -d /tmp/orthanc-edge-demo.XXXXXX)}
export WORKDIR
# shellcheck source=scripts/ci/it-orthanc.sh
source scripts/ci/it-orthanc.sh

port=${DEMO_PORT:-8080}
admin_port=${DEMO_ADMIN_PORT:-9721}
key=demo-key
cat > "$WORKDIR/edge.toml" <<TOML
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
hash = "$(target/release/orthanc-edge hash-key "$key")"
scopes = ["preview"]
TOML

ct=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["instances"]["ct16"]["instance"])' "$ORTHANC_EDGE_IT_MANIFEST")
cat <<MSG

orthanc-edge demo on http://127.0.0.1:$port  (Orthanc itself: $ORTHANC_EDGE_IT_URL, not exposed)
Try:
  curl -si -H 'X-Api-Key: $key' http://127.0.0.1:$port/instances/$ct/preview -o /dev/null -D -   # X-Cache: miss
  curl -si -H 'X-Api-Key: $key' http://127.0.0.1:$port/instances/$ct/preview -o /dev/null -D -   # X-Cache: hit-memory
  curl -si http://127.0.0.1:$port/instances/$ct/preview      # 401 JSON, no browser prompt
  curl -si http://127.0.0.1:$port/system                     # 404: only preview routes exist
  curl -s http://127.0.0.1:$admin_port/metrics | grep cache_lookups   # Prometheus, admin listener only
Sample instances: $ORTHANC_EDGE_IT_MANIFEST

MSG
target/release/orthanc-edge serve --config "$WORKDIR/edge.toml"
