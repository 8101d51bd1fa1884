#!/usr/bin/env bash
# The example Django web app (examples/django) beside orthanc-edge and a real Orthanc: PyJWT
# tokens, the grid page, delegated mode against Django's own sessions (tests/python); then the
# real client libraries, pyorthanc and dicomweb-client, against the edge and Orthanc (tests/clients).
#
#   scripts/ci/it-orthanc.sh scripts/ci/test-python.sh     # standalone
#   scripts/ci/test-python.sh                           # inside scripts/test.sh (Orthanc env set)
#
# Needs PyJWT, Django, gunicorn (scripts/ci/setup-deps.sh bench), pyorthanc and dicomweb-client
# (scripts/ci/setup-deps.sh clients). Starts and stops its own processes.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
: "${ORTHANC_EDGE_IT_URL:?run through scripts/ci/it-orthanc.sh}"

scratch python

# The features of scripts/test.sh's test run: its build is reused, not redone.
build_test_bin --quiet
edge_port=$(free_port)
app_port=$(free_port)
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
clients_key=clients-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
study=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["study"])' "$ORTHANC_EDGE_IT_MANIFEST")
instances=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(",".join(i["instance"] for i in m["instances"].values() if i["preview_status"]==200))' "$ORTHANC_EDGE_IT_MANIFEST")

export DJANGO_DB=$work/db.sqlite3 EDGE_URL=http://127.0.0.1:$edge_port EDGE_JWT_SECRET=$secret
export EDGE_STUDIES=$study EDGE_INSTANCES=$instances DJANGO_URL=http://127.0.0.1:$app_port
python3 examples/django/manage.py migrate --noinput >"$work/migrate.log" 2>&1 ||
  { cat "$work/migrate.log" >&2; exit 1; }
python3 -m gunicorn --chdir examples/django -b "127.0.0.1:$app_port" -w 2 webapp.wsgi \
  >"$work/gunicorn.log" 2>&1 &
gunicorn_pid=$!
pids+=("$gunicorn_pid")

mkdir -p "$work/cache"
printf '%s\n' "$ORTHANC_EDGE_IT_PASSWORD" >"$work/orthanc-password"
cat >"$work/edge.toml" <<TOML
[server]
listen = "127.0.0.1:$edge_port"
workers = 2
[orthanc]
url = "$ORTHANC_EDGE_IT_URL"
username = "$ORTHANC_EDGE_IT_USER"
password_file = "$work/orthanc-password"
[cache]
dir = "$work/cache"
[[auth.api_keys]]
name = "clients"
hash = "$(target/debug/orthanc-edge hash-key "$clients_key")"
scopes = ["preview"]
[auth.jwt]
secret = "$secret"
[auth.delegate]
url = "http://127.0.0.1:$app_port/edge-auth"
forward_headers = ["Cookie"]
[log]
format = "json"
TOML
start_edge target/debug/orthanc-edge "$work/edge.toml" "$edge_port" "$work/edge.log" || exit 1
pids+=("$EDGE_PID")
wait_http "$DJANGO_URL/login" "$gunicorn_pid" 15 "$work/gunicorn.log" || exit 1

status=0
MANIFEST=$ORTHANC_EDGE_IT_MANIFEST timeout 300 python3 -m unittest discover -s tests/python -v || status=$?
clients_py=python3
[[ -x /opt/orthanc-edge-clients/bin/python ]] && clients_py=/opt/orthanc-edge-clients/bin/python
EDGE_API_KEY=$clients_key ORTHANC_URL=$ORTHANC_EDGE_IT_URL ORTHANC_USER=$ORTHANC_EDGE_IT_USER \
  ORTHANC_PASSWORD=$ORTHANC_EDGE_IT_PASSWORD MANIFEST=$ORTHANC_EDGE_IT_MANIFEST \
  timeout 300 "$clients_py" -m unittest discover -s tests/clients -v || status=$?
if grep -qF -- "$ORTHANC_EDGE_IT_PASSWORD" "$work/edge.log"; then
  echo "test-python.sh: the Orthanc password appears in the edge log" >&2
  status=1
fi
[[ $status -eq 0 ]] || tail -n 30 "$work/edge.log" "$work/gunicorn.log" >&2
exit "$status"
