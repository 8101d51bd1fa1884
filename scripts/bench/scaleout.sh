#!/usr/bin/env bash
# Scale-out proof on one machine: N edge processes behind nginx on loopback, against a real
# Orthanc, compared with one edge. For each layout it warms every URL once, then drives a mixed
# random load with wrk for a fixed time, and reports the hit ratio, Orthanc requests (summed from
# the edges' /metrics), and cache entries summed over the edges (duplication). After the
# cluster_rr_nocopy layout it also measures the cost of the extra hop of a cluster (HOP=1).
#
#   scripts/bench/scaleout.sh                  # every layout below, then the hop measurement
#   LAYOUTS="single uri" DURATION=10 scripts/bench/scaleout.sh
#
# Layouts (nginx upstream block; cluster_* run the edges as one cluster, `[cluster]`):
#   single             1 edge
#   uri                3 edges, `hash $uri consistent`          (path only: what k8s/ configures)
#   request_uri        3 edges, `hash $request_uri consistent`  (path + query)
#   round_robin        3 edges, no hashing (what a plain Service would do)
#   cluster_rr         3 edges as a cluster, round robin; a non-owner keeps copies COPY_TTL_S (60)
#   cluster_uri        3 edges as a cluster, `hash $uri consistent`, copies as cluster_rr
#   cluster_rr_nocopy  3 edges as a cluster, round robin, copy_ttl_s = 0 (no copies: every
#                      request for an image edge 1 does not own hops to its owner)
#   (cluster_request_uri and the _nocopy variant of any cluster_* layout work too.)
# Hop measurement (HOP=1, after cluster_rr_nocopy, everything warm): the URLs edge 1 owns
# (X-Cache: hit-memory) and those it does not (hit-peer), each driven with wrk against edge 1
# directly (no nginx), same duration, for each connection count of HOP_CONNECTIONS
# ("$CONNECTIONS 1"), HOP_ROUNDS (1) rounds alternating the order; reports p50, p99, req/s and
# the CPU all the edges spent per request, of each set, and the remote/local ratios (goal of
# issue 17: p50 <= 2x). A cluster's edges start together; the bench waits until each sees every
# peer up (CLUSTER_WAIT=0: warms at once, as a freshly started cluster would be used).
# Environment: EDGES (3), INSTANCES (extra CT instances uploaded, 40), DURATION (s of wrk, 15),
#   CONNECTIONS (16), THREADS (2), EDGE_BIN (default: cargo build --release), OUT (results dir),
#   COPY_TTL_S (60), HOP (1), HOP_ROUNDS (1), HOP_CONNECTIONS, CLUSTER_WAIT (1).
# Columns: warm_orthanc / load_orthanc are Orthanc image requests (op="image") to warm and during
#   the load; orthanc_other every other Orthanc request but pings (metadata ...), warm + load;
#   hit_ratio is over the client requests (an owner's lookup for a peer is not counted twice);
#   hops the image requests sent to an owner during the load (peer_fail: unreachable/refused);
#   disk_sum / mem_sum the entries each tier holds, summed over the edges (a non-owner's copies are
#   in mem_sum only), disk_per_edge / mem_per_edge the same per edge; cpu_us_per_req the CPU
#   time of all the edges (not nginx) during the load over its requests.
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
LAYOUTS=${LAYOUTS:-"single uri request_uri round_robin cluster_rr cluster_uri cluster_rr_nocopy"}
COPY_TTL_S=${COPY_TTL_S:-60}
HOP=${HOP:-1}
HOP_ROUNDS=${HOP_ROUNDS:-1}
HOP_CONNECTIONS=${HOP_CONNECTIONS:-"$CONNECTIONS 1"}
CLUSTER_WAIT=${CLUSTER_WAIT:-1}
KEY=bench-key-$$
SECRET=bench-cluster-secret-$$-0123456789abcdef

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

load_lua() { # PATHS-FILE LUA-FILE: uniformly random paths from the file, with the API key
  cat >"$2" <<LUA
local paths = {}
for line in io.lines("$1") do paths[#paths + 1] = line end
math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 1000)
wrk.headers["X-Api-Key"] = "$KEY"
wrk.headers["Accept"] = "image/webp,image/*,*/*;q=0.8"
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
LUA
}
load_lua "$work/paths.txt" "$work/load.lua"

hash=$("$EDGE_BIN" hash-key "$KEY")

launch_edge() { # DIR [VAR=VALUE...]: starts an edge (in this shell, so its pid is in $pids)
  local dir=$1
  shift
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
  env "$@" "$EDGE_BIN" serve --config "$dir/edge.toml" </dev/null >/dev/null 2>"$dir/edge.log" &
  pids+=($!)
}

