#!/usr/bin/env bash
# Warm-up benchmark: a generated study (SLICES CT slices, 512x512, over 20 series, plus the 5
# sample series) in a private Orthanc; Orthanc's own preview rate at its concurrency limit vs an
# edge warm-up job (preset thumb), then one round of grid thumbnails. Loopback only, ~2 minutes.
# CACHE_DIR puts the edge's cache folder elsewhere (it must not exist or be empty): the filesystem
# matters, one file is created per cached image (see BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
scripts/ci/setup-deps.sh orthanc python
cargo build --release --quiet

export IT_ORTHANC_SLICES=${SLICES:-240} IT_ORTHANC_CT_SERIES=20 IT_ORTHANC_CT_SIZE=512
work=$(mktemp -d /tmp/bench-warm.XXXXXX)
edge_pid=
cleanup() { [[ -n $edge_pid ]] && kill "$edge_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
# Set before sourcing it-orthanc.sh, which chains its own stop onto this trap.
trap cleanup EXIT
# shellcheck source=scripts/ci/it-orthanc.sh
source scripts/ci/it-orthanc.sh

port=$(free_port)
bin=target/release/orthanc-edge
cat > "$work/edge.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
admin_listen = "127.0.0.1:0"
[orthanc]
url = "$ORTHANC_EDGE_IT_URL"
username = "$ORTHANC_EDGE_IT_USER"
password = "$ORTHANC_EDGE_IT_PASSWORD"
[cache]
dir = "${CACHE_DIR:-$work/cache}"
[warm]
concurrency = ${WARM_CONCURRENCY:-0}
[log]
filter = "warn"
[[auth.api_keys]]
name = "warm"
hash = "$($bin hash-key bench-warm-key)"
scopes = ["warm"]
[[auth.api_keys]]
name = "viewer"
hash = "$($bin hash-key bench-preview-key)"
scopes = ["preview"]
TOML
start_edge "$bin" "$work/edge.toml" "$port" "$work/edge.log" || exit 1
edge_pid=$EDGE_PID

python3 benches/warm_bench.py --edge "http://127.0.0.1:$port" --warm-key bench-warm-key \
  --preview-key bench-preview-key --orthanc "$ORTHANC_EDGE_IT_URL" --user "$ORTHANC_EDGE_IT_USER" \
  --password "$ORTHANC_EDGE_IT_PASSWORD" --manifest "$ORTHANC_EDGE_IT_MANIFEST" \
  --orthanc-pid "$(cat "$ORTHANC_EDGE_IT_DIR/orthanc.pid")" --edge-pid "$edge_pid" "$@"
