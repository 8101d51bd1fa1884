#!/usr/bin/env bash
# Starts/stops a private, real Orthanc (Debian package, 1.10.1 on bookworm) for integration
# tests and the demo: its own config, storage, random loopback ports and a per-start password.
#
#   scripts/dev/orthanc.sh start DIR    # → DIR/orthanc.env (export ORTHANC_EDGE_IT_URL/USER/PASSWORD)
#   scripts/dev/orthanc.sh stop DIR     # TERM, bounded wait, then KILL
#   scripts/dev/orthanc.sh status DIR   # exit 0 if the instance of DIR is up and answering
#   scripts/dev/orthanc.sh pause DIR    # stop it but keep its ports and password (fault tests) ...
#   scripts/dev/orthanc.sh resume DIR   # ... and start it again on the same ports, same password
#
# DIR gets orthanc.json, orthanc.log, orthanc.pid, orthanc.env and storage/ (kept across runs,
# so a restart keeps the uploaded instances). Never uses the system service or /etc/orthanc.
# Optional environment:
#   ORTHANC_IT_EXTRA_JSON     JSON object merged over the generated config, e.g.
#                             '{"HttpCompressionEnabled": false}' (leave RegisteredUsers alone)
#   ORTHANC_IT_START_TIMEOUT  seconds to wait for GET /system (default 30)
# Ports are picked free just before start; if Orthanc still cannot bind, start retries (3x).
# Orthanc 1.10.1 has no bind-address option: its HTTP and DICOM servers bind the wildcard
# address. Started with scripts/dev/loopback_bind.c preloaded (compiled with cc on first use),
# they bind 127.0.0.1 / ::1 instead; without a C compiler they stay on every interface, where
# RemoteAccessAllowed=false still refuses non-loopback HTTP clients and the DICOM server accepts
# only C-ECHO from unknown peers (no modalities are registered).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../lib.sh"

usage() {
  echo "usage: $0 start|stop|status DIR" >&2
  exit 2
}

