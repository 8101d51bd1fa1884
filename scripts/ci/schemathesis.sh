#!/usr/bin/env bash
# schemathesis (PyPI) against the running edge, from openapi.yaml, with a valid API key holding
# every scope (preview, mint, warm, admin; minting on): zero 5xx and zero schema violations,
# bounded in time. Needs a real Orthanc (ORTHANC_EDGE_IT_URL/USER/PASSWORD, as exported by
# scripts/ci/it-orthanc.sh) and the edge binary (built here, or ORTHANC_EDGE_BIN).
#
#   scripts/ci/it-orthanc.sh scripts/ci/schemathesis.sh
#
# ST_MAX_EXAMPLES (default 60) examples per operation, ST_MAX_TIME (default 60) s per pass (2 passes);
# ST_TIME_LIMIT (default 300) s hard stop.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

log() { echo "schemathesis.sh: $*" >&2; }
: "${ORTHANC_EDGE_IT_URL:?run under scripts/ci/it-orthanc.sh}"
scripts/ci/setup-deps.sh fuzz
st=$(command -v schemathesis || echo /opt/orthanc-edge-st/bin/schemathesis)
# ORTHANC_EDGE_BIN: a prebuilt edge (e.g. a copy, when the target dir is shared with another
# checkout that may re-link debug/orthanc-edge meanwhile); built here otherwise.
if [[ -n ${ORTHANC_EDGE_BIN:-} ]]; then
  bin=$ORTHANC_EDGE_BIN
else
  # The features of scripts/test.sh's test run: its build is reused, not redone.
  build_test_bin --quiet
  bin=${CARGO_TARGET_DIR:-target}/debug/orthanc-edge
fi

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
jwt_secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(36))')
port=$(free_port)
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
scopes = ["preview", "mint", "warm", "admin"]
[auth.jwt]
secret = "$jwt_secret"
# schemathesis sends wrong credentials on purpose (ignored_auth): no failure limit, or every
# later request would be a 429.
[auth.rate_limit]
failures_per_minute = 0
# JSON access lines, so a 5xx is found by its "status" below.
[log]
filter = "warn,orthanc_edge::access=info"
format = "json"
TOML
start_edge "$bin" "$work/edge.toml" "$port" "$work/edge.log" || exit 1
edge_pid=$EDGE_PID

# Half of the generated ids and UIDs are real resources of their level, so images, grids, purges
# and a warm-up job (200, 304) are checked too. The UIDs are asked of Orthanc; the job is started
# here.
cp scripts/ci/schemathesis.toml "$work/st.toml"
if [[ -n ${ORTHANC_EDGE_IT_MANIFEST:-} ]]; then
  python3 - "$ORTHANC_EDGE_IT_MANIFEST" "http://127.0.0.1:$port" "$key" >>"$work/st.toml" <<'PY'
import base64, json, os, sys, urllib.request
m = json.load(open(sys.argv[1]))
auth = base64.b64encode(("%s:%s" % (os.environ["ORTHANC_EDGE_IT_USER"], os.environ["ORTHANC_EDGE_IT_PASSWORD"])).encode()).decode()
def tags(path):
    req = urllib.request.Request(os.environ["ORTHANC_EDGE_IT_URL"] + path, headers={"Authorization": "Basic " + auth})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)["MainDicomTags"]
inst = list(m["instances"].values())
values = {
    "instances": sorted({v["instance"] for v in inst}),
    "frames": list(range(max(v["frames"] for v in inst))),
    "series": sorted({v["series"] for v in inst}),
    "studies": sorted({v["study"] for v in inst}),
    "instance_uids": sorted({v["sop_instance_uid"] for v in inst}),
    "series_uids": sorted({tags("/series/" + s)["SeriesInstanceUID"] for s in {v["series"] for v in inst}}),
    "study_uids": sorted({tags("/studies/" + s)["StudyInstanceUID"] for s in {v["study"] for v in inst}}),
}
warm = urllib.request.Request(
    sys.argv[2] + "/warm",
    data=json.dumps({"studies": values["studies"], "presets": ["thumb"]}).encode(),
    headers={"X-Api-Key": sys.argv[3], "Content-Type": "application/json"},
)
with urllib.request.urlopen(warm, timeout=30) as r:
    values["jobs"] = [json.load(r)["id"]]
for name, vals in values.items():
    print("\n[dictionaries.%s]\nvalues = %s" % (name, json.dumps(vals)))
# (path regex, {parameter: dictionary}) per group of operations.
groups = [
    ("^/(cache/)?instances/", {"path.id": "instances", "path.frame": "frames"}),
    ("^/(cache/)?series/", {"path.id": "series"}),
    ("^/(cache/)?studies/", {"path.id": "studies"}),
    ("^/dicom-web/", {"path.study": "study_uids", "path.series": "series_uids", "path.instance": "instance_uids"}),
    ("^/warm/", {"path.job": "jobs"}),
]
for regex, params in groups:
    print("\n[[operations]]\ninclude-path-regex = %s\n[operations.parameters]" % json.dumps(regex))
    for p, d in params.items():
        print('"%s" = { dictionary = "%s", probability = 0.5 }' % (p, d))
PY
fi
log "running against http://127.0.0.1:$port"
status=0
# $1: phases; the rest: extra options. The hooks encode what OpenAPI 3.0 cannot (parameters that
# exclude each other); the coverage phase does not apply hooks, so there the check that every
# schema-valid request is accepted is left out (the fuzzing pass makes it, with the hooks).
# One worker: Python 3.11's ast.parse, which hypothesis calls while building strategies, is not
# thread-safe before 3.11.8 (CPython gh-106905: "AST constructor recursion depth mismatch" errors
# in the coverage pass with two workers); generation holds the GIL anyway.
st_pass() {
  local phases=$1
  shift
  PYTHONPATH=scripts/ci${PYTHONPATH:+:$PYTHONPATH} SCHEMATHESIS_HOOKS=schemathesis_hooks \
    timeout --kill-after=10 "${ST_TIME_LIMIT:-300}" \
    "$st" --config-file "$work/st.toml" run openapi.yaml \
    --url "http://127.0.0.1:$port" \
    --header "X-Api-Key: $key" \
    --phases "$phases" \
    --max-examples "${ST_MAX_EXAMPLES:-60}" \
    --max-time "${ST_MAX_TIME:-60}" \
    --workers 1 \
    --seed 1 \
    --generation-database none \
    --no-color "$@" || status=$?
}
st_pass coverage --checks all --exclude-checks positive_data_acceptance
st_pass examples,fuzzing --checks all
kill -0 "$edge_pid" 2>/dev/null || { log "the edge died"; tail -n 30 "$work/edge.log" >&2; exit 1; }
log "the edge answered $(grep -c '"status":' "$work/edge.log") requests, $(grep -c '"status":5' "$work/edge.log") with a 5xx"
if grep -q '"status":5\|panicked' "$work/edge.log"; then
  log "the edge logged a 5xx or a panic"
  grep '"status":5\|panicked' "$work/edge.log" | head -n 5 >&2
  status=1
fi
exit "$status"