edge_addrs() { # DIR PID → echoes "LISTEN ADMIN" once the edge serves
  local dir=$1 pid=$2 i
  for i in $(seq 1 150); do
    if grep -q '"orthanc-edge serving"' "$dir/edge.log" 2>/dev/null; then
      python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: v = json.loads(l)
    except ValueError: continue
    if v.get("message") == "orthanc-edge serving": print(v["listen"], v["admin_listen"]); break' "$dir/edge.log"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
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

# Every Orthanc request but pings, summed over the edges.
orthanc_other() { # ADMIN...
  local all image ping
  all=$(scrape_sum 'orthanc_edge_upstream_requests_total{' "$@")
  image=$(scrape_sum 'orthanc_edge_upstream_requests_total{op="image"' "$@")
  ping=$(scrape_sum 'orthanc_edge_upstream_requests_total{op="ping"' "$@")
  python3 -c "print(int($all - $image - $ping))"
}

peer_images() { # OUTCOME-PREFIX ADMIN... → image requests sent to owners with that outcome
  local outcome=$1; shift
  scrape_sum "orthanc_edge_peer_requests_total{op=\"image\",outcome=\"$outcome" "$@"
}

wait_cluster() { # N ADMIN... → waits until every edge sees N peers up; echoes the seconds it took
  local want=$1; shift
  local started=$SECONDS a up ok
  while ((SECONDS - started < 30)); do
    ok=1
    for a in "$@"; do
      up=$(scrape_sum 'orthanc_edge_cluster_peers{state="up"}' "$a")
      [[ ${up%.*} == "$want" ]] || ok=0
    done
    if ((ok)); then echo $((SECONDS - started)); return 0; fi
    sleep 0.2
  done
  log "the cluster did not come up: not every edge sees $want peers"; return 1
}

wrk_field() { # FILE FIELD(rps|p50|p99|reqs|non2xx)
  case $2 in
    rps) awk '/^Requests\/sec/ { print $2 }' "$1" ;;
    p50) awk '$1 == "50%" { print $2 }' "$1" ;;
    p99) awk '$1 == "99%" { print $2 }' "$1" ;;
    reqs) awk '/requests in/ { print $1 }' "$1" ;;
    non2xx) awk '/Non-2xx/ { print $NF } END { }' "$1" | grep . || echo 0 ;;
  esac
}

edge_cpu_ms() { # PID... → user + system CPU of those processes so far, in ms
  python3 -c 'import os, sys
t = 0
for p in sys.argv[1:]:
    f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
    t += int(f[11]) + int(f[12])
print(t * 1000 // os.sysconf("SC_CLK_TCK"))' "$@"
}

to_ms() { # wrk duration (850.00us, 1.23ms, 1.02s) → ms
  python3 -c 'import re,sys
m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", sys.argv[1])
print(float(m[1]) * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4}[m[2]])' "$1"
}

hop_measure() { # LISTEN ADMIN... (the first admin is the edge at LISTEN): hit through a non-owner vs local hit
  local listen=$1; shift
  local hop=$work/hop p xc other=0
  mkdir -p "$hop"
  : >"$hop/local.txt"; : >"$hop/remote.txt"
  while read -r p; do
    xc=$(curl -fsS -o /dev/null -D - -H "X-Api-Key: $KEY" -H 'Accept: image/webp,image/*,*/*;q=0.8' \
      "http://$listen$p" | tr -d '\r' | awk -F': *' 'tolower($1) == "x-cache" { print $2 }')
    case $xc in
      hit-memory | hit-disk) echo "$p" >>"$hop/local.txt" ;;
      hit-peer) echo "$p" >>"$hop/remote.txt" ;;
      *) other=$((other + 1)); log "hop: $p answered X-Cache: ${xc:-none} (expected a hit)" ;;
    esac
  done <"$work/paths.txt"
  local nl nr
  nl=$(wc -l <"$hop/local.txt") nr=$(wc -l <"$hop/remote.txt")
  log "hop: edge 1 owns $nl URLs (local hits), $nr are another edge's (hit-peer), $other neither"
  ((nl > 0 && nr > 0)) || { log "hop: nothing to compare"; return 0; }
  load_lua "$hop/local.txt" "$hop/local.lua"
  load_lua "$hop/remote.txt" "$hop/remote.lua"
  local o0 h0 o1 h1 round set f
  o0=$(scrape_sum 'orthanc_edge_upstream_requests_total{op="image"' "$@")
  h0=$(peer_images "" "$1")
  printf 'connections\tround\tset\turls\trequests\treq_per_s\tp50\tp99\tcpu_us_per_req\tnon2xx\n' >"$OUT/hop.tsv"
  local c k=0 cpu0 cpu1 reqs sets
  for c in $HOP_CONNECTIONS; do
    for round in $(seq 1 "$HOP_ROUNDS"); do
      # Alternate the order, so drift on a noisy box does not always favour one set.
      k=$((k + 1))
      if ((k % 2)); then sets="local remote"; else sets="remote local"; fi
      for set in $sets; do
        f=$OUT/wrk-hop-$set-c$c-$round.txt
        cpu0=$(edge_cpu_ms "${edge_pids[@]}")
        wrk -t "$((c < THREADS ? c : THREADS))" -c "$c" -d "${DURATION}s" --latency -s "$hop/$set.lua" "http://$listen" >"$f"
        cpu1=$(edge_cpu_ms "${edge_pids[@]}")
        reqs=$(wrk_field "$f" reqs)
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$round" "$set" "$(wc -l <"$hop/$set.txt")" "$reqs" \
          "$(wrk_field "$f" rps)" "$(wrk_field "$f" p50)" "$(wrk_field "$f" p99)" \
          "$(python3 -c "print(round(($cpu1 - $cpu0) * 1000 / max($reqs, 1), 1))")" "$(wrk_field "$f" non2xx)" >>"$OUT/hop.tsv"
      done
    done
  done
  o1=$(scrape_sum 'orthanc_edge_upstream_requests_total{op="image"' "$@")
  h1=$(peer_images "" "$1")
  echo
  column -t -s $'\t' "$OUT/hop.tsv"
  python3 - "$OUT/hop.tsv" <<'PY' | tee "$OUT/hop-summary.txt"
