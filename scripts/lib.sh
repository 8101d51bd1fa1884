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
