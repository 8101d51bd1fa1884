#!/usr/bin/env bash
# Scale-out proof on one machine: N edge processes behind nginx on loopback, against a real
# Orthanc, compared with one edge. For each layout it warms every URL once, then drives a mixed
# random load with wrk for a fixed time, and reports the hit ratio, Orthanc requests (summed from
# the edges' /metrics), and cache entries summed over the edges (duplication).
#
#   scripts/bench/scaleout.sh                  # layouts: single, uri, request_uri, round_robin
#   LAYOUTS="single uri" DURATION=10 scripts/bench/scaleout.sh
#
# Layouts (nginx upstream block):
#   single       1 edge
#   uri          3 edges, `hash $uri consistent`          (path only: what k8s/ configures)
#   request_uri  3 edges, `hash $request_uri consistent`  (path + query)
#   round_robin  3 edges, no hashing (what a plain Service would do)
# Environment: EDGES (3), INSTANCES (extra CT instances uploaded, 40), DURATION (s of wrk, 15),
#   CONNECTIONS (16), THREADS (2), EDGE_BIN (default: cargo build --release), OUT (results dir).
# Everything listens on 127.0.0.1 and is stopped on exit; wrk stops itself after DURATION.
# Needs nginx, wrk (scripts/ci/setup-deps.sh demo) and the Orthanc harness (scripts/ci/it-orthanc.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
root=$(pwd -P)

EDGES=${EDGES:-3}
INSTANCES=${INSTANCES:-40}
DURATION=${DURATION:-15}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
LAYOUTS=${LAYOUTS:-"single uri request_uri round_robin"}
KEY=bench-key-$$

log() { echo "bench-scaleout.sh: $*" >&2; }

scripts/ci/setup-deps.sh orthanc python demo
if [[ -z ${EDGE_BIN:-} ]]; then
  cargo build --release --quiet --bin orthanc-edge
  EDGE_BIN=$root/target/release/orthanc-edge
fi

work=$(mktemp -d /tmp/bench-scaleout.XXXXXX)
OUT=${OUT:-$root/target/bench-scaleout}
mkdir -p "$OUT"
pids=()
stop_all() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_all
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$work"
}
trap cleanup EXIT

export WORKDIR=$work/it
# shellcheck source=scripts/ci/it-orthanc.sh
source scripts/ci/it-orthanc.sh
log "Orthanc at $ORTHANC_EDGE_IT_URL"

# More instances than the sample set, so paths spread over the edges: copies of the CT with new UIDs.
python3 - "$work/it/dicom/ct16.dcm" "$INSTANCES" "$work/ids.txt" <<'PY'
import base64, json, sys, urllib.request, os, io
import pydicom
src, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
url, user, pw = (os.environ[k] for k in ("ORTHANC_EDGE_IT_URL", "ORTHANC_EDGE_IT_USER", "ORTHANC_EDGE_IT_PASSWORD"))
auth = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
ids = []
manifest = json.load(open(os.environ["ORTHANC_EDGE_IT_MANIFEST"]))
for stem, inst in manifest["instances"].items():
    if inst["preview_status"] == 200:
        ids.append(inst["instance"])
for i in range(n):
    ds = pydicom.dcmread(src)
    ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{900 + i}"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = 900 + i
    buf = io.BytesIO(); ds.save_as(buf)
    req = urllib.request.Request(f"{url}/instances", data=buf.getvalue(), method="POST",
                                 headers={"Authorization": auth, "Content-Type": "application/dicom"})
    ids.append(json.load(urllib.request.urlopen(req))["ID"])
open(out, "w").write("\n".join(str(i) for i in ids) + "\n")
PY
mapfile -t ids <"$work/ids.txt"
log "${#ids[@]} instances"
# Five URLs per instance: Orthanc's own preview, and four variants made from one source.
: >"$work/paths.txt"
for id in "${ids[@]}"; do
  for q in "" "?preset=thumb" "?preset=grid" "?w=64&format=jpeg" "?w=300&format=webp"; do
    echo "/instances/$id/preview$q" >>"$work/paths.txt"
  done
done
npaths=$(wc -l <"$work/paths.txt")

cat >"$work/load.lua" <<LUA
-- Uniformly random paths from paths.txt, with the API key.
local paths = {}
for line in io.lines("$work/paths.txt") do paths[#paths + 1] = line end
math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 1000)
wrk.headers["X-Api-Key"] = "$KEY"
wrk.headers["Accept"] = "image/webp,image/*,*/*;q=0.8"
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
LUA

hash=$("$EDGE_BIN" hash-key "$KEY")

