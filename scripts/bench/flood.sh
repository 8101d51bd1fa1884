#!/usr/bin/env bash
# Amplification benchmark: memory-hit latency while one client floods random-id 404s at its full
# rate, against the same hit path with no flood, with ENTRIES entries in the memory tier. See
# BENCHMARKS.md (current figure) and docs/benchmark-history.md ("Hits under a 404 flood").
#
#   scripts/bench/flood.sh            # prints a Markdown table on stdout, progress on stderr
#
# Starts a fake Orthanc (scripts/dev/fake_orthanc.py: ids starting 00000000- exist, every other id is
# a 404) and target/release/orthanc-edge (or EDGE_BIN) on 127.0.0.1, fills the memory tier with
# ENTRIES distinct entries (wrk: 256 small edge-made sizes of each of ENTRIES/256 instances), then for each round runs wrk on one cached preview alone
# ("quiet"), then again while a second wrk asks for a new random id on every request ("flood").
# Everything it starts is stopped on exit; its files live in a temp dir.
#
# Environment (defaults in brackets):
#   ENTRIES [50000]          distinct previews put in the memory tier before measuring
#   DURATION [10]            seconds of each measured wrk run
#   CONNECTIONS [4]          connections of the hit client (wrk -t1)
#   FLOOD_CONNECTIONS [16]   connections of the flooding client (wrk -t1)
#   ROUNDS [2]               quiet/flood pairs
#   WORKERS [2]              edge server.workers
#   EDGE_BIN []              an orthanc-edge binary to use instead of building target/release
#   KEEP_TMP [0]             1: keep the temp dir (configs, logs, wrk outputs)
# Needs: wrk, curl, python3, cargo (unless EDGE_BIN). About 1-2 minutes after the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
root=$(pwd -P)

ENTRIES=${ENTRIES:-50000}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-4}
FLOOD_CONNECTIONS=${FLOOD_CONNECTIONS:-16}
ROUNDS=${ROUNDS:-2}
WORKERS=${WORKERS:-2}
EDGE_BIN=${EDGE_BIN:-}
KEEP_TMP=${KEEP_TMP:-0}
API_KEY=bench-flood-key

log() { echo "bench-flood.sh: [${SECONDS}s] $*" >&2; }
die() { log "error: $*"; exit 1; }

for v in ENTRIES DURATION CONNECTIONS FLOOD_CONNECTIONS ROUNDS WORKERS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
for tool in wrk curl python3; do command -v "$tool" >/dev/null || die "$tool not found"; done

tmp= fake_pid= edge_pid= flood_pid=
cleanup() {
  stop_pids $flood_pid $edge_pid $fake_pid
  if [[ -n $tmp && -d $tmp ]]; then
    if [[ $KEEP_TMP == 1 ]]; then log "kept $tmp"; else rm -rf -- "$tmp" || true; fi
  fi
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z $EDGE_BIN ]]; then
  log "building the release binary"
  cargo build --release --quiet --bin orthanc-edge >&2
  EDGE_BIN=${CARGO_TARGET_DIR:-$root/target}/release/orthanc-edge
fi
[[ -x $EDGE_BIN ]] || die "$EDGE_BIN is not an executable"

tmp=$(mktemp -d /tmp/orthanc-edge-flood.XXXXXX)
fake_port=$(free_port)
python3 scripts/dev/fake_orthanc.py "$fake_port" bench bench-pw >"$tmp/fake.log" 2>&1 &
fake_pid=$!
wait_http "http://127.0.0.1:$fake_port/system" "$fake_pid" || die "the fake Orthanc did not start"

edge_port=$(free_port) admin_port=$(free_port)
cat >"$tmp/edge.toml" <<TOML
[server]
listen = "127.0.0.1:$edge_port"
admin_listen = "127.0.0.1:$admin_port"
workers = $WORKERS

[orthanc]
url = "http://127.0.0.1:$fake_port"
username = "bench"
password = "bench-pw"

[cache]
dir = "$tmp/edge-cache"
memory_bytes = 536870912
disk_bytes = 2147483648

[[auth.api_keys]]
name = "bench"
hash = "$("$EDGE_BIN" hash-key "$API_KEY")"
scopes = ["preview"]

[log]
filter = "error"
TOML
start_edge "$EDGE_BIN" "$tmp/edge.toml" "$edge_port" "$tmp/edge.log" || die "orthanc-edge did not start"
edge_pid=$EDGE_PID
log "fake Orthanc on :$fake_port, $EDGE_BIN on :$edge_port (workers=$WORKERS)"

base=http://127.0.0.1:$edge_port
memory_entries() {
  curl -s "http://127.0.0.1:$admin_port/metrics" |
    awk '/^orthanc_edge_cache_entries\{tier="memory"\}/ { print $2; found = 1 } END { if (!found) print 0 }'
}

# --- fill: ENTRIES distinct entries, 256 edge-made sizes (w, h from 1 to 16) of each known id, so
# that one Orthanc fetch makes 256 entries; wrk runs of 5 s, each going on where the last stopped --
cat >"$tmp/fill.lua" <<'LUA'
local n = tonumber(os.getenv("START") or "0")
request = function()
  local id = math.floor(n / 256)
  local w, h = n % 16 + 1, math.floor(n / 16) % 16 + 1
  n = n + 1
  return wrk.format("GET", string.format("/instances/00000000-00000000-00000000-00000000-%08x/preview?w=%d&h=%d&format=png", id + 1000, w, h))
