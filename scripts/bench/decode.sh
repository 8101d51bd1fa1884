#!/usr/bin/env bash
# Decode benchmark (issue 14): decode + window + resize (fit 256 px) + JPEG encode of a 512x512
# 16-bit CT and a 2048x2500 CR, each uncompressed and JPEG 2000 lossless (generated with pydicom),
# one image at a time, by (a) pydicom + pylibjpeg + numpy + Pillow in one Python process, (b)
# Orthanc with the Debian orthanc-gdcm plugin (GET /instances/{id}/rendered, sequential) and (c)
# the edge (criterion, benches/decode.rs: orthanc_edge::dicom::render_frame + transform). Prints
# one table (scripts/bench/decode.py), then each tool's output size and its mean difference from
# Orthanc's image (the same picture, or the timings compare different work). Should `cargo bench
# --bench decode` not build, only the peers are reported. Criterion's own output goes to stderr.
# Loopback only, a few minutes (and the bench build, when target/release has none).
#
#   scripts/bench/decode.sh
#   RUNS=20 scripts/bench/decode.sh      # timed runs per image for the peers (default 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
scripts/ci/setup-deps.sh orthanc corpus
py=python3
[[ -x /opt/orthanc-edge-corpus/bin/python ]] && py=/opt/orthanc-edge-corpus/bin/python
drive=("$py" scripts/bench/decode.py)
runs=${RUNS:-10}

scratch bench-decode
trap 'scripts/dev/orthanc.sh stop "$work/orthanc" || true; _scratch_cleanup' EXIT
"${drive[@]}" gen "$work"
"${drive[@]}" pydicom "$work" --runs "$runs"

gdcm=/usr/share/orthanc/plugins/libOrthancGdcm.so
ORTHANC_IT_EXTRA_JSON="{\"Plugins\": [\"$gdcm\"]}" scripts/dev/orthanc.sh start "$work/orthanc"
"${drive[@]}" orthanc "$work" --env "$work/orthanc/orthanc.env" --runs "$runs"
scripts/dev/orthanc.sh stop "$work/orthanc"

criterion=()
if cargo bench --quiet --bench decode --no-run >"$work/bench-build.log" 2>&1; then
  DECODE_BENCH_DIR=$work cargo bench --quiet --bench decode >&2
  criterion=(--criterion "${CARGO_TARGET_DIR:-target}/criterion")
else
  echo "decode.sh: cargo bench --bench decode does not build: peers only" >&2
  grep -m 3 '^error' "$work/bench-build.log" >&2 || tail -n 3 "$work/bench-build.log" >&2
fi
"${drive[@]}" report "$work" "${criterion[@]}"
