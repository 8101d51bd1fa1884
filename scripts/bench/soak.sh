#!/usr/bin/env bash
# Soak (not in CI): a release edge in front of a private real Orthanc, SOAK_SECONDS (default 600)
# of mixed load from scripts/bench/soak.py — hits, new sizes (misses), 304s, bad requests — while RSS,
# open fds and hit p99 are sampled every SOAK_INTERVAL (60) s. Passes if RSS stays under
# cache.memory_bytes + 64 MiB, fds stay flat, hit p99 stays flat, and no 5xx is seen.
#
#   scripts/bench/soak.sh                     # 10 minutes
#   SOAK_SECONDS=120 SOAK_INTERVAL=20 scripts/bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
MEM_BYTES=${SOAK_MEMORY_BYTES:-67108864}

scripts/ci/setup-deps.sh orthanc python
cargo build --release --quiet --bin orthanc-edge
bin=${CARGO_TARGET_DIR:-target}/release/orthanc-edge
# shellcheck disable=SC1091
source scripts/ci/it-orthanc.sh

work=$(mktemp -d /tmp/orthanc-edge-soak.XXXXXX)
edge_pid=
stop_edge() {
  if [[ -n $edge_pid ]]; then kill -TERM "$edge_pid" 2>/dev/null || true; wait "$edge_pid" 2>/dev/null || true; fi
  cp "$work/edge.log" "${TMPDIR:-/tmp}/orthanc-edge-soak.log" 2>/dev/null || true
  rm -rf -- "$work"
}
trap 'stop_edge; _it_orthanc_cleanup' EXIT

key=soak-key-$RANDOM$RANDOM
port=$(free_port)
admin_port=$(free_port)
printf '%s\n' "$ORTHANC_EDGE_IT_PASSWORD" >"$work/pw"
cat >"$work/edge.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
admin_listen = "127.0.0.1:$admin_port"
workers = 2
[orthanc]
url = "$ORTHANC_EDGE_IT_URL"
username = "$ORTHANC_EDGE_IT_USER"
password_file = "$work/pw"
[cache]
dir = "$work/cache"
memory_bytes = $MEM_BYTES
disk_bytes = ${SOAK_DISK_BYTES:-268435456}
[[auth.api_keys]]
name = "soak"
hash = "$("$bin" hash-key "$key")"
scopes = ["preview"]
[log]
filter = "warn"
TOML
if ! start_edge "$bin" "$work/edge.toml" "$port" "$work/edge.log"; then
  echo "soak.sh: the edge did not start" >&2
  exit 1
fi
edge_pid=$EDGE_PID
ids=$(python3 -c 'import json,os; m=json.load(open(os.environ["ORTHANC_EDGE_IT_MANIFEST"])); print(",".join(m["instances"][n]["instance"] for n in ["ct16","cr_mono1","rgb8","multiframe3"]))')
limit=$(python3 -c "print($MEM_BYTES / 1048576 + 64)")
echo "soak.sh: edge pid $edge_pid on :$port, cache.memory_bytes=$MEM_BYTES, RSS limit ${limit} MiB, $(nproc) cores"
python3 scripts/bench/soak.py --url "http://127.0.0.1:$port" --key "$key" --pid "$edge_pid" --ids "$ids" \
  --seconds "${SOAK_SECONDS:-600}" --interval "${SOAK_INTERVAL:-60}" --rss-limit-mib "$limit" --admin "http://127.0.0.1:$admin_port"