end
LUA
for ((i = 1; i <= 60; i++)); do
  have=$(memory_entries)
  ((have >= ENTRIES)) && break
  log "filling the memory tier: $have of $ENTRIES entries"
  START=$((have > 2000 ? have - 2000 : 0)) wrk -t1 -c32 -d5s -H "X-Api-Key: $API_KEY" -s "$tmp/fill.lua" "$base" >"$tmp/fill-$i.txt" 2>&1 ||
    { cat "$tmp/fill-$i.txt" >&2; die "fill run failed"; }
done
have=$(memory_entries)
((have >= ENTRIES)) || die "the memory tier holds $have entries, not $ENTRIES"
log "memory tier: $have entries"

hit_path=/instances/00000000-00000000-00000000-00000000-00000007/preview
curl -s -o /dev/null -H "X-Api-Key: $API_KEY" "$base$hit_path" # a miss: now cached
xcache=$(curl -s -o /dev/null -D - -H "X-Api-Key: $API_KEY" "$base$hit_path" | tr -d '\r' |
  awk -F': ' 'tolower($1) == "x-cache" { print $2 }')
[[ $xcache == hit-memory ]] || die "the measured URL is not a memory hit (X-Cache: '$xcache')"

# --- the flood: a new random id per request, counting answers by status --------------------------
cat >"$tmp/flood.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) s404, s503, s429, other = 0, 0, 0, 0 end
math.randomseed(os.time())
local function hex8() return string.format("%04x%04x", math.random(0, 65535), math.random(0, 65535)) end
request = function()
  local id = string.format("%s-%s-%s-%s-%s", "1" .. hex8():sub(2), hex8(), hex8(), hex8(), hex8())
  return wrk.format("GET", "/instances/" .. id .. "/preview")
end
function response(status)
  if status == 404 then s404 = s404 + 1
  elseif status == 503 then s503 = s503 + 1
  elseif status == 429 then s429 = s429 + 1
  else other = other + 1 end
end
function done()
  for _, t in ipairs(threads) do
    io.write(string.format("statuses 404=%d 503=%d 429=%d other=%d\n",
      t:get("s404"), t:get("s503"), t:get("s429"), t:get("other")))
  end
end
LUA

# wrk output → "req/s p50_ms p99_ms non2xx"
parse_wrk() {
  awk '
    function ms(v) {
      if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
      if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
      if (v ~ /m$/)  { sub(/m$/, "", v);  return v * 60000 }
      if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
      return -1
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    $1 == "Requests/sec:" { rps = $2 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    END { printf "%s %s %s %d\n", rps, p50, p99, non2xx }
  ' "$1"
}

hits() { # out: the hit client, DURATION seconds
  wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "X-Api-Key: $API_KEY" "$base$hit_path" >"$1" 2>&1 ||
    { cat "$1" >&2; die "wrk (hits) failed"; }
  local non2xx
  non2xx=$(parse_wrk "$1" | cut -d' ' -f4)
  ((non2xx == 0)) || { cat "$1" >&2; die "hits answered $non2xx non-2xx"; }
}

rows=()
for ((r = 1; r <= ROUNDS; r++)); do
  hits "$tmp/quiet-$r.txt"
  read -r q_rps q_p50 q_p99 _ < <(parse_wrk "$tmp/quiet-$r.txt")
  log "round $r quiet: $q_rps req/s, p50 $q_p50 ms, p99 $q_p99 ms"

  wrk -t1 -c"$FLOOD_CONNECTIONS" -d"$((DURATION + 3))s" -H "X-Api-Key: $API_KEY" -s "$tmp/flood.lua" "$base" \
    >"$tmp/flood-$r.txt" 2>&1 &
  flood_pid=$!
  sleep 2 # the flood at full rate before measuring
  hits "$tmp/flooded-$r.txt"
  wait "$flood_pid" || { cat "$tmp/flood-$r.txt" >&2; die "wrk (flood) failed"; }
  flood_pid=
  read -r f_rps f_p50 f_p99 _ < <(parse_wrk "$tmp/flooded-$r.txt")
  read -r x_rps _ _ _ < <(parse_wrk "$tmp/flood-$r.txt")
  statuses=$(awk '/^statuses/ { $1 = ""; print substr($0, 2) }' "$tmp/flood-$r.txt")
  log "round $r flood: hits $f_rps req/s, p50 $f_p50 ms, p99 $f_p99 ms; flood $x_rps req/s ($statuses)"
  rows+=("$r $q_rps $q_p50 $q_p99 $f_rps $f_p50 $f_p99 $x_rps $statuses")
done
log "memory tier after the floods: $(memory_entries) entries"

echo "| round | quiet hits req/s | quiet p50 ms | quiet p99 ms | flooded hits req/s | flooded p50 ms | flooded p99 ms | p99 flooded/quiet | flood req/s | flood answers |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for row in "${rows[@]}"; do
  read -r r q_rps q_p50 q_p99 f_rps f_p50 f_p99 x_rps statuses <<<"$row"
  ratio=$(awk -v a="$f_p99" -v b="$q_p99" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
  echo "| $r | $q_rps | $q_p50 | $q_p99 | $f_rps | $f_p50 | $f_p99 | $ratio | $x_rps | $statuses |"
done
echo
echo "ENTRIES=$ENTRIES (memory tier), hit client wrk -t1 -c$CONNECTIONS, flood wrk -t1 -c$FLOOD_CONNECTIONS, ${DURATION}s each, edge workers=$WORKERS, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
