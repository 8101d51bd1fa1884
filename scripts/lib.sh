# shellcheck shell=bash
# Shell helpers shared by the test and benchmark scripts. Source it from the repository root:
#   source scripts/lib.sh

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

# Wait until `url` gives any HTTP answer (at most `seconds`, default 20) while process `pid` lives.
wait_http_up() { # url pid [seconds]
  local url=$1 pid=$2 tries=$((${3:-20} * 4)) i code
  for ((i = 0; i < tries; i++)); do
    kill -0 "$pid" 2>/dev/null || return 1
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
    [[ $code != 000 ]] && return 0
    sleep 0.25
  done
  return 1
}
