#!/usr/bin/env bash
# Authorization benchmark (issue 3): cached previews served to an authorized browser, on loopback,
# in one run. Targets (all answer the PNG preview of the 512x512 CT sample `ct16` from a cache):
#   nginx-plain       nginx proxy_cache, Orthanc credentials hard-coded, no client auth (reference)
#   nginx-authreq     nginx proxy_cache + auth_request → Django view checking Django's session
#                     (database backend, SQLite) under gunicorn: the set-up from the original report
#   edge-apikey       orthanc-edge memory hit, X-Api-Key
#   edge-jwt-cookie   orthanc-edge memory hit, session cookie holding a JWT scoped to the study
#                     (signature check + study scope through the cached instance→study parents)
#   edge-delegated    orthanc-edge memory hit, delegated to the same Django view, decision cached
#
#   scripts/bench/auth.sh          # Markdown table on stdout, progress on stderr
#
# Starts a real Orthanc (scripts/ci/it-orthanc.sh), gunicorn + Django (examples/django), nginx
# (benches/nginx-auth.conf.template) and target/release/orthanc-edge; checks every target returns
# Orthanc's exact bytes; warms the caches; then runs wrk against each target, interleaved, ROUNDS
# times. Everything it starts is stopped on exit; its files live in a temp dir.
# Besides req/s, each run records the CPU time the servers used (edge, nginx, gunicorn and their
# children, from /proc): requests per server CPU-second is the cost per request, which other work
# on a shared machine does not inflate the way it cuts req/s.
#
# Environment (defaults in brackets):
#   DURATION [8]      seconds per wrk run        CONNECTIONS [16]  wrk connections (-t1)
#   ROUNDS [5]        interleaved rounds, each in a rotated order; the table shows each target's
#                     median run by req/s
#   PIN [auto]        1: servers (nginx, gunicorn, edge: one worker each, gunicorn 3 sync workers)
#                     on CPU 0, wrk on CPU 1; auto: when there are at least 2 CPUs
#   NICE [0]          niceness of the servers and wrk, e.g. -10 on a machine shared with builds
#                     (root only for negative values): the table footer shows the load average
#   KEEP_TMP [0]      1: keep the temp dir (configs, logs, wrk outputs)
#   ORTHANC_EDGE_BIN  the edge binary to run (no build); unset: target/release, built here
# Needs: scripts/ci/setup-deps.sh orthanc python bench; cargo. About 2.5 minutes after the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
root=$(pwd -P)

DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-16}
ROUNDS=${ROUNDS:-5}
PIN=${PIN:-auto}
KEEP_TMP=${KEEP_TMP:-0}
NICE=${NICE:-0}
API_KEY=bench-auth-api-key

log() { echo "bench-auth.sh: [${SECONDS}s] $*" >&2; }
die() { log "error: $*"; exit 1; }
for v in DURATION CONNECTIONS ROUNDS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
for tool in nginx wrk curl python3 cargo cmp; do
  command -v "$tool" >/dev/null 2>&1 || [[ -x /usr/sbin/$tool ]] ||
    die "$tool not found (scripts/ci/setup-deps.sh orthanc python bench)"
done
python3 -c 'import django, gunicorn, jwt' 2>/dev/null || die "Django/gunicorn/PyJWT missing (scripts/ci/setup-deps.sh bench)"
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
case $PIN in
  auto) if [[ $(nproc) -ge 2 ]]; then PIN=1; else PIN=0; fi ;;
  0 | 1) ;;
  *) die "PIN must be 0, 1 or auto" ;;
esac
[[ $NICE =~ ^-?[0-9]+$ ]] || die "NICE must be an integer (got '$NICE')"
server_cpu=(nice -n "$NICE") wrk_cpu=(nice -n "$NICE")
if [[ $PIN == 1 ]]; then
  server_cpu+=(taskset -c 0)
  wrk_cpu+=(taskset -c 1)
fi

