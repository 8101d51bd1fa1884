#!/usr/bin/env bash
# schemathesis (PyPI) against the running edge, from openapi.yaml, with a valid API key: zero 5xx
# and zero schema violations, bounded in time. Needs a real Orthanc (ORTHANC_EDGE_IT_URL/USER/
# PASSWORD, as exported by scripts/it-orthanc.sh) and the edge binary (built here if missing).
#
#   scripts/it-orthanc.sh scripts/schemathesis.sh
#
# ST_MAX_EXAMPLES (default 60) examples per operation, ST_MAX_TIME (default 60) s per pass (2 passes);
# ST_TIME_LIMIT (default 300) s hard stop.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "schemathesis.sh: $*" >&2; }
: "${ORTHANC_EDGE_IT_URL:?run under scripts/it-orthanc.sh}"
scripts/setup-deps.sh fuzz
st=$(command -v schemathesis || echo /opt/orthanc-edge-st/bin/schemathesis)
cargo build --quiet --bin orthanc-edge
bin=${CARGO_TARGET_DIR:-target}/debug/orthanc-edge

work=$(mktemp -d /tmp/orthanc-edge-st.XXXXXX)
edge_pid=
cleanup() {
  if [[ -n $edge_pid ]]; then
    kill -TERM "$edge_pid" 2>/dev/null || true
    wait "$edge_pid" 2>/dev/null || true
  fi
  rm -rf -- "$work"
}
trap cleanup EXIT

key=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
printf '%s\n' "$ORTHANC_EDGE_IT_PASSWORD" >"$work/pw"
cat >"$work/edge.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
workers = 2
[orthanc]
url = "$ORTHANC_EDGE_IT_URL"
username = "$ORTHANC_EDGE_IT_USER"
password_file = "$work/pw"
[cache]
dir = "$work/cache"
[[auth.api_keys]]
name = "schemathesis"
hash = "$("$bin" hash-key "$key")"
scopes = ["preview"]
[log]
filter = "warn"
TOML
"$bin" serve --config "$work/edge.toml" 2>"$work/edge.log" &
edge_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done

# Half of the generated ids are real instances, so images (200, 304) are checked too.
cp scripts/schemathesis.toml "$work/st.toml"
if [[ -n ${ORTHANC_EDGE_IT_MANIFEST:-} ]]; then
  python3 - "$ORTHANC_EDGE_IT_MANIFEST" >>"$work/st.toml" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
ids = [v["instance"] for v in m["instances"].values()]
print("\n[dictionaries.instances]\nvalues = %s" % json.dumps(ids))
print('\n[parameters]\n"path.id" = { dictionary = "instances", probability = 0.5 }')
PY
fi
log "running against http://127.0.0.1:$port"
status=0
# $1: phases; the rest: extra options. The hooks encode what OpenAPI 3.0 cannot (parameters that
# exclude each other); the coverage phase does not apply hooks, so there the check that every
# schema-valid request is accepted is left out (the fuzzing pass makes it, with the hooks).
st_pass() {
  local phases=$1
  shift
  PYTHONPATH=scripts${PYTHONPATH:+:$PYTHONPATH} SCHEMATHESIS_HOOKS=schemathesis_hooks \
    timeout --kill-after=10 "${ST_TIME_LIMIT:-300}" \
    "$st" --config-file "$work/st.toml" run openapi.yaml \
    --url "http://127.0.0.1:$port" \
    --header "X-Api-Key: $key" \
    --phases "$phases" \
    --max-examples "${ST_MAX_EXAMPLES:-60}" \
    --max-time "${ST_MAX_TIME:-60}" \
    --workers 2 \
    --seed 1 \
    --generation-database none \
    --no-color "$@" || status=$?
}
st_pass coverage --checks all --exclude-checks positive_data_acceptance
st_pass examples,fuzzing --checks all
kill -0 "$edge_pid" 2>/dev/null || { log "the edge died"; tail -n 30 "$work/edge.log" >&2; exit 1; }
if grep -q '"status":5\|panicked' "$work/edge.log"; then
  log "the edge logged a 5xx or a panic"
  grep '"status":5\|panicked' "$work/edge.log" | head -n 5 >&2
  status=1
fi
exit "$status"