import re, sys
def ms(v):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", v)
    return float(m[1]) * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4}[m[2]]
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
by = {}
for r in rows:
    by.setdefault((int(r[0]), int(r[1])), {})[r[2]] = r
for (c, rnd), d in sorted(by.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
    l, r = d["local"], d["remote"]
    print(f"hop, {c} connection(s), round {rnd}: remote/local p50 {ms(r[6]) / ms(l[6]):.2f}x ({r[6]} / {l[6]}), "
          f"p99 {ms(r[7]) / ms(l[7]):.2f}x ({r[7]} / {l[7]}), req/s {float(r[5]) / float(l[5]):.2f}x "
          f"({r[5]} / {l[5]}), edge CPU/request {float(r[8]) / max(float(l[8]), 1e-9):.2f}x ({r[8]} / {l[8]} us)")
PY
  log "hop: Orthanc image requests during the hop runs: $(python3 -c "print(int($o1 - $o0))"); image requests edge 1 sent to owners: $(python3 -c "print(int($h1 - $h0))")"
}

results=$OUT/scaleout.tsv
printf 'layout\tedges\turls\twarm_orthanc\tload_orthanc\torthanc_other\tload_requests\treq_per_s\tp50\tp99\thit_ratio\thops\tpeer_fail\tdisk_sum\tmem_sum\tdisk_per_edge\tmem_per_edge\tcpu_us_per_req\tnon2xx\n' >"$results"

