#!/usr/bin/env bash
# Load benchmark: orthanc-edge memory hit vs nginx proxy_cache hit vs Orthanc direct, for the PNG
# preview of the 512x512 CT sample (`ct16`; SAMPLE= for another), all on 127.0.0.1, in one run.
# See BENCHMARKS.md (current figures) and docs/benchmark-history.md (earlier runs).
#
#   scripts/bench/load.sh              # prints a Markdown table on stdout, progress on stderr
#
# Starts a real Orthanc with the sample DICOM files (scripts/ci/it-orthanc.sh), builds and starts
# target/release/orthanc-edge, and an nginx (benches/nginx.conf.template) with its own prefix,
# proxy_cache and hard-coded Basic credentials. Warms both caches with one request, checks that
# edge, nginx and Orthanc return the same bytes, then runs wrk against each target, interleaved.
# Everything it starts is stopped on exit (EXIT/INT/TERM trap); its files live in a temp dir.
#
# Environment (defaults in brackets):
#   WORKERS (or W) [1]     edge server.workers and nginx worker_processes
#   DURATION [8]           seconds of each wrk run on the edge and on nginx
#   ORTHANC_DURATION [4]   seconds of each wrk run on Orthanc direct (it is slow)
#   CONNECTIONS [16]       wrk connections (one wrk thread: -t1)
#   ROUNDS [3]             runs per target, interleaved (edge, nginx, orthanc, edge, ...); the
#                          summary shows the quietest round (least CPU taken by other processes
#                          during its edge and nginx runs) and the edge/nginx ratio of every round
#   PIN [auto]             1: servers on CPU 0, wrk on CPU 1 (taskset); auto: when WORKERS=1 and
#                          there are at least 2 CPUs; 0: no pinning. Orthanc is never pinned.
#   SAMPLE [ct16]          the sample instance (a stem of scripts/dev/gen_dicom.py), e.g. cr_large
#                          (2048x2500; then ORTHANC_DURATION should be longer: ~3 renders/s)
#   SKIP_BUILD [0]         1: use the existing target/release/orthanc-edge, do not run cargo build
#   KEEP_TMP [0]           1: keep the temp dir (configs, logs, wrk outputs) for inspection
# Needs: Orthanc + pydicom/numpy (scripts/ci/setup-deps.sh orthanc python), nginx, wrk, curl,
# python3, cargo. Total time with the defaults: about 70 seconds after the build.
set -euo pipefail
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
SAMPLE=${SAMPLE:-ct16}
API_KEY=bench-load-key

log() { echo "bench-load.sh: [${SECONDS}s] $*" >&2; }
die() { log "error: $*"; exit 1; }

for v in WORKERS DURATION ORTHANC_DURATION CONNECTIONS ROUNDS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
for tool in nginx wrk curl python3 cargo cmp; do
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
  # Never fails: under `set -e` a failing step here would skip it-orthanc.sh's cleanup chained after.
  stop_pid "$wrk_pid" wrk
  wrk_pid=
  stop_pid "$edge_pid" orthanc-edge
  edge_pid=
  stop_pid "$nginx_pid" nginx
  nginx_pid=
  if [[ -n $tmp && -d $tmp ]]; then
    if [[ $KEEP_TMP == 1 ]]; then log "kept $tmp"; else rm -rf -- "$tmp" || true; fi
  fi
  return 0
}
# Set before sourcing it-orthanc.sh: it chains its own cleanup (stop Orthanc) after this one.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build, then Orthanc with the samples ---------------------------------------------------------
if [[ $SKIP_BUILD == 1 ]]; then
  log "SKIP_BUILD=1: using the existing release binary"
else
  log "building the release binary"
  cargo build --release --quiet >&2
fi
edge_bin=$root/target/release/orthanc-edge
[[ -x $edge_bin ]] || die "$edge_bin not found after cargo build --release"

scripts/ci/setup-deps.sh orthanc python >&2

tmp=$(mktemp -d /tmp/orthanc-edge-bench.XXXXXX)
# Orthanc's storage, both caches and the logs need little, but a full disk fails in odd ways
# (truncated nginx answers, empty wrk output): refuse to start below 200 MB.
free_kb=$(df -k --output=avail "$tmp" | tail -n 1 | tr -d ' ')
((free_kb >= 200000)) || die "only $((free_kb / 1024)) MB free in /tmp: need 200 MB"
log "starting Orthanc with the sample DICOM files"
# it-orthanc.sh puts its files under $WORKDIR when set (and then keeps them): use its own temp dir.
unset WORKDIR
if [[ $SAMPLE == cr_large ]]; then export IT_ORTHANC_LARGE=1; fi
# shellcheck source=scripts/ci/it-orthanc.sh
source scripts/ci/it-orthanc.sh >&2
[[ -n ${ORTHANC_EDGE_IT_URL:-} && -f ${ORTHANC_EDGE_IT_MANIFEST:-} ]] ||
  die "scripts/ci/it-orthanc.sh did not export ORTHANC_EDGE_IT_URL / ORTHANC_EDGE_IT_MANIFEST"
