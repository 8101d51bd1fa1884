# shellcheck shell=bash
# Shell helpers shared by the test, CI and benchmark scripts. Source it by a path relative to the
# sourcing script (`source "$(dirname "$0")/../lib.sh"`), or as `source scripts/lib.sh` after
# `cd`-ing to the repository root.

# A free TCP port on loopback (the kernel's choice; released before it is used).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Stop the given processes (TERM), then reap them.
stop_pids() {
  local p
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# Wait until `url` answers: any HTTP status, or with -f a 2xx. Gives up (status 1) after
# `seconds` (default 20) or as soon as process `pid` (if given, not "") has exited; then prints
# the last lines of `log` (if given) to stderr.
wait_http() { # [-f] url [pid] [seconds] [log]
  local ok_only=0
  if [[ ${1:-} == -f ]]; then ok_only=1; shift; fi
  local url=$1 pid=${2:-} tries=$((${3:-20} * 4)) log=${4:-} i code
  for ((i = 0; i < tries; i++)); do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then break; fi
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
    if ((ok_only)); then
      [[ $code == 2?? ]] && return 0
    else
      [[ $code != 000 ]] && return 0
    fi
    sleep 0.25
  done
  echo "wait_http: no answer from $url" >&2
  if [[ -n $log && -f $log ]]; then tail -n 20 "$log" >&2; fi
  return 1
}

# Build target/debug/orthanc-edge with the test hooks, as the same cargo targets as scripts/test.sh's
# nextest run (lib, bins, tests): the dev-dependencies then unify the same features (reqwest
# `blocking`, image `pnm`, ...), so after that run nothing is recompiled, and the faults stage
# after this one finds its build intact. `cargo build --bin orthanc-edge` alone resolves other
# features and rebuilt 36 crates twice (~110 s of CI).
build_test_bin() { # [cargo flags...]
  cargo build "$@" --features test-hooks --lib --bins --tests
}

# Start the edge binary `bin` (optionally under a command prefix, e.g. taskset) with `config`,
# stdout and stderr to `log`, and wait (30 s at most) until its /healthz on loopback `port`
# answers. The process id is left in EDGE_PID (the edge is a child of the calling shell).
start_edge() { # bin config port log [prefix...]
  local bin=$1 config=$2 port=$3 log=$4
  shift 4
  "$@" "$bin" serve --config "$config" </dev/null >"$log" 2>&1 &
  EDGE_PID=$!
  wait_http "http://127.0.0.1:$port/healthz" "$EDGE_PID" 30 "$log"
}

# A scratch folder in $work (/tmp/orthanc-edge-NAME.XXXXXX) and an empty $pids for the processes
# the script starts; on exit the processes are stopped and the folder removed (kept, and said so,
# with KEEP=1). Sets the EXIT trap.
scratch() { # name
  work=$(mktemp -d "/tmp/orthanc-edge-$1.XXXXXX")
  pids=()
  trap _scratch_cleanup EXIT
}
_scratch_cleanup() {
  stop_pids "${pids[@]}"
  if [[ ${KEEP:-0} == 1 ]]; then echo "$(basename "$0"): kept $work" >&2; else rm -rf "$work"; fi
}

# The environment that puts edge binary `bin` with `config` in render mode `mode`, left in the
# array RENDER_ENV: ORTHANC_EDGE__RENDER__MODE=mode, or nothing for an edge that predates
# render.mode (refuses the key) asked for mode orthanc, its only behaviour. Status 1 (and why on
# stderr) if this edge cannot run in that mode.
render_mode_env() { # bin config mode
  RENDER_ENV=("ORTHANC_EDGE__RENDER__MODE=$3")
  env "${RENDER_ENV[@]}" "$1" check-config --config "$2" >/dev/null 2>&1 && return 0
  RENDER_ENV=()
  if [[ $3 == orthanc ]] && "$1" check-config --config "$2" >/dev/null 2>&1; then
    echo "this edge has no render.mode: mode orthanc is its default behaviour" >&2
    return 0
  fi
  echo "this edge cannot run with render.mode = $3 (check-config refuses it)" >&2
  return 1
}

# The start of a benchmark edge's config on stdout: listening on loopback `port`, the Orthanc of
# ORTHANC_EDGE_IT_URL/_USER/_PASSWORD (scripts/ci/it-orthanc.sh), its cache in `cache_dir`,
# warnings only. The caller appends its own sections (API keys, [warm], ...).
bench_edge_toml() { # port cache_dir
  cat <<TOML
[server]
listen = "127.0.0.1:$1"
admin_listen = "127.0.0.1:0"
[orthanc]
url = "$ORTHANC_EDGE_IT_URL"
username = "$ORTHANC_EDGE_IT_USER"
password = "$ORTHANC_EDGE_IT_PASSWORD"
[cache]
dir = "$2"
[log]
filter = "warn"
TOML
}

# The edge binary a benchmark runs, left in $bin: $ORTHANC_EDGE_BIN if set, else the release
# build (made here).
bench_edge_bin() {
  if [[ -z ${ORTHANC_EDGE_BIN:-} ]]; then cargo build --release --quiet; fi
  bin=${ORTHANC_EDGE_BIN:-${CARGO_TARGET_DIR:-target}/release/orthanc-edge}
}

# A scratch folder (`scratch name`) and a private Orthanc holding the generated benchmark study:
# $SLICES CT slices (default `slices`), 512x512, over 20 series, plus the 5 sample series; the
# ORTHANC_EDGE_IT_* variables exported (scripts/ci/it-orthanc.sh), Orthanc stopped on exit.
bench_study() { # name slices
  export IT_ORTHANC_SLICES=${SLICES:-$2} IT_ORTHANC_CT_SERIES=20 IT_ORTHANC_CT_SIZE=512 IT_ORTHANC_PATIENT_B=0
  # scratch sets the EXIT trap first: it-orthanc.sh chains its own stop onto it.
  scratch "$1"
  # shellcheck source=scripts/ci/it-orthanc.sh
  source "$(dirname "${BASH_SOURCE[0]}")/ci/it-orthanc.sh"
}