[[ $# -eq 2 ]] || usage
cmd=$1
dir=$2

log() { echo "orthanc.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

orthanc_bin() {
  command -v Orthanc 2>/dev/null && return 0
  [[ -x /usr/sbin/Orthanc ]] && { echo /usr/sbin/Orthanc; return 0; }
  return 1
}

ensure_orthanc() {
  if orthanc_bin >/dev/null; then return 0; fi
  log "Orthanc not found; installing the Debian package"
  [[ $(id -u) -eq 0 ]] || die "Orthanc is not installed and we are not root (run scripts/ci/setup-deps.sh as root)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq orthanc >/dev/null
  orthanc_bin >/dev/null || die "Orthanc still not found after apt-get install orthanc"
}

# PID from DIR/orthanc.pid if that process is alive and is our Orthanc (not a reused PID).
running_pid() {
  local pidfile=$dir/orthanc.pid pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/orthanc.json" || return 1
  echo "$pid"
}

http_status() { # url user password → prints the HTTP status of GET url (000 if no answer)
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -u "$2:$3" "$1") || true
  echo "${code:-000}"
}

do_stop() {
  local pid i
  if pid=$(running_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do # 20 s
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "Orthanc (pid $pid) did not stop after TERM; sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 25; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
      done
    fi
  fi
  rm -f "$dir/orthanc.pid" "$dir/orthanc.env"
}

# Writes DIR/orthanc.json; prints the HTTP port actually configured.
write_config() { # http_port dicom_port password
  ORTHANC_IT_DIR=$dir ORTHANC_IT_HTTP_PORT=$1 ORTHANC_IT_DICOM_PORT=$2 ORTHANC_IT_PASSWORD=$3 \
    python3 - <<'EOF'
import json, os
d = os.environ["ORTHANC_IT_DIR"]
cfg = {
    "Name": "orthanc-edge-it",
    "StorageDirectory": os.path.join(d, "storage"),
    "IndexDirectory": os.path.join(d, "storage"),
    "StorageCompression": False,
    "Plugins": [],                      # never load /usr/share/orthanc/plugins
    "LuaScripts": [],
    "ConcurrentJobs": 2,
    "HttpServerEnabled": True,
    "HttpPort": int(os.environ["ORTHANC_IT_HTTP_PORT"]),
    "RemoteAccessAllowed": False,       # only loopback clients (1.10.1 cannot bind 127.0.0.1 only)
    "AuthenticationEnabled": True,
    "RegisteredUsers": {"edge": os.environ["ORTHANC_IT_PASSWORD"]},
    "HttpDescribeErrors": True,
    "HttpCompressionEnabled": True,     # the 1.10.1 default; the edge must ask for identity
    "HttpVerbose": False,
    "KeepAlive": True,
    "HttpThreadsCount": 50,
    "OrthancExplorerEnabled": True,
    "WebDavEnabled": False,
    "DicomServerEnabled": True,
    "DicomAet": "EDGEIT",
    "DicomPort": int(os.environ["ORTHANC_IT_DICOM_PORT"]),
    "DicomAlwaysAllowEcho": True,
    "DicomAlwaysAllowStore": False,     # nobody on the network can push into the test PACS
    "DicomModalities": {},
    "OrthancPeers": {},
    "StableAge": 2,                     # StableSeries/StableStudy reach /changes quickly
    "SaveJobs": False,
    "JobsHistorySize": 10,
    "OverwriteInstances": False,
    "MaximumStorageSize": 0,
    "MaximumPatientCount": 0,
    "DeidentifyLogs": True,
    "CheckRevisions": False,
    "HttpsCACertificates": "/etc/ssl/certs/ca-certificates.crt",
}
extra = os.environ.get("ORTHANC_IT_EXTRA_JSON", "").strip()
if extra:
    cfg.update(json.loads(extra))
path = os.path.join(d, "orthanc.json")
with open(path + ".tmp", "w") as f:
    json.dump(cfg, f, indent=2)
os.chmod(path + ".tmp", 0o600)
os.replace(path + ".tmp", path)
print(cfg["HttpPort"])
EOF
}

# The path of the compiled loopback_bind shim (built once per DIR), or nothing without cc.
loopback_shim() {
  local src so
  src=$(dirname "${BASH_SOURCE[0]}")/loopback_bind.c
  so=$dir/loopback_bind.so
  if [[ ! -f $so ]] && command -v cc >/dev/null 2>&1; then
    cc -shared -fPIC -O2 -o "$so" "$src" -ldl 2>>"$dir/orthanc.stderr" || rm -f "$so"
  fi
  [[ -f $so ]] && echo "$so"
  return 0
}

do_start() {
  ensure_orthanc
  local bin
  bin=$(orthanc_bin)
  mkdir -p "$dir/storage"
  # A leftover instance from a crashed run: stop it, we want fresh ports and password.
  if running_pid >/dev/null; then
    log "stopping a previous instance for $dir"
  fi
  do_stop

  local password attempt pid url code deadline http_port dicom_port
  local timeout=${ORTHANC_IT_START_TIMEOUT:-30}
  password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
  # Ports are picked then bound by Orthanc a moment later: retry if one was taken meanwhile.
  for attempt in 1 2 3; do
    http_port=$(free_port)
    dicom_port=$(free_port)
    while [[ $dicom_port == "$http_port" ]]; do dicom_port=$(free_port); done
    http_port=$(write_config "$http_port" "$dicom_port" "$password")
    url="http://127.0.0.1:$http_port"

    # stdin/stdout/stderr detached so callers using $(...) or pipes never wait on Orthanc.
    LD_PRELOAD=$(loopback_shim) "$bin" --logfile="$dir/orthanc.log" "$dir/orthanc.json" </dev/null \
      >>"$dir/orthanc.stderr" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/orthanc.pid"

    code=000
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
      kill -0 "$pid" 2>/dev/null || break
      code=$(http_status "$url/system" edge "$password")
      [[ $code == 200 ]] && break
      sleep 0.25
    done
    [[ $code == 200 ]] && break
    if kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$dir/orthanc.log" >&2 2>/dev/null || true
      do_stop
      die "Orthanc did not answer GET /system with 200 within ${timeout}s (last status $code)"
    fi
    wait "$pid" 2>/dev/null || true
    rm -f "$dir/orthanc.pid"
    if [[ $attempt == 3 ]]; then
      tail -n 30 "$dir/orthanc.log" "$dir/orthanc.stderr" >&2 2>/dev/null || true
      die "Orthanc exited during start-up, 3 times (see $dir/orthanc.log)"
    fi
    log "Orthanc exited during start-up (attempt $attempt); retrying with other ports"
  done

  umask 077
  cat >"$dir/orthanc.env.tmp" <<EOF
export ORTHANC_EDGE_IT_URL='$url'
export ORTHANC_EDGE_IT_USER='edge'
export ORTHANC_EDGE_IT_PASSWORD='$password'
EOF
  mv "$dir/orthanc.env.tmp" "$dir/orthanc.env"
  log "Orthanc up at $url (pid $pid, DICOM port $dicom_port, env in $dir/orthanc.env)"
}

do_status() {
  local pid
  pid=$(running_pid) || { log "not running"; return 1; }
  [[ -f $dir/orthanc.env ]] || { log "pid $pid running but no orthanc.env"; return 1; }
  # shellcheck disable=SC1091
  (
    source "$dir/orthanc.env"
    code=$(http_status "$ORTHANC_EDGE_IT_URL/system" "$ORTHANC_EDGE_IT_USER" "$ORTHANC_EDGE_IT_PASSWORD")
    [[ $code == 200 ]] || { log "pid $pid running but GET /system gave $code"; exit 1; }
    log "running: pid $pid at $ORTHANC_EDGE_IT_URL"
  )
}

do_pause() {
  [[ -f $dir/orthanc.env ]] || die "not started: $dir/orthanc.env missing"
  cp "$dir/orthanc.env" "$dir/orthanc.env.paused"
  do_stop
  log "paused (config kept in $dir/orthanc.json)"
}

do_resume() {
  [[ -f $dir/orthanc.env.paused && -f $dir/orthanc.json ]] || die "nothing paused in $dir"
  local bin pid code deadline timeout=${ORTHANC_IT_START_TIMEOUT:-30}
  bin=$(orthanc_bin) || die "Orthanc binary not found"
  # shellcheck disable=SC1091
  source "$dir/orthanc.env.paused"
  LD_PRELOAD=$(loopback_shim) "$bin" --logfile="$dir/orthanc.log" "$dir/orthanc.json" </dev/null \
    >>"$dir/orthanc.stderr" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/orthanc.pid"
  code=000
  deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || break
    code=$(http_status "$ORTHANC_EDGE_IT_URL/system" "$ORTHANC_EDGE_IT_USER" "$ORTHANC_EDGE_IT_PASSWORD")
    [[ $code == 200 ]] && break
    sleep 0.1
  done
  [[ $code == 200 ]] || { do_stop; die "resumed Orthanc did not answer (last status $code)"; }
  mv "$dir/orthanc.env.paused" "$dir/orthanc.env"
  log "resumed at $ORTHANC_EDGE_IT_URL (pid $pid)"
}

if [[ $cmd == start ]]; then
  mkdir -p "$dir"
elif [[ ! -d $dir ]]; then
  [[ $cmd == stop ]] && exit 0
  log "no such directory: $dir"
  exit 1
fi
dir=$(cd "$dir" && pwd -P)

case $cmd in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  pause) do_pause ;;
  resume) do_resume ;;
  *) usage ;;
esac