orthanc_pid=$(cat "$ORTHANC_EDGE_IT_DIR/orthanc.pid" 2>/dev/null || true)

read -r sample_id sample_w sample_h sample_status sample_modality < <(
  python3 - "$ORTHANC_EDGE_IT_MANIFEST" "$SAMPLE" <<'EOF'
import json, sys
instances = json.load(open(sys.argv[1]))["instances"]
if sys.argv[2] not in instances:
    sys.exit(f"no sample {sys.argv[2]!r}; the manifest has: {', '.join(sorted(instances))}")
i = instances[sys.argv[2]]
print(i["instance"], i["width"], i["height"], i["preview_status"], i.get("modality") or "?")
EOF
) || true
[[ -n ${sample_id:-} ]] || die "cannot read sample $SAMPLE from $ORTHANC_EDGE_IT_MANIFEST"
[[ $sample_status == 200 ]] || die "Orthanc answers $sample_status for the $SAMPLE preview"
path=/instances/$sample_id/preview
orthanc_hostport=${ORTHANC_EDGE_IT_URL#http://}
orthanc_hostport=${orthanc_hostport%/}
basic=$(printf '%s:%s' "$ORTHANC_EDGE_IT_USER" "$ORTHANC_EDGE_IT_PASSWORD" | base64 -w0)

space_left() { df -h --output=avail "$tmp" 2>/dev/null | tail -n 1 | tr -d ' '; }

# --- orthanc-edge -----------------------------------------------------------------------------
edge_port=$(free_port)
(umask 077 && printf '%s' "$ORTHANC_EDGE_IT_PASSWORD" >"$tmp/orthanc-password")
cat >"$tmp/edge.toml" <<TOML
[server]
listen = "127.0.0.1:$edge_port"
admin_listen = "127.0.0.1:0"
workers = $WORKERS

[orthanc]
url = "$ORTHANC_EDGE_IT_URL"
username = "$ORTHANC_EDGE_IT_USER"
password_file = "$tmp/orthanc-password"

[cache]
dir = "$tmp/edge-cache"
memory_bytes = 268435456
disk_bytes = 1073741824

[[auth.api_keys]]
name = "bench"
hash = "$("$edge_bin" hash-key "$API_KEY")"
scopes = ["preview"]

[log]
filter = "warn"
TOML
log "starting orthanc-edge on 127.0.0.1:$edge_port (workers=$WORKERS)"
start_edge "$edge_bin" "$tmp/edge.toml" "$edge_port" "$tmp/edge.log" "${server_cpu[@]}" || die "orthanc-edge did not start"
edge_pid=$EDGE_PID

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

# --- warm both caches, check the bytes ----------------------------------------------------------
edge_url=http://127.0.0.1:$edge_port$path
nginx_url=http://127.0.0.1:$nginx_port$path
orthanc_url=$ORTHANC_EDGE_IT_URL$path

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

log "warming the caches and comparing bytes"
s=$(fetch orthanc "$orthanc_url" "$tmp/orthanc" -H "Authorization: Basic $basic" -H 'Accept-Encoding: identity')
expect_200 orthanc "$s" "$tmp/orthanc"
s=$(fetch edge "$edge_url" "$tmp/edge1" -H "X-Api-Key: $API_KEY")
expect_200 edge "$s" "$tmp/edge1"
s=$(fetch edge "$edge_url" "$tmp/edge2" -H "X-Api-Key: $API_KEY")
expect_200 edge "$s" "$tmp/edge2"
[[ $(header "$tmp/edge2.head" x-cache) == hit-memory ]] ||
  die "edge second request: X-Cache '$(header "$tmp/edge2.head" x-cache)', expected hit-memory"
s=$(fetch nginx "$nginx_url" "$tmp/nginx1")
expect_200 nginx "$s" "$tmp/nginx1"
s=$(fetch nginx "$nginx_url" "$tmp/nginx2")
expect_200 nginx "$s" "$tmp/nginx2"
[[ $(header "$tmp/nginx2.head" x-cache) == HIT ]] ||
  die "nginx second request: X-Cache '$(header "$tmp/nginx2.head" x-cache)', expected HIT"
for f in edge1 edge2 nginx1 nginx2; do
  cmp -s "$tmp/orthanc.body" "$tmp/$f.body" || die "$f body differs from Orthanc's"
done
[[ $(head -c 8 "$tmp/orthanc.body" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] ||
  die "Orthanc's answer is not a PNG"
body_bytes=$(wc -c <"$tmp/orthanc.body")
log "$SAMPLE ${sample_w}x${sample_h} PNG: $body_bytes bytes, identical from Orthanc, edge and nginx"

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

declare -A pid_of=([edge]=$edge_pid [nginx]=$nginx_pid [orthanc]=${orthanc_pid:-})
declare -A url_of=([edge]=$edge_url [nginx]=$nginx_url [orthanc]=$orthanc_url)
declare -A dur_of=([edge]=$DURATION [nginx]=$DURATION [orthanc]=$ORTHANC_DURATION)
results=() # "target round rps p50 p99 requests server_us/req server_cpu% wrk_cpu% other_cpu%"

run_wrk() { # target round
  local t=$1 r=$2 out=$tmp/wrk-$1-$2.txt hdr=() before after rps p50 p99 reqs non2xx errs cpu
  local wrk_before wrk_after started elapsed pct wrk_pct busy_before busy_after other_pct
  case $t in
    edge) hdr=(-H "X-Api-Key: $API_KEY") ;;
    orthanc) hdr=(-H "Authorization: Basic $basic" -H 'Accept-Encoding: identity') ;;
  esac
  before=$(cpu_ticks "${pid_of[$t]}")
  child_cpu
  wrk_before=$child_cpu_s
  busy_before=$(machine_busy)
  started=$(date +%s.%N)
  # In the background and waited for, so that INT/TERM stop the script at once, not after the run.
  timeout $((dur_of[$t] + 30)) "${wrk_cpu[@]}" wrk -t1 -c"$CONNECTIONS" -d"${dur_of[$t]}s" --latency \
    "${hdr[@]}" "${url_of[$t]}" >"$out" 2>&1 &
  wrk_pid=$!
  if ! wait "$wrk_pid"; then
    wrk_pid=
    cat "$out" >&2
    die "wrk on $t failed"
  fi
  wrk_pid=
  after=$(cpu_ticks "${pid_of[$t]}")
  elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  busy_after=$(machine_busy)
  child_cpu
  wrk_after=$child_cpu_s
  read -r rps p50 p99 reqs non2xx errs < <(parse_wrk "$out")
  if [[ ! -s $out ]]; then
    # wrk ignores write errors: an empty output with exit status 0 is a full disk.
    die "wrk on $t wrote no output ($(space_left) free in $tmp)"
  fi
  [[ -n $rps && $rps != 0 ]] || { cat "$out" >&2; die "could not read wrk output for $t"; }
  ((non2xx == 0)) || { cat "$out" >&2; die "$t: $non2xx non-2xx answers under load"; }
  if ((errs > 0)); then
    log "warning: $t round $r: $errs socket errors (connect/read/write/timeout):"
    cat "$out" >&2
  fi
  # Server CPU per request, in microseconds (the steadier number on a shared machine).
  # Server CPU per request, in microseconds, and in % of one core: if the server is well below
  # 100% while wrk is near 100%, the load generator, not the server, set the request rate.
  cpu=- pct=-
  if [[ $before != - && $after != - ]]; then
    read -r cpu pct < <(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="$reqs" -v e="$elapsed" \
      'BEGIN { printf "%.1f %.0f\n", (n > 0 ? t / hz * 1e6 / n : 0), t / hz / e * 100 }')
  fi
  wrk_pct=$(awk -v a="$wrk_before" -v b="$wrk_after" -v e="$elapsed" 'BEGIN { printf "%.0f", (b - a) / e * 100 }')
  # Everything else the machine did meanwhile (kernel network work, other users): the noise.
  other_pct=$(awk -v b=$((busy_after - busy_before)) -v hz="$clk_tck" -v e="$elapsed" -v s="$pct" -v w="$wrk_pct" \
    'BEGIN { o = b / hz / e * 100 - (s == "-" ? 0 : s) - w; printf "%.0f", (o < 0 ? 0 : o) }')
  log "$(printf '%-8s round %d: %10s req/s  p50 %8.3f ms  p99 %8.3f ms  server %s us/req (%s%% CPU)  wrk %s%%  other %s%%' \
    "$t" "$r" "$rps" "$p50" "$p99" "$cpu" "$pct" "$wrk_pct" "$other_pct")"
  results+=("$t $r $rps $p50 $p99 $reqs $cpu $pct $wrk_pct $other_pct")
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "wrk -t1 -c$CONNECTIONS, $ROUNDS round(s): edge and nginx ${DURATION}s, Orthanc ${ORTHANC_DURATION}s (pinning: $PIN)"
for ((round = 1; round <= ROUNDS; round++)); do
  for t in edge nginx orthanc; do run_wrk "$t" "$round"; done
done

# --- report -------------------------------------------------------------------------------------
# On a shared machine the rounds differ mostly by what else ran meanwhile: show the quietest one,
# and the edge/nginx ratio of each round (edge and nginx run back to back, so a round pairs them).
quietest=$(printf '%s\n' "${results[@]}" | awk '$1 == "edge" || $1 == "nginx" { o[$2] += $10 }
  END { for (r = 1; r in o; r++) if (best == "" || o[r] < o[best]) best = r; print best }')
pick() { printf '%s\n' "${results[@]}" | awk -v t="$1" -v r="$quietest" '$1 == t && $2 == r'; }
read -r _ _ e_rps e_p50 e_p99 _ e_cpu e_pct e_wrk e_oth <<<"$(pick edge)"
read -r _ _ n_rps n_p50 n_p99 _ n_cpu n_pct n_wrk n_oth <<<"$(pick nginx)"
read -r _ _ o_rps o_p50 o_p99 _ o_cpu o_pct o_wrk o_oth <<<"$(pick orthanc)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
per_round=$(printf '%s\n' "${results[@]}" | awk '
  $1 == "edge"  { e[$2] = $3; ec[$2] = $7; eo[$2] = $10 }
  $1 == "nginx" { n[$2] = $3; nc[$2] = $7; no[$2] = $10 }
  END {
    for (r = 1; r in e; r++) {
      cpu = (nc[r] > 0 && ec[r] > 0) ? sprintf("%.2f", ec[r] / nc[r]) : "-"
      printf "| %d | %.2f | %s | %d %% |\n", r, e[r] / n[r], cpu, eo[r] + no[r]
    }
  }')
median_ratio=$(printf '%s\n' "${results[@]}" | awk '$1 == "edge" { e[$2] = $3 } $1 == "nginx" { n[$2] = $3 }
  END { for (r = 1; r in e; r++) print e[r] / n[r] }' | sort -g |
  awk '{ v[NR] = $1 } END { printf "%.2f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')

cat <<MD
### Load benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')

\`GET $path\` ($SAMPLE, ${sample_w}x${sample_h} $sample_modality, PNG, $body_bytes bytes); wrk -t1 -c$CONNECTIONS --latency;
workers=$WORKERS for the edge and nginx; $ROUNDS round(s), interleaved; below, round $quietest (the quietest); edge and nginx
${DURATION}s per run, Orthanc ${ORTHANC_DURATION}s; CPU pinning: $( [[ $PIN == 1 ]] && echo "servers on CPU 0, wrk on CPU 1" || echo none).
Load average before the runs: $load_before. $ncpu CPU(s): $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //'); Orthanc $(curl -s --max-time 5 -u "$ORTHANC_EDGE_IT_USER:$ORTHANC_EDGE_IT_PASSWORD" "$ORTHANC_EDGE_IT_URL/system" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Version"])' 2>/dev/null || echo '?').

| target | req/s | p50 | p99 | server CPU per request | server CPU | wrk CPU | other CPU |
|---|---:|---:|---:|---:|---:|---:|---:|
| orthanc-edge memory hit | $e_rps | $e_p50 ms | $e_p99 ms | $e_cpu µs | $e_pct % | $e_wrk % | $e_oth % |
| nginx proxy_cache hit | $n_rps | $n_p50 ms | $n_p99 ms | $n_cpu µs | $n_pct % | $n_wrk % | $n_oth % |
| Orthanc direct | $o_rps | $o_p50 ms | $o_p99 ms | $o_cpu µs | $o_pct % | $o_wrk % | $o_oth % |

req/s ratios (round $quietest): **edge/nginx = $(ratio "$e_rps" "$n_rps")**, edge/Orthanc = $(ratio "$e_rps" "$o_rps").
Server CPU per request, edge/nginx = $(ratio "$e_cpu" "$n_cpu") (below 1: the edge spends less CPU per request).
Median of the per-round edge/nginx req/s ratios: $median_ratio.
CPU columns are % of one core over the run (the machine has $((ncpu * 100)) %); "other" is everything else
the machine did meanwhile: kernel network work not charged to a process, and other users of the
box (noise). A server well below 100 % while wrk is near 100 % means wrk set the pace; when
others take much CPU the request rates are unreliable and CPU per request is the steadier number.

Each round (edge and nginx run back to back):

| round | edge/nginx req/s | edge/nginx CPU per request | other CPU during both |
|---:|---:|---:|---:|
$per_round

All runs:

| target | round | req/s | p50 (ms) | p99 (ms) | requests | server µs/req | server CPU % | wrk CPU % | other CPU % |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
$(printf '%s\n' "${results[@]}" | awk '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }')
MD
