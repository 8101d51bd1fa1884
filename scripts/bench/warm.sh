#!/usr/bin/env bash
# Warm-up benchmark (issue 14): a generated study (SLICES CT slices, 512x512, over 20 series, plus
# the 5 sample series: 245 instances by default) in a private Orthanc; Orthanc's own preview rate
# at its concurrency limit, then for each render mode in MODES a fresh edge (empty cache) runs a
# warm-up job of the study (preset thumb) and one round of grid thumbnails. Reports images/s and
# Orthanc's CPU per instance (/proc/PID/stat) against its own /preview's, and the goal of
# render.mode = edge (≥ 2× the rate, ≤ 0.2× the CPU). Loopback only, a few minutes.
#
#   scripts/bench/warm.sh                 # MODES="orthanc edge"
#   MODES=orthanc SLICES=480 scripts/bench/warm.sh
#
# MODES      render.mode values, in order (default "orthanc edge"); an edge that predates
#            render.mode runs mode orthanc as its default behaviour and reports the others unavailable.
# CACHE_DIR  puts the edges' cache folders elsewhere (CACHE_DIR/MODE, which must not exist or be
#            empty): the filesystem matters, one file is created per cached image (see BENCHMARKS.md).
# ORTHANC_EDGE_BIN  a prebuilt edge; the release build otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
modes=${MODES:-orthanc edge}
for mode in $modes; do
  case $mode in orthanc | fallback | edge) ;; *) echo "warm.sh: unknown mode '$mode' in MODES" >&2; exit 2 ;; esac
done
scripts/ci/setup-deps.sh orthanc python
bench_edge_bin
bench_study bench-warm 240
orthanc_pid=$(<"$ORTHANC_EDGE_IT_DIR/orthanc.pid")
bench=(python3 benches/warm_bench.py)

"${bench[@]}" orthanc "$work" --orthanc "$ORTHANC_EDGE_IT_URL" --user "$ORTHANC_EDGE_IT_USER" \
  --password "$ORTHANC_EDGE_IT_PASSWORD" --manifest "$ORTHANC_EDGE_IT_MANIFEST" --orthanc-pid "$orthanc_pid"

warm_hash=$("$bin" hash-key bench-warm-key)
preview_hash=$("$bin" hash-key bench-preview-key)
for mode in $modes; do
  port=$(free_port)
  {
    bench_edge_toml "$port" "${CACHE_DIR:+$CACHE_DIR/$mode}${CACHE_DIR:-$work/cache-$mode}"
    cat <<TOML
[warm]
concurrency = ${WARM_CONCURRENCY:-0}
[[auth.api_keys]]
name = "warm"
hash = "$warm_hash"
scopes = ["warm"]
[[auth.api_keys]]
name = "viewer"
hash = "$preview_hash"
scopes = ["preview"]
TOML
  } >"$work/edge-$mode.toml"
  render_mode_env "$bin" "$work/edge-$mode.toml" "$mode" || continue
  start_edge "$bin" "$work/edge-$mode.toml" "$port" "$work/edge-$mode.log" env "${RENDER_ENV[@]}" || exit 1
  pids+=("$EDGE_PID")
  "${bench[@]}" warm "$work" --mode "$mode" --edge "http://127.0.0.1:$port" --warm-key bench-warm-key \
    --preview-key bench-preview-key --manifest "$ORTHANC_EDGE_IT_MANIFEST" --orthanc-pid "$orthanc_pid" \
    --edge-pid "$EDGE_PID"
  stop_pids "$EDGE_PID"
done
"${bench[@]}" report "$work" --modes "$modes"