start_edge() { # DIR → echoes "LISTEN ADMIN"
  local dir=$1
  mkdir -p "$dir"
  printf '%s' "$ORTHANC_EDGE_IT_PASSWORD" >"$dir/orthanc-password"
  cat >"$dir/edge.toml" <<TOML
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 1
[orthanc]
url = "$ORTHANC_EDGE_IT_URL"
username = "$ORTHANC_EDGE_IT_USER"
password_file = "$dir/orthanc-password"
[cache]
dir = "$dir/cache"
[transform]
workers = 1
[[auth.api_keys]]
name = "bench"
hash = "$hash"
scopes = ["preview"]
[log]
format = "json"
filter = "warn,orthanc_edge=info,orthanc_edge::access=warn"
TOML
  "$EDGE_BIN" serve --config "$dir/edge.toml" 2>"$dir/edge.log" &
  pids+=($!)
  local i
  for i in $(seq 1 100); do
    if grep -q '"orthanc-edge serving"' "$dir/edge.log" 2>/dev/null; then
      python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: v = json.loads(l)
    except ValueError: continue
    if v.get("message") == "orthanc-edge serving": print(v["listen"], v["admin_listen"]); break' "$dir/edge.log"
      return 0
    fi
    sleep 0.1
  done
  log "edge in $dir did not start:"; cat "$dir/edge.log" >&2; return 1
}

scrape_sum() { # SERIES-PREFIX ADMIN... → sum of matching series over the edges
  local prefix=$1; shift
  local a total=0 v
  for a in "$@"; do
    v=$(curl -fsS "http://$a/metrics" | awk -v p="$prefix" 'index($0, p) == 1 { s += $NF } END { print s + 0 }')
    total=$(python3 -c "print($total + $v)")
  done
  echo "$total"
}

results=$OUT/scaleout.tsv
printf 'layout\tedges\turls\twarm_orthanc\tload_orthanc\tload_requests\treq_per_s\tp50\tp99\thit_ratio\tentries_sum\tentries_per_edge\tnon2xx\n' >"$results"

for layout in $LAYOUTS; do
  n=$EDGES upstream=""
  case $layout in
    single) n=1 ;;
    uri) upstream="hash \$uri consistent;" ;;
    request_uri) upstream="hash \$request_uri consistent;" ;;
    round_robin) upstream="" ;;
    *) log "unknown layout $layout"; exit 2 ;;
  esac
  admins=() servers=""
  for i in $(seq 1 "$n"); do
    read -r listen admin < <(start_edge "$work/$layout/edge$i")
    admins+=("$admin")
    servers+="    server $listen max_fails=0;"$'\n'
  done
  port=$(free_port)
  mkdir -p "$work/$layout/nginx"
  cat >"$work/$layout/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $work/$layout/nginx/nginx.pid;
error_log $work/$layout/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/$layout/nginx/tmp;
  proxy_temp_path $work/$layout/nginx/tmp;
  upstream edges {
    $upstream
$servers
    keepalive 32;
  }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://edges;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX
  nginx -p "$work/$layout/nginx" -c "$work/$layout/nginx/nginx.conf" -g 'daemon off;' &
  pids+=($!)
  wait_http -f "http://127.0.0.1:$port/healthz" "${pids[-1]}" 5 || true

  # Warm: every URL once, 4 at a time.
  xargs -P 4 -I{} curl -fsS -o /dev/null -H "X-Api-Key: $KEY" -H 'Accept: image/webp,image/*,*/*;q=0.8' \
    "http://127.0.0.1:$port{}" <"$work/paths.txt"
  warm=$(scrape_sum 'orthanc_edge_upstream_requests_total{op="image"' "${admins[@]}")
  before_hits=$(scrape_sum 'orthanc_edge_cache_lookups_total{outcome="hit' "${admins[@]}")
  before_all=$(scrape_sum 'orthanc_edge_cache_lookups_total' "${admins[@]}")

  wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --latency -s "$work/load.lua" \
    "http://127.0.0.1:$port" >"$OUT/wrk-$layout.txt"

  total=$(scrape_sum 'orthanc_edge_upstream_requests_total{op="image"' "${admins[@]}")
  hits=$(scrape_sum 'orthanc_edge_cache_lookups_total{outcome="hit' "${admins[@]}")
  all=$(scrape_sum 'orthanc_edge_cache_lookups_total' "${admins[@]}")
  entries=$(scrape_sum 'orthanc_edge_cache_entries{tier="disk"}' "${admins[@]}")
  per_edge=""
  for a in "${admins[@]}"; do
    per_edge+="${per_edge:+/}$(scrape_sum 'orthanc_edge_cache_entries{tier="disk"}' "$a")"
  done
  reqs=$(awk '/requests in/ { print $1 }' "$OUT/wrk-$layout.txt")
  rps=$(awk '/^Requests\/sec/ { print $2 }' "$OUT/wrk-$layout.txt")
  p50=$(awk '$1 == "50%" { print $2 }' "$OUT/wrk-$layout.txt")
  p99=$(awk '$1 == "99%" { print $2 }' "$OUT/wrk-$layout.txt")
  non2xx=$(awk '/Non-2xx/ { print $NF }' "$OUT/wrk-$layout.txt")
  ratio=$(python3 -c "h=$hits-$before_hits; a=$all-$before_all; print(f'{h/a:.4f}' if a else 'n/a')")
  load=$(python3 -c "print(int($total - $warm))")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$layout" "$n" "$npaths" "${warm%.*}" "$load" \
    "$reqs" "$rps" "$p50" "$p99" "$ratio" "${entries%.*}" "$per_edge" "${non2xx:-0}" >>"$results"
  log "$layout: $(tail -n 1 "$results")"
  stop_all
done

echo
column -t -s $'\t' "$results"
echo "(results in $results; wrk output in $OUT)"