for layout in $LAYOUTS; do
  n=$EDGES upstream="" cluster=0 copy=$COPY_TTL_S
  case $layout in
    cluster_*)
      cluster=1
      [[ $layout == *_nocopy ]] && copy=0
      ;;
  esac
  case ${layout#cluster_} in
    single) ((cluster == 0)) || { log "unknown layout $layout"; exit 2; }; n=1 ;;
    uri | uri_nocopy) upstream="hash \$uri consistent;" ;;
    request_uri | request_uri_nocopy) upstream="hash \$request_uri consistent;" ;;
    round_robin) ((cluster == 0)) || { log "unknown layout $layout"; exit 2; } ;;
    rr | rr_nocopy) ((cluster == 1)) || { log "unknown layout $layout"; exit 2; } ;;
    *) log "unknown layout $layout"; exit 2 ;;
  esac
  cluster_env=()
  if ((cluster)); then
    # One peer port per edge (distinct), every edge's URL in the peer list.
    peer_ports=()
    while ((${#peer_ports[@]} < n)); do
      p=$(free_port)
      [[ " ${peer_ports[*]} " == *" $p "* ]] || peer_ports+=("$p")
    done
    peers_json=$(printf '"http://127.0.0.1:%s",' "${peer_ports[@]}")
    peers_json="[${peers_json%,}]"
  fi
  # Start every edge at once (a cluster's peers then probe each other when all are listening),
  # then wait for each.
  first=${#pids[@]}
  for i in $(seq 1 "$n"); do
    if ((cluster)); then
      cluster_env=("ORTHANC_EDGE__CLUSTER__SELF_URL=http://127.0.0.1:${peer_ports[i - 1]}"
        "ORTHANC_EDGE__CLUSTER__LISTEN=127.0.0.1:${peer_ports[i - 1]}"
        "ORTHANC_EDGE__CLUSTER__PEERS=$peers_json"
        "ORTHANC_EDGE__CLUSTER__SECRET=$SECRET"
        "ORTHANC_EDGE__CLUSTER__COPY_TTL_S=$copy")
    fi
    launch_edge "$work/$layout/edge$i" "${cluster_env[@]}"
  done
  edge_pids=("${pids[@]:first:n}")
  admins=() listens=() servers=""
  for i in $(seq 1 "$n"); do
    addrs=$(edge_addrs "$work/$layout/edge$i" "${pids[first + i - 1]}")
    read -r listen admin <<<"$addrs"
    admins+=("$admin") listens+=("$listen")
    servers+="    server $listen max_fails=0;"$'\n'
  done
  if ((cluster && CLUSTER_WAIT)); then
    took=$(wait_cluster "$n" "${admins[@]}")
    log "$layout: every edge sees $n peers up after ${took}s (copy_ttl_s = $copy)"
  fi
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
  before_ph=$(peer_images hit "${admins[@]}")
  before_pm=$(peer_images miss "${admins[@]}")
  before_pf=$(python3 -c "print($(peer_images unreachable "${admins[@]}") + $(peer_images refused "${admins[@]}"))")

  cpu0=$(edge_cpu_ms "${edge_pids[@]}")
  wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --latency -s "$work/load.lua" \
    "http://127.0.0.1:$port" >"$OUT/wrk-$layout.txt"
  cpu1=$(edge_cpu_ms "${edge_pids[@]}")

  total=$(scrape_sum 'orthanc_edge_upstream_requests_total{op="image"' "${admins[@]}")
  other=$(orthanc_other "${admins[@]}")
  hits=$(scrape_sum 'orthanc_edge_cache_lookups_total{outcome="hit' "${admins[@]}")
  all=$(scrape_sum 'orthanc_edge_cache_lookups_total' "${admins[@]}")
  ph=$(peer_images hit "${admins[@]}")
  pm=$(peer_images miss "${admins[@]}")
  pf=$(python3 -c "print($(peer_images unreachable "${admins[@]}") + $(peer_images refused "${admins[@]}"))")
  disk=$(scrape_sum 'orthanc_edge_cache_entries{tier="disk"}' "${admins[@]}")
  mem=$(scrape_sum 'orthanc_edge_cache_entries{tier="memory"}' "${admins[@]}")
  disk_per="" mem_per=""
  for a in "${admins[@]}"; do
    disk_per+="${disk_per:+/}$(scrape_sum 'orthanc_edge_cache_entries{tier="disk"}' "$a")"
    mem_per+="${mem_per:+/}$(scrape_sum 'orthanc_edge_cache_entries{tier="memory"}' "$a")"
  done
  f=$OUT/wrk-$layout.txt
  # An owner counts its lookup for a peer as well: those are taken out of the client requests.
  ratio=$(python3 -c "ph=$ph-$before_ph; pm=$pm-$before_pm
h=$hits-$before_hits-ph; a=$all-$before_all-ph-pm; print(f'{h/a:.4f}' if a else 'n/a')")
  load=$(python3 -c "print(int($total - $warm))")
  hops=$(python3 -c "print(int($ph - $before_ph + $pm - $before_pm))")
  fails=$(python3 -c "print(int($pf - $before_pf))")
  reqs=$(wrk_field "$f" reqs)
  cpu=$(python3 -c "print(round(($cpu1 - $cpu0) * 1000 / max($reqs, 1), 1))")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$layout" "$n" "$npaths" \
    "${warm%.*}" "$load" "$other" "$reqs" "$(wrk_field "$f" rps)" "$(wrk_field "$f" p50)" \
    "$(wrk_field "$f" p99)" "$ratio" "$hops" "$fails" "${disk%.*}" "${mem%.*}" "$disk_per" "$mem_per" "$cpu" \
    "$(wrk_field "$f" non2xx)" >>"$results"
  log "$layout: $(tail -n 1 "$results")"
  if ((cluster)); then
    downs=$(cat "$work/$layout"/edge*/edge.log | grep -c '"peer marked down"' || true)
    ((downs == 0)) || log "$layout: $downs 'peer marked down' in the edges' logs"
  fi
  if ((cluster && copy == 0)) && [[ $HOP == 1 ]]; then
    hop_measure "${listens[0]}" "${admins[@]}"
  fi
  stop_all
done

echo
column -t -s $'\t' "$results"
echo "(results in $results; wrk output in $OUT)"