# --- processes we start, stopped by the trap --------------------------------------------------
tmp=
pids=()
stop_all() {
  local p i
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=()
}
cleanup() {
  stop_all
  # Orthanc keeps its pid file under $tmp: stop it before the folder goes.
  if declare -F _it_orthanc_cleanup >/dev/null; then _it_orthanc_cleanup; fi
  if [[ -n $tmp ]]; then
    if [[ $KEEP_TMP == 1 ]]; then log "kept $tmp"; else rm -rf -- "$tmp"; fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM


if [[ -z ${ORTHANC_EDGE_BIN:-} ]]; then log "building target/release/orthanc-edge"; fi
bench_edge_bin
edge_bin=$bin

tmp=$(mktemp -d /tmp/orthanc-edge-bench-auth.XXXXXX)
log "starting Orthanc with the sample studies"
# shellcheck source=scripts/ci/it-orthanc.sh
WORKDIR=$tmp/it source scripts/ci/it-orthanc.sh
manifest=$ORTHANC_EDGE_IT_MANIFEST
read -r instance study < <(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); i=m["instances"]["ct16"]; print(i["instance"], m["study"])' "$manifest")
path=/instances/$instance/preview

# --- Django (gunicorn) ------------------------------------------------------------------------
django_port=$(free_port)
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export DJANGO_DB=$tmp/db.sqlite3 EDGE_JWT_SECRET=$secret EDGE_STUDIES=$study
python3 examples/django/manage.py migrate --noinput >"$tmp/migrate.log" 2>&1 || { cat "$tmp/migrate.log" >&2; die "migrate failed"; }
"${server_cpu[@]}" python3 -m gunicorn --chdir examples/django -b "127.0.0.1:$django_port" -w 3 \
  webapp.wsgi >"$tmp/gunicorn.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$django_port/login" "" 20 "$tmp/gunicorn.log" || die "gunicorn did not come up"
session=$(curl -s -D - -o /dev/null "http://127.0.0.1:$django_port/login?user=bench" |
  sed -n 's/^[Ss]et-[Cc]ookie: \(sessionid=[^;]*\).*/\1/p')
[[ -n $session ]] || die "no Django session cookie"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $session" "http://127.0.0.1:$django_port/edge-auth")
[[ $code == 204 ]] || die "Django validator answered $code for a logged-in session"

# --- nginx --------------------------------------------------------------------------------------
plain_port=$(free_port)
auth_port=$(free_port)
mkdir -p "$tmp/nginx/tmp" "$tmp/nginx/cache"
user_line=
if [[ $(id -u) == 0 ]]; then
  # As root, nginx workers drop to an unprivileged user: let it write its cache and temp files
  # (and only those: the temp dir stays unlistable, the Orthanc password file 0600).
  nginx_group=$(id -gn nobody)
  user_line="user nobody $nginx_group;"
  chmod 711 "$tmp"
  chmod 755 "$tmp/nginx"
  chown -R "nobody:$nginx_group" "$tmp/nginx/tmp" "$tmp/nginx/cache"
fi
basic=$(printf '%s:%s' "$ORTHANC_EDGE_IT_USER" "$ORTHANC_EDGE_IT_PASSWORD" | base64 -w0)
sed -e "s|@USER@|$user_line|" -e "s|@PREFIX@|$tmp/nginx|g" -e "s|@WORKERS@|1|g" -e "s|@PLAIN_PORT@|$plain_port|g" \
  -e "s|@AUTH_PORT@|$auth_port|g" -e "s|@BASIC@|$basic|g" \
  -e "s|@ORTHANC_HOSTPORT@|${ORTHANC_EDGE_IT_URL#http://}|g" \
  -e "s|@DJANGO_HOSTPORT@|127.0.0.1:$django_port|g" \
  benches/nginx-auth.conf.template >"$tmp/nginx/nginx.conf"
chmod 600 "$tmp/nginx/nginx.conf" # it holds the Orthanc credentials
"$nginx_bin" -t -q -e "$tmp/nginx/error.log" -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" ||
  die "nginx -t refused the config"
"${server_cpu[@]}" "$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2>"$tmp/nginx/stderr.log" &
pids+=($!)
wait_http "http://127.0.0.1:$plain_port/" "" 20 "$tmp/nginx/stderr.log" || die "nginx did not come up"

# --- the edge -----------------------------------------------------------------------------------
edge_port=$(free_port)
(umask 077 && printf '%s\n' "$ORTHANC_EDGE_IT_PASSWORD" >"$tmp/orthanc-password")
cat >"$tmp/edge.toml" <<TOML
[server]
listen = "127.0.0.1:$edge_port"
admin_listen = "127.0.0.1:0"
workers = 1
[orthanc]
url = "$ORTHANC_EDGE_IT_URL"
username = "$ORTHANC_EDGE_IT_USER"
password_file = "$tmp/orthanc-password"
[cache]
dir = "$tmp/edge-cache"
[[auth.api_keys]]
name = "bench"
hash = "$("$edge_bin" hash-key "$API_KEY")"
scopes = ["preview"]
[auth.jwt]
secret = "$secret"
[auth.delegate]
url = "http://127.0.0.1:$django_port/edge-auth"
forward_headers = ["Cookie"]
[log]
filter = "warn"
TOML
start_edge "$edge_bin" "$tmp/edge.toml" "$edge_port" "$tmp/edge.log" "${server_cpu[@]}" || die "edge did not come up"
pids+=("$EDGE_PID")
jwt=$(python3 -c 'import sys; sys.path.insert(0, "examples/django"); from webapp.tokens import edge_token; print(edge_token(sys.argv[1], "bench", studies=[sys.argv[2]], lifetime_s=3600))' "$secret" "$study")

# --- targets: name, URL, header -----------------------------------------------------------------
names=(nginx-plain nginx-authreq edge-apikey edge-jwt-cookie edge-delegated)
declare -A url hdr
url[nginx-plain]=http://127.0.0.1:$plain_port$path
hdr[nginx-plain]="Accept: image/png"
url[nginx-authreq]=http://127.0.0.1:$auth_port$path
hdr[nginx-authreq]="Cookie: $session"
url[edge-apikey]=http://127.0.0.1:$edge_port$path
hdr[edge-apikey]="X-Api-Key: $API_KEY"
url[edge-jwt-cookie]=http://127.0.0.1:$edge_port$path
hdr[edge-jwt-cookie]="Cookie: orthanc_edge_session=$jwt"
url[edge-delegated]=http://127.0.0.1:$edge_port$path
hdr[edge-delegated]="Cookie: $session"

log "checking every target returns Orthanc's bytes (and warming the caches)"
curl -s -u "$ORTHANC_EDGE_IT_USER:$ORTHANC_EDGE_IT_PASSWORD" -H 'Accept-Encoding: identity' \
  -o "$tmp/reference.png" "$ORTHANC_EDGE_IT_URL$path"
for n in "${names[@]}"; do
  for _ in 1 2; do
    code=$(curl -s -o "$tmp/$n.png" -D "$tmp/$n.headers" -w '%{http_code}' -H "${hdr[$n]}" "${url[$n]}")
  done
  [[ $code == 200 ]] || die "$n answered $code"
  cmp -s "$tmp/reference.png" "$tmp/$n.png" || die "$n bytes differ from Orthanc's"
  grep -qiE '^x-cache: (hit|hit-memory)' "$tmp/$n.headers" || die "$n: second request was not a cache hit"
done
# Without credentials, both gates refuse.
for u in "http://127.0.0.1:$auth_port$path" "http://127.0.0.1:$edge_port$path"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Cookie: sessionid=nope' "$u")
  [[ $code == 401 ]] || die "$u answered $code to a bad session"
done

# --- measure --------------------------------------------------------------------------------------
# CPU time (clock ticks) used so far by the given processes and all their descendants: the
# servers' cost per request, which other work on a shared machine does not inflate.
tree_ticks() {
  python3 - "$@" <<'PY'
import os, sys
stats = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            s = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        f = s[s.rindex(")") + 2:].split()
        stats[int(d)] = (int(f[1]), int(f[11]) + int(f[12]))  # ppid, utime + stime
todo, seen, total = [int(p) for p in sys.argv[1:]], set(), 0
while todo:
    p = todo.pop()
    if p in seen or p not in stats:
        continue
    seen.add(p)
    total += stats[p][1]
    todo += [c for c, (pp, _) in stats.items() if pp == p]
print(total)
PY
}
hz=$(getconf CLK_TCK)
run() { # name round → "req/s requests-per-server-CPU-second" on stdout, wrk output kept
  local n=$1 r=$2 out=$tmp/wrk-$1-$2.txt t0 t1
  t0=$(tree_ticks "${pids[@]}")
  "${wrk_cpu[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "${hdr[$n]}" "${url[$n]}" >"$out"
  t1=$(tree_ticks "${pids[@]}")
  if grep -q 'Non-2xx' "$out"; then cat "$out" >&2; die "$n: non-2xx answers under load"; fi
  awk -v t="$((t1 - t0))" -v hz="$hz" '/Requests\/sec/ {rps = $2} / requests in / {req = $1}
    END {printf "%s %.0f\n", rps, (t > 0 ? req / (t / hz) : 0)}' "$out"
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A results eff
for ((r = 1; r <= ROUNDS; r++)); do
  # Each round starts one target later: no target always runs right after the same one (a
  # fixed order showed up as a steady few percent against whichever target ran last).
  order=("${names[@]:$(((r - 1) % ${#names[@]}))}" "${names[@]:0:$(((r - 1) % ${#names[@]}))}")
  for n in "${order[@]}"; do
    read -r rps rpc < <(run "$n" "$r")
    results[$n]+="$rps "
    eff[$n]+="$rpc "
    log "round $r $n: $rps req/s, $rpc requests per server CPU-second"
  done
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
latency() { # name rps → "avg p99" of that run
  local n=$1 rps=$2 f
  f=$(grep -l "Requests/sec: *$rps" "$tmp"/wrk-"$n"-*.txt | head -n1)
  printf '%s %s\n' "$(awk '/^    Latency/ {print $2}' "$f")" "$(awk '/^ +99%/ {print $2}' "$f")"
}
declare -A med mef
for n in "${names[@]}"; do
  med[$n]=$(echo "${results[$n]}" | median)
  mef[$n]=$(echo "${eff[$n]}" | median)
done
base=${med[nginx-authreq]}
api=${med[edge-apikey]}
ebase=${mef[nginx-authreq]}
eapi=${mef[edge-apikey]}
printf '| target | req/s (median of %s) | runs | avg latency | p99 | × nginx+auth_request | vs edge API key | requests per server CPU-s | × nginx+auth_request | vs edge API key |\n' "$ROUNDS"
printf '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n'
for n in "${names[@]}"; do
  read -r avg p99 < <(latency "$n" "${med[$n]}")
  awk -v n="$n" -v m="${med[$n]}" -v runs="${results[$n]% }" -v avg="$avg" -v p99="$p99" -v b="$base" -v a="$api" \
    -v e="${mef[$n]}" -v eb="$ebase" -v ea="$eapi" \
    'BEGIN { printf "| %s | %.0f | %s | %s | %s | %.1f× | %+.1f%% | %.0f | %.1f× | %+.1f%% |\n", n, m, runs, avg, p99, m/b, (m/a-1)*100, e, e/eb, (e/ea-1)*100 }'
done
echo
echo "wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS interleaved rounds, PIN=$PIN (servers on CPU 0, wrk on CPU 1 when 1), NICE=$NICE, $(nproc) CPUs; nginx $("$nginx_bin" -v 2>&1 | sed 's|.*/||'), Django $(python3 -c 'import django; print(django.get_version())'), gunicorn $(python3 -c 'import gunicorn; print(gunicorn.__version__)') (3 sync workers), load average before/after: $load_before / $load_after (other work on the machine shows here), Orthanc $(curl -s -u "$ORTHANC_EDGE_IT_USER:$ORTHANC_EDGE_IT_PASSWORD" "$ORTHANC_EDGE_IT_URL/system" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Version"])')."
log "done"
