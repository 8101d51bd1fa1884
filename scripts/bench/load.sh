#!/usr/bin/env bash
# Load benchmark (issue 16): orthanc-edge memory hits against nginx proxy_cache hits at several
# body sizes, and orthanc-edge disk-tier hits, for the PNG previews of the SAMPLES instances (by
# default about 5 KB, 48 KB and 264 KB), all on 127.0.0.1, in one run; Orthanc direct on request.
# See BENCHMARKS.md (current figures) and docs/benchmark-history.md (earlier runs).
#
#   scripts/bench/load.sh                                  # Markdown on stdout, progress on stderr
#   EDGE_BIN=/tmp/orthanc-edge scripts/bench/load.sh       # a fixed binary: no cargo build
#   SAMPLES=ct16 ROUNDS=1 DURATION=2 scripts/bench/load.sh # a quick check of one sample
#
# Starts a real Orthanc with the sample DICOM files (scripts/ci/it-orthanc.sh), builds the release
# binary (unless EDGE_BIN or SKIP_BUILD=1) and starts it twice: "edge", memory tier 256 MiB, serves
# memory hits; "edge-disk", cache.memory_bytes = 1 (the smallest valid value: no image fits), serves
# hits from its disk tier (sled, its pages in sled's page cache and the OS's: what a steady disk
# hit costs, not a cold read). Also an nginx (benches/nginx.conf.template) with its own prefix,
# proxy_cache and hard-coded Basic credentials. For each sample it warms the three caches, checks
# that edge (hit-memory), edge-disk (hit-disk), nginx (HIT) and Orthanc return the same bytes, then
# runs wrk in rounds: each round runs every sample, and for each sample edge-disk, edge, nginx (and
# Orthanc) back to back. Everything it starts is stopped on exit (EXIT/INT/TERM trap); its files
# live in a temp dir.
#
# An image bigger than the whole memory tier is never put in it (src/cache/memory.rs), so every
# edge-disk hit is a disk hit. Each edge's cache_lookups counters (admin listener /metrics) are
# read around every run to show it: column "own-tier hits" is the share of the run's lookups
# served by the tier the target measures; below 90 % disk hits the disk goal is not judged.
#
# Environment (defaults in brackets):
#   SAMPLES [ct16 cr_mono1 cr_large]  sample instances (stems of scripts/dev/gen_dicom.py), space
#                          separated; PNG previews with Orthanc 1.10: ct16 512x512 CT 4.9 KB (the
#                          one closest to 3 KB: rgb8 is 1 KB, the others below 300 B), cr_mono1
#                          640x800 CR 48 KB, cr_large 2048x2500 CR 264 KB (the largest there is:
#                          no sample gives 800 KB; uploaded only when listed)
#   SAMPLE                 one sample: the same as SAMPLES=SAMPLE (older usage)
#   EDGE_BIN               the orthanc-edge binary to run, never built (also read from
#                          ORTHANC_EDGE_BIN, as the other bench scripts do); unset: the release
#                          build target/release/orthanc-edge, made here unless SKIP_BUILD=1
#   SKIP_BUILD [0]         1: use the existing target/release/orthanc-edge, do not run cargo build
#   WORKERS (or W) [1]     server.workers of both edges and nginx worker_processes
#   DURATION [8]           seconds of each wrk run on edge, edge-disk and nginx
#   ROUNDS [3]             rounds, each runs every sample and target once; per sample, the summary
#                          shows the quietest round (least CPU taken by other processes during its
#                          edge, nginx and edge-disk runs), the median over rounds and every round
#   CONNECTIONS [16]       wrk connections (one wrk thread: -t1)
#   ORTHANC [0]            Orthanc direct (slow, uncached renders): 0 never, 1 the first sample
#                          only, all every sample (cr_large renders ~3/s: give it ORTHANC_DURATION)
#   ORTHANC_DURATION [4]   seconds of each wrk run on Orthanc direct
#   PIN [auto]             1: servers on CPU 0, wrk on CPU 1 (taskset); auto: when WORKERS=1 and
#                          there are at least 2 CPUs; 0: no pinning. Orthanc is never pinned.
#   KEEP_TMP [0]           1: keep the temp dir (configs, logs, wrk outputs) for inspection
# Needs: Orthanc + pydicom/numpy (scripts/ci/setup-deps.sh orthanc python), nginx, wrk, curl,
# python3, and cargo unless EDGE_BIN or SKIP_BUILD=1. Total time after the build: about
# ROUNDS x samples x 3 x (DURATION + 0.5) s plus ~25 s of set-up, with the defaults 4 minutes
# (ORTHANC=1 adds ROUNDS x ORTHANC_DURATION).
set -euo pipefail
# EDGE_BIN relative to the caller's directory, before the cd below.
EDGE_BIN=${EDGE_BIN:-${ORTHANC_EDGE_BIN:-}}
if [[ -n $EDGE_BIN && $EDGE_BIN != /* ]]; then EDGE_BIN=$PWD/$EDGE_BIN; fi
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
root=$(pwd -P)

WORKERS=${WORKERS:-${W:-1}}
DURATION=${DURATION:-8}
ORTHANC_DURATION=${ORTHANC_DURATION:-4}
CONNECTIONS=${CONNECTIONS:-16}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-auto}
KEEP_TMP=${KEEP_TMP:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
ORTHANC=${ORTHANC:-0}
API_KEY=bench-load-key
EDGE_MEMORY_BYTES=268435456 # edge: every sample stays in memory
DISK_EDGE_MEMORY_BYTES=1    # edge-disk: the smallest value cache.memory_bytes accepts (nonzero)
OWN_TIER_MIN=90             # % of own-tier hits below which edge-disk is no disk-tier figure

log() { echo "bench-load.sh: [${SECONDS}s] $*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ -n ${SAMPLES:-} && -n ${SAMPLE:-} && $SAMPLES != "$SAMPLE" ]]; then
  die "set SAMPLES or SAMPLE (one sample), not both"
fi
SAMPLES=${SAMPLES:-${SAMPLE:-ct16 cr_mono1 cr_large}}
read -r -a samples <<<"$SAMPLES"
((${#samples[@]} > 0)) || die "SAMPLES is empty"
declare -A seen_sample=()
for s in "${samples[@]}"; do
  [[ $s =~ ^[A-Za-z0-9_]+$ ]] || die "sample names are gen_dicom.py stems ([A-Za-z0-9_]); got '$s'"
  [[ -z ${seen_sample[$s]:-} ]] || die "sample $s is listed twice in SAMPLES"
  seen_sample[$s]=1
done

for v in WORKERS DURATION ORTHANC_DURATION CONNECTIONS ROUNDS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
case $ORTHANC in 0 | 1 | all) ;; *) die "ORTHANC must be 0, 1 (first sample) or all" ;; esac
build=1
if [[ -n $EDGE_BIN || $SKIP_BUILD == 1 ]]; then build=0; fi
tools=(nginx wrk curl python3 cmp)
if ((build)); then tools+=(cargo); fi
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || [[ -x /usr/sbin/$tool ]] ||
    die "$tool not found (nginx and wrk: apt-get install nginx wrk; the rest: scripts/ci/setup-deps.sh orthanc python)"
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

ncpu=$(nproc)
case $PIN in
  auto) if [[ $WORKERS == 1 && $ncpu -ge 2 ]]; then PIN=1; else PIN=0; fi ;;
  0 | 1) ;;
  *) die "PIN must be 0, 1 or auto" ;;
esac
server_cpu=() wrk_cpu=()
if [[ $PIN == 1 ]]; then
  command -v taskset >/dev/null || die "PIN=1 needs taskset (util-linux)"
  [[ $ncpu -ge 2 ]] || die "PIN=1 needs at least 2 CPUs"
  server_cpu=(taskset -c 0)
  wrk_cpu=(taskset -c 1)
fi

# --- processes we start, and the trap that stops them ------------------------------------------
tmp=
edge_pid=
disk_pid=
nginx_pid=
wrk_pid=

stop_pid() { # pid name: TERM, up to 10 s, then KILL
  local pid=$1 name=$2 i
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) ignored TERM; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  # Never fails: under `set -e` a failing step here would skip it-orthanc.sh's cleanup chained to it.
  stop_pid "$wrk_pid" wrk
  wrk_pid=
  stop_pid "$edge_pid" orthanc-edge
  edge_pid=
  stop_pid "$disk_pid" "orthanc-edge (edge-disk)"
  disk_pid=
  stop_pid "$nginx_pid" nginx
  nginx_pid=
  if [[ -n $tmp && -d $tmp ]]; then
    if [[ $KEEP_TMP == 1 ]]; then log "kept $tmp"; else rm -rf -- "$tmp" || true; fi
  fi
  return 0
}
# Set before sourcing it-orthanc.sh: it chains its own cleanup (stop Orthanc) to this one.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build, then Orthanc with the samples ---------------------------------------------------------
if [[ -n $EDGE_BIN ]]; then
  edge_bin=$EDGE_BIN
  log "EDGE_BIN: running $edge_bin (no build)"
elif [[ $SKIP_BUILD == 1 ]]; then
  edge_bin=$root/target/release/orthanc-edge
  log "SKIP_BUILD=1: using the existing release binary"
else
  log "building the release binary"
  cargo build --release --quiet >&2
  edge_bin=$root/target/release/orthanc-edge
fi
[[ -f $edge_bin && -x $edge_bin ]] || die "$edge_bin is not an executable file"

scripts/ci/setup-deps.sh orthanc python >&2

tmp=$(mktemp -d /tmp/orthanc-edge-bench.XXXXXX)
# Orthanc's storage (cr_large: 10 MB), the caches and the logs need little, but a full disk fails
# in odd ways (truncated nginx answers, empty wrk output): refuse to start below 200 MB.
free_kb=$(df -k --output=avail "$tmp" | tail -n 1 | tr -d ' ')
((free_kb >= 200000)) || die "only $((free_kb / 1024)) MB free in /tmp: need 200 MB"
log "starting Orthanc with the sample DICOM files"
# it-orthanc.sh puts its files under $WORKDIR when set (and then keeps them): use its own temp dir.
unset WORKDIR
if [[ -n ${seen_sample[cr_large]:-} ]]; then export IT_ORTHANC_LARGE=1; fi
export IT_ORTHANC_PATIENT_B=0 # the second patient is for the security tests
# shellcheck source=scripts/ci/it-orthanc.sh
source scripts/ci/it-orthanc.sh >&2
[[ -n ${ORTHANC_EDGE_IT_URL:-} && -f ${ORTHANC_EDGE_IT_MANIFEST:-} ]] ||
  die "scripts/ci/it-orthanc.sh did not export ORTHANC_EDGE_IT_URL / ORTHANC_EDGE_IT_MANIFEST"
orthanc_pid=$(cat "$ORTHANC_EDGE_IT_DIR/orthanc.pid" 2>/dev/null || true)

declare -A id_of=() w_of=() h_of=() modality_of=() body_of=()
while read -r stem id w h status modality; do
  [[ $status == 200 ]] || die "Orthanc answers $status for the $stem preview"
  id_of[$stem]=$id w_of[$stem]=$w h_of[$stem]=$h modality_of[$stem]=$modality
done < <(
  python3 - "$ORTHANC_EDGE_IT_MANIFEST" "${samples[@]}" <<'EOF'
import json, sys
instances = json.load(open(sys.argv[1]))["instances"]
for s in sys.argv[2:]:
    if s not in instances:
        sys.exit(f"no sample {s!r}; the manifest has: {', '.join(sorted(instances))}")
    i = instances[s]
    print(s, i["instance"], i["width"], i["height"], i["preview_status"], i.get("modality") or "?")
EOF
)
for s in "${samples[@]}"; do
  [[ -n ${id_of[$s]:-} ]] || die "cannot read sample $s from $ORTHANC_EDGE_IT_MANIFEST"
done
orthanc_hostport=${ORTHANC_EDGE_IT_URL#http://}
orthanc_hostport=${orthanc_hostport%/}
basic=$(printf '%s:%s' "$ORTHANC_EDGE_IT_USER" "$ORTHANC_EDGE_IT_PASSWORD" | base64 -w0)

space_left() { df -h --output=avail "$tmp" 2>/dev/null | tail -n 1 | tr -d ' '; }

# --- the two orthanc-edge processes -------------------------------------------------------------
(umask 077 && printf '%s' "$ORTHANC_EDGE_IT_PASSWORD" >"$tmp/orthanc-password")
key_hash=$("$edge_bin" hash-key "$API_KEY")
edge_toml() { # port admin_port cache_dir memory_bytes → config on stdout
  cat <<TOML
[server]
listen = "127.0.0.1:$1"
admin_listen = "127.0.0.1:$2"
workers = $WORKERS

[orthanc]
url = "$ORTHANC_EDGE_IT_URL"
username = "$ORTHANC_EDGE_IT_USER"
password_file = "$tmp/orthanc-password"

[cache]
dir = "$3"
memory_bytes = $4
disk_bytes = 1073741824

[[auth.api_keys]]
name = "bench"
hash = "$key_hash"
scopes = ["preview"]

[log]
filter = "warn"
TOML
}
edge_port=$(free_port)
edge_admin=$(free_port)
edge_toml "$edge_port" "$edge_admin" "$tmp/edge-cache" "$EDGE_MEMORY_BYTES" >"$tmp/edge.toml"
log "starting orthanc-edge on 127.0.0.1:$edge_port (workers=$WORKERS, memory tier $EDGE_MEMORY_BYTES bytes)"
start_edge "$edge_bin" "$tmp/edge.toml" "$edge_port" "$tmp/edge.log" "${server_cpu[@]}" || die "orthanc-edge did not start"
edge_pid=$EDGE_PID
disk_port=$(free_port)
disk_admin=$(free_port)
edge_toml "$disk_port" "$disk_admin" "$tmp/edge-disk-cache" "$DISK_EDGE_MEMORY_BYTES" >"$tmp/edge-disk.toml"
log "starting orthanc-edge (edge-disk) on 127.0.0.1:$disk_port (memory tier $DISK_EDGE_MEMORY_BYTES byte)"
start_edge "$edge_bin" "$tmp/edge-disk.toml" "$disk_port" "$tmp/edge-disk.log" "${server_cpu[@]}" ||
  die "orthanc-edge (edge-disk) did not start"
disk_pid=$EDGE_PID

# --- nginx ------------------------------------------------------------------------------------
nginx_port=$(free_port)
prefix=$tmp/nginx
mkdir -p "$prefix/tmp" "$prefix/cache"
user_line=
if [[ $(id -u) == 0 ]]; then
  # As root, nginx workers drop to an unprivileged user: let it write its cache and temp files
  # (and only those: the temp dir stays unlistable, the Orthanc password file 0600).
  nginx_user=nobody
  nginx_group=$(id -gn "$nginx_user")
  user_line="user $nginx_user $nginx_group;"
  chmod 711 "$tmp"
  chmod 755 "$prefix"
  chown -R "$nginx_user:$nginx_group" "$prefix/tmp" "$prefix/cache"
fi
sed -e "s|@USER@|$user_line|" \
  -e "s|@PREFIX@|$prefix|g" -e "s|@WORKERS@|$WORKERS|g" -e "s|@PORT@|$nginx_port|g" \
  -e "s|@ORTHANC_HOSTPORT@|$orthanc_hostport|g" -e "s|@BASIC@|$basic|g" \
  benches/nginx.conf.template >"$prefix/nginx.conf"
chmod 600 "$prefix/nginx.conf" # it holds the Orthanc credentials
"$nginx_bin" -t -q -e "$prefix/error.log" -p "$prefix/" -c "$prefix/nginx.conf" ||
  die "nginx -t refused $prefix/nginx.conf"
log "starting nginx on 127.0.0.1:$nginx_port (worker_processes=$WORKERS)"
"${server_cpu[@]}" "$nginx_bin" -e "$prefix/error.log" -p "$prefix/" -c "$prefix/nginx.conf" \
  </dev/null >"$prefix/stderr.log" 2>&1 &
nginx_pid=$!
wait_http "http://127.0.0.1:$nginx_port/" "$nginx_pid" 20 "$prefix/error.log" || die "nginx did not start"

# --- warm the caches, check the bytes -----------------------------------------------------------
fetch() { # name url out_prefix [curl args...]: body → OUT.body, headers → OUT.head; prints status
  local name=$1 url=$2 out=$3
  shift 3
  curl -sS --max-time 30 -o "$out.body" -D "$out.head" -w '%{http_code}' "$@" "$url" ||
    die "$name: request to $url failed ($(space_left) free in $tmp)"
}
header() { # file name → value (case-insensitive, last occurrence)
  tr -d '\r' <"$1" | awk -v n="$(tr '[:upper:]' '[:lower:]' <<<"$2")" -F': ' \
    'tolower($1) == n { v = $2 } END { print v }'
}
expect_200() { [[ $2 == 200 ]] || die "$1 answered $2 (body: $(head -c 300 "$3.body"))"; }

declare -A url_of=()  # "target/sample" → URL
warm_sample() { # sample: warm edge, edge-disk and nginx; check their bytes against Orthanc's
  local s=$1 path=/instances/${id_of[$1]}/preview out=$tmp/check-$1 st f i xc
  url_of[edge/$s]=http://127.0.0.1:$edge_port$path
  url_of[edge-disk/$s]=http://127.0.0.1:$disk_port$path
  url_of[nginx/$s]=http://127.0.0.1:$nginx_port$path
  url_of[orthanc/$s]=$ORTHANC_EDGE_IT_URL$path
  st=$(fetch orthanc "${url_of[orthanc/$s]}" "$out-orthanc" -H "Authorization: Basic $basic" -H 'Accept-Encoding: identity')
  expect_200 "orthanc ($s)" "$st" "$out-orthanc"
  [[ $(head -c 8 "$out-orthanc.body" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] ||
    die "Orthanc's answer for $s is not a PNG"
  for i in 1 2; do
    st=$(fetch edge "${url_of[edge/$s]}" "$out-edge$i" -H "X-Api-Key: $API_KEY")
    expect_200 "edge ($s)" "$st" "$out-edge$i"
    st=$(fetch nginx "${url_of[nginx/$s]}" "$out-nginx$i")
    expect_200 "nginx ($s)" "$st" "$out-nginx$i"
  done
  xc=$(header "$out-edge2.head" x-cache)
  [[ $xc == hit-memory ]] || die "edge second request for $s: X-Cache '$xc', expected hit-memory"
  xc=$(header "$out-nginx2.head" x-cache)
  [[ $xc == HIT ]] || die "nginx second request for $s: X-Cache '$xc', expected HIT"
  st=$(fetch edge-disk "${url_of[edge-disk/$s]}" "$out-disk1" -H "X-Api-Key: $API_KEY")
  expect_200 "edge-disk ($s)" "$st" "$out-disk1"
  # The miss stores the image on disk in the background (never in memory: it is larger than the
  # tier): ask until a request is a disk hit.
  for ((i = 0; i < 25; i++)); do
    sleep 0.2
    st=$(fetch edge-disk "${url_of[edge-disk/$s]}" "$out-disk2" -H "X-Api-Key: $API_KEY")
    expect_200 "edge-disk ($s)" "$st" "$out-disk2"
    xc=$(header "$out-disk2.head" x-cache)
    [[ $xc == hit-disk ]] && break
  done
  [[ $xc == hit-disk ]] || die "edge-disk: no hit-disk for $s in 25 requests over 5 s (last X-Cache '$xc')"
  for f in edge1 edge2 nginx1 nginx2 disk1 disk2; do
    cmp -s "$out-orthanc.body" "$out-$f.body" || die "$f body for $s differs from Orthanc's"
  done
  body_of[$s]=$(wc -c <"$out-orthanc.body")
  log "$s ${w_of[$s]}x${h_of[$s]} PNG: ${body_of[$s]} bytes, identical from Orthanc, edge (hit-memory), edge-disk (hit-disk) and nginx (HIT)"
}
log "warming the caches and comparing bytes"
for s in "${samples[@]}"; do warm_sample "$s"; done

# --- wrk ----------------------------------------------------------------------------------------
clk_tck=$(getconf CLK_TCK)
cpu_ticks() { # pid → utime+stime of it and its direct children (nginx workers), in ticks; - if unknown
  local total=0 p f a
  if [[ -z $1 ]] || ! kill -0 "$1" 2>/dev/null; then
    echo -
    return 0
  fi
  for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null || true); do
    f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    f=${f##*) } # fields after "pid (comm) ": utime and stime are the 12th and 13th from here
    read -r -a a <<<"$f"
    total=$((total + a[11] + a[12]))
  done
  echo "$total"
}

machine_busy() { # busy ticks of all CPUs (user nice system irq softirq steal), from /proc/stat
  awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

child_cpu() { # → $child_cpu_s: user+sys seconds of this shell's finished children (wrk)
  times >"$tmp/times" # not in $(...): a subshell would report its own (empty) children
  child_cpu_s=$(awk 'NR == 2 {
    t = 0
    for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
    printf "%.3f", t
  }' "$tmp/times")
}

lookups() { # admin_port → "hit-memory hit-disk miss" of the edge's cache_lookups; "- - -" if unknown
  { curl -s --max-time 5 "http://127.0.0.1:$1/metrics" 2>/dev/null || true; } | awk -F'"' '
    /^orthanc_edge_cache_lookups_total\{outcome="/ { split($NF, v, " "); n[$2] = v[2]; seen = 1 }
    END { if (seen) printf "%d %d %d\n", n["hit-memory"], n["hit-disk"], n["miss"]; else print "- - -" }'
}

# wrk output → "req/s p50_ms p99_ms requests non2xx socket_errors"
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
    $2 == "requests" && $3 == "in" { reqs = $1 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { gsub(",", ""); errs = $4 + $6 + $8 + $10 }
    END { printf "%s %s %s %s %d %d\n", rps, p50, p99, reqs, non2xx, errs }
  ' "$1"
}

declare -A pid_of=([edge]=$edge_pid [edge-disk]=$disk_pid [nginx]=$nginx_pid [orthanc]=${orthanc_pid:-})
declare -A dur_of=([edge]=$DURATION [edge-disk]=$DURATION [nginx]=$DURATION [orthanc]=$ORTHANC_DURATION)
declare -A admin_of=([edge]=$edge_admin [edge-disk]=$disk_admin)
declare -A tier_of=([edge]=hit-memory [edge-disk]=hit-disk) # the X-Cache a target is meant to measure
# "sample target round rps p50 p99 requests server_us/req server_cpu% wrk_cpu% other_cpu% own_tier%"
results=()

targets_of() { # sample → the targets run for it, in run order
  local list=(edge-disk edge nginx)
  if [[ $ORTHANC == all || ($ORTHANC == 1 && $1 == "${samples[0]}") ]]; then list+=(orthanc); fi
  echo "${list[@]}"
}

run_wrk() { # target sample round
  local t=$1 s=$2 r=$3 out=$tmp/wrk-$2-$1-$3.txt hdr=() before after rps p50 p99 reqs non2xx errs cpu
  local wrk_before wrk_after started elapsed pct wrk_pct busy_before busy_after other_pct
  local l_before=(- - -) l_after=(- - -) own=-
  case $t in
    edge | edge-disk) hdr=(-H "X-Api-Key: $API_KEY") ;;
    orthanc) hdr=(-H "Authorization: Basic $basic" -H 'Accept-Encoding: identity') ;;
  esac
  # The edges' lookup counters, outside the measured window (the scrape costs server CPU too).
  if [[ -n ${admin_of[$t]:-} ]]; then read -r -a l_before <<<"$(lookups "${admin_of[$t]}")"; fi
  before=$(cpu_ticks "${pid_of[$t]}")
  child_cpu
  wrk_before=$child_cpu_s
  busy_before=$(machine_busy)
  started=$(date +%s.%N)
  # In the background and waited for, so that INT/TERM stop the script at once, not after the run.
  timeout $((dur_of[$t] + 30)) "${wrk_cpu[@]}" wrk -t1 -c"$CONNECTIONS" -d"${dur_of[$t]}s" --latency \
    "${hdr[@]}" "${url_of[$t/$s]}" >"$out" 2>&1 &
  wrk_pid=$!
  if ! wait "$wrk_pid"; then
    wrk_pid=
    cat "$out" >&2
    die "wrk on $t ($s) failed"
  fi
  wrk_pid=
  after=$(cpu_ticks "${pid_of[$t]}")
  elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  busy_after=$(machine_busy)
  child_cpu
  wrk_after=$child_cpu_s
  if [[ -n ${admin_of[$t]:-} ]]; then read -r -a l_after <<<"$(lookups "${admin_of[$t]}")"; fi
  read -r rps p50 p99 reqs non2xx errs < <(parse_wrk "$out")
  if [[ ! -s $out ]]; then
    # wrk ignores write errors: an empty output with exit status 0 is a full disk.
    die "wrk on $t ($s) wrote no output ($(space_left) free in $tmp)"
  fi
  [[ -n $rps && $rps != 0 ]] || { cat "$out" >&2; die "could not read wrk output for $t ($s)"; }
  ((non2xx == 0)) || { cat "$out" >&2; die "$t ($s): $non2xx non-2xx answers under load"; }
  if ((errs > 0)); then
    log "warning: $t $s round $r: $errs socket errors (connect/read/write/timeout):"
    cat "$out" >&2
  fi
  # Server CPU per request, in microseconds (the steadier number on a shared machine), and in % of
  # one core: if the server is well below 100% while wrk is near 100%, the load generator, not the
  # server, set the request rate.
  cpu=- pct=-
  if [[ $before != - && $after != - ]]; then
    read -r cpu pct < <(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="$reqs" -v e="$elapsed" \
      'BEGIN { printf "%.1f %.0f\n", (n > 0 ? t / hz * 1e6 / n : 0), t / hz / e * 100 }')
  fi
  wrk_pct=$(awk -v a="$wrk_before" -v b="$wrk_after" -v e="$elapsed" 'BEGIN { printf "%.0f", (b - a) / e * 100 }')
  # Everything else the machine did meanwhile (kernel network work, other users): the noise.
  other_pct=$(awk -v b=$((busy_after - busy_before)) -v hz="$clk_tck" -v e="$elapsed" -v s="$pct" -v w="$wrk_pct" \
    'BEGIN { o = b / hz / e * 100 - (s == "-" ? 0 : s) - w; printf "%.0f", (o < 0 ? 0 : o) }')
  # Share of this run's lookups answered by the tier the target measures (memory or disk).
  if [[ ${l_before[0]} != - && ${l_after[0]} != - ]]; then
    own=$(awk -v m=$((l_after[0] - l_before[0])) -v d=$((l_after[1] - l_before[1])) \
      -v x=$((l_after[2] - l_before[2])) -v tier="${tier_of[$t]}" \
      'BEGIN { n = m + d + x; if (n > 0) printf "%.1f", (tier == "hit-disk" ? d : m) / n * 100; else print "-" }')
  fi
  log "$(printf '%-9s %-9s round %d: %10s req/s  p50 %8.3f ms  p99 %8.3f ms  server %s us/req (%s%% CPU)  wrk %s%%  other %s%%  own tier %s' \
    "$t" "$s" "$r" "$rps" "$p50" "$p99" "$cpu" "$pct" "$wrk_pct" "$other_pct" "$own$([[ $own == - ]] || echo %)")"
  results+=("$s $t $r $rps $p50 $p99 $reqs $cpu $pct $wrk_pct $other_pct $own")
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "wrk -t1 -c$CONNECTIONS, $ROUNDS round(s) x ${#samples[@]} sample(s) (${samples[*]}): edge-disk, edge, nginx ${DURATION}s each$(
  [[ $ORTHANC == 0 ]] || echo ", Orthanc ${ORTHANC_DURATION}s")$( [[ $PIN == 1 ]] && echo " (pinned)")"
for ((round = 1; round <= ROUNDS; round++)); do
  for s in "${samples[@]}"; do
    for t in $(targets_of "$s"); do run_wrk "$t" "$s" "$round"; done
  done
done

# --- report -------------------------------------------------------------------------------------
all_results() { printf '%s\n' "${results[@]}"; }
ratio() { # a b [printf format, %.2f] → a/b; - if either is unknown or b is 0
  awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (a != "-" && b != "-" && b > 0) printf f, a / b; else print "-" }'
}
median() { # numbers on stdin → their median with 2 decimals; - if none
  { grep -v '^-$' || true; } | sort -g | awk '{ v[NR] = $1 }
    END { if (NR == 0) print "-"; else printf "%.2f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
kb() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }
# On a shared machine the rounds differ mostly by what else ran meanwhile: per sample, the quietest
# round is the one whose edge, nginx and edge-disk runs (back to back) had the least "other" CPU.
quietest_of() { # sample → round
  all_results | awk -v s="$1" '$1 == s && $2 != "orthanc" { o[$3] += $11 }
    END { for (r = 1; r in o; r++) if (best == "" || o[r] < o[best]) best = r; print best }'
}
pick() { all_results | awk -v s="$1" -v t="$2" -v r="$3" '$1 == s && $2 == t && $3 == r'; }
per_round() { # sample target_a target_b field → "a/b" of that field in each round, one a line
  all_results | awk -v s="$1" -v ta="$2" -v tb="$3" -v f="$4" '
    $1 == s && $2 == ta { a[$3] = $f } $1 == s && $2 == tb { b[$3] = $f }
    END { for (r = 1; r in a; r++) print ((r in b) && a[r] != "-" && b[r] != "-" && b[r] > 0 ? a[r] / b[r] : "-") }'
}
label_of() {
  case $1 in
    edge) echo "orthanc-edge memory hit" ;;
    edge-disk) echo "orthanc-edge disk-tier hit" ;;
    nginx) echo "nginx proxy_cache hit" ;;
    orthanc) echo "Orthanc direct" ;;
  esac
}

main_rows='' summary_rows='' notes=''
for s in "${samples[@]}"; do
  q=$(quietest_of "$s")
  body="$(kb "${body_of[$s]}") (${body_of[$s]} B)"
  declare -A rps_q=() cpu_q=()
  for t in edge nginx edge-disk orthanc; do
    [[ " $(targets_of "$s") " == *" $t "* ]] || continue
    read -r _ _ _ rps p50 p99 _ cpu pct wrk oth own <<<"$(pick "$s" "$t" "$q")"
    rps_q[$t]=$rps cpu_q[$t]=$cpu
    med=$(all_results | awk -v s="$s" -v t="$t" '$1 == s && $2 == t { print $4 }' | median)
    [[ $own == - ]] || own="$own %"
    main_rows+="| $s, $body | $(label_of "$t") | $q | $rps | $med | $p50 ms | $p99 ms | $cpu µs | $pct % | $wrk % | $oth % | $own |"$'\n'
  done
  # Goals of issue 16: memory hits >= 1.15x nginx for bodies up to 48 KB (here: up to 64 KiB),
  # >= 0.9x for the large ones (set for ~800 KB); disk hits >= 0.5x memory hits.
  if ((body_of[$s] <= 65536)); then goal=1.15 goal_text="≥ 1.15× (bodies up to 48 KB)"; else
    goal=0.90 goal_text="≥ 0.90× (large bodies; set for ~800 KB)"
  fi
  rounds_en=$(per_round "$s" edge nginx 4 | awk '{ printf "%s%s", (NR > 1 ? ", " : ""), ($1 == "-" ? "-" : sprintf("%.2f", $1)) }')
  med_en=$(per_round "$s" edge nginx 4 | median)
  met=$(awk -v m="$med_en" -v g="$goal" 'BEGIN { print (m == "-" ? "-" : (m >= g ? "**yes**" : "no")) }')
  summary_rows+="| $s, $body | edge memory / nginx | **$(ratio "${rps_q[edge]}" "${rps_q[nginx]}")** | $med_en | $rounds_en | $goal_text | $met | $(ratio "${cpu_q[edge]}" "${cpu_q[nginx]}") |"$'\n'
  rounds_de=$(per_round "$s" edge-disk edge 4 | awk '{ printf "%s%s", (NR > 1 ? ", " : ""), ($1 == "-" ? "-" : sprintf("%.2f", $1)) }')
  med_de=$(per_round "$s" edge-disk edge 4 | median)
  own_med=$(all_results | awk -v s="$s" '$1 == s && $2 == "edge-disk" { print $12 }' | median)
  if [[ $own_med == - ]]; then
    met="- (no cache_lookups metric: disk hits not counted)"
  elif awk -v o="$own_med" -v m="$OWN_TIER_MIN" 'BEGIN { exit !(o < m) }'; then
    met="n/a: only $own_med % disk hits"
    notes+="- $s: only $own_med % (median) of the edge-disk requests were disk hits, the rest memory hits: its row is no disk-tier figure."$'\n'
  else
    met=$(awk -v m="$med_de" 'BEGIN { print (m == "-" ? "-" : (m >= 0.5 ? "**yes**" : "no")) }')
  fi
  summary_rows+="| $s, $body | edge disk / edge memory | **$(ratio "${rps_q[edge-disk]}" "${rps_q[edge]}")** | $med_de | $rounds_de | ≥ 0.50× | $met | $(ratio "${cpu_q[edge-disk]}" "${cpu_q[edge]}") |"$'\n'
  if [[ -n ${rps_q[orthanc]:-} ]]; then
    summary_rows+="| $s, $body | edge memory / Orthanc direct | $(ratio "${rps_q[edge]}" "${rps_q[orthanc]}") | $(per_round "$s" edge orthanc 4 | median) | $(per_round "$s" edge orthanc 4 | awk '{ printf "%s%s", (NR > 1 ? ", " : ""), ($1 == "-" ? "-" : sprintf("%.1f", $1)) }') | - | - | $(ratio "${cpu_q[edge]}" "${cpu_q[orthanc]}" %.4f) |"$'\n'
  fi
  unset rps_q cpu_q
done
if [[ -n $notes ]]; then
  notes="Disk-tier caveat: some edge-disk requests were not disk hits (an image smaller than the edge-disk
memory tier?), so those rows are no disk-tier figure:
$notes
"
fi
sample_list=$(for s in "${samples[@]}"; do
  printf '%s %sx%s %s (%s B)\n' "$s" "${w_of[$s]}" "${h_of[$s]}" "${modality_of[$s]}" "${body_of[$s]}"
done | paste -sd ';' | sed 's/;/; /g')

cat <<MD
### Load benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')

\`GET /instances/{id}/preview\` (PNG) of ${#samples[@]} sample(s): $sample_list. wrk -t1 -c$CONNECTIONS --latency;
workers=$WORKERS for both edges and nginx; $ROUNDS round(s), each running every sample, and for each sample edge-disk,
edge, nginx$( [[ $ORTHANC == 0 ]] || echo ", Orthanc") back to back; ${DURATION}s per run$( [[ $ORTHANC == 0 ]] || echo ", Orthanc ${ORTHANC_DURATION}s"); CPU pinning: $( [[ $PIN == 1 ]] && echo "servers on CPU 0, wrk on CPU 1" || echo none).
edge: memory tier $EDGE_MEMORY_BYTES bytes; edge-disk: cache.memory_bytes = $DISK_EDGE_MEMORY_BYTES (disk tier: sled, warm pages).
Binary: $edge_bin. Load average before the runs: $load_before. $ncpu CPU(s): $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //'); Orthanc $(curl -s --max-time 5 -u "$ORTHANC_EDGE_IT_USER:$ORTHANC_EDGE_IT_PASSWORD" "$ORTHANC_EDGE_IT_URL/system" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Version"])' 2>/dev/null || echo '?').

Per sample, its quietest round (column "round"), and the median req/s over all rounds:

| sample, body | target | round | req/s | median req/s | p50 | p99 | server CPU per request | server CPU | wrk CPU | other CPU | own-tier hits |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${main_rows%$'\n'}

Ratios (req/s unless said): in the quietest round, the median of the per-round ratios (goals judged on it), every round:

| sample, body | ratio | quietest round | median | each round | goal (issue 16) | met | CPU per request ratio (quietest round) |
|---|---|---:|---:|---|---|---|---:|
${summary_rows%$'\n'}

${notes}CPU columns are % of one core over the run (the machine has $((ncpu * 100)) %); "other" is everything else
the machine did meanwhile: kernel network work not charged to a process, and other users of the
box (noise). A server well below 100 % while wrk is near 100 % means wrk set the pace; when
others take much CPU the request rates are unreliable and CPU per request is the steadier number
(a CPU per request ratio below 1: the first spends less CPU per request). "own-tier hits": share
of the run's lookups (the edge's cache_lookups counters) served by the tier the row measures.

All runs:

| sample | target | round | req/s | p50 (ms) | p99 (ms) | requests | server µs/req | server CPU % | wrk CPU % | other CPU % | own-tier hits % |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
$(all_results | awk '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 }')
MD
