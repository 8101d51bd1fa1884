#!/usr/bin/env bash
# Browser grid benchmark (issue 14): a cold 25-series study grid (SLICES CT slices, 512x512, over
# 20 series, plus the 5 sample series) in headless Chromium (Debian's, tests/browser's
# playwright-core), time from navigation to the last thumbnail decoded, ROUNDS rounds each, median:
#   (a) the edge's /studies/{id}/grid, a fresh edge (empty cache) per round, render.mode = MODE;
#   (b) the same grid of Orthanc's own /instances/{id}/preview images (the series' representative
#       instances, as the edge picks them) on a static page behind nginx, which adds Orthanc's
#       Basic auth header; nothing cached, a fresh browser profile per round.
# Prints one table (scripts/bench/grid_browser.mjs). Loopback only, a few minutes.
#
#   scripts/bench/grid_browser.sh              # the edge in its default render.mode
#   MODE=edge ROUNDS=5 scripts/bench/grid_browser.sh
#
# MODE              render.mode of the edge (unset: its default; an edge that predates render.mode
#                   runs MODE=orthanc as its default behaviour and refuses the others)
# ROUNDS            rounds per grid (default 3); SLICES: CT slices in the study (default 100)
# ORTHANC_EDGE_BIN  a prebuilt edge; the release build otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
rounds=${ROUNDS:-3}
scripts/ci/setup-deps.sh orthanc python browser demo
bench_edge_bin
bench_study bench-grid 100
study=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["study"])' "$ORTHANC_EDGE_IT_MANIFEST")
key=bench-grid-key-$RANDOM$RANDOM
measure=(node scripts/bench/grid_browser.mjs measure)
runs=$work/runs.jsonl

port=$(free_port)
{
  bench_edge_toml "$port" "$work/cache"
  printf '[[auth.api_keys]]\nname = "viewer"\nhash = "%s"\nscopes = ["preview"]\n' "$("$bin" hash-key "$key")"
} >"$work/edge.toml"
chmod 600 "$work/edge.toml" # it holds the Orthanc credentials
RENDER_ENV=()
if [[ -n ${MODE:-} ]]; then render_mode_env "$bin" "$work/edge.toml" "$MODE" || exit 1; fi

# Orthanc's grid: nginx serves the page and proxies /preview with the service credentials.
nginx_port=$(free_port)
mkdir -p "$work/nginx/html" "$work/nginx/tmp"
user_line=
if [[ $(id -u) -eq 0 ]]; then
  # As root, nginx workers drop to nobody: let them read the page and write their temp files.
  user_line="user nobody $(id -gn nobody);"
  chmod 711 "$work"
  chmod 755 "$work/nginx" "$work/nginx/html"
  chown nobody "$work/nginx/tmp"
fi
basic=$(printf '%s:%s' "$ORTHANC_EDGE_IT_USER" "$ORTHANC_EDGE_IT_PASSWORD" | base64 -w0)
cat >"$work/nginx/nginx.conf" <<NGINX
$user_line
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $work/nginx/tmp/client_body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    upstream orthanc { server ${ORTHANC_EDGE_IT_URL#http://}; keepalive 8; }
    server {
        listen 127.0.0.1:$nginx_port;
        location = /grid.html { root $work/nginx/html; default_type text/html; }
        location ~ "^/instances/[0-9a-f]{8}(-[0-9a-f]{8}){4}/preview\$" {
            proxy_pass http://orthanc;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Basic $basic";
            proxy_set_header Accept-Encoding "";
        }
        location / { return 404; }
    }
}
NGINX
chmod 600 "$work/nginx/nginx.conf" # it holds the Orthanc credentials

for ((round = 1; round <= rounds; round++)); do
  rm -rf "$work/cache"
  start_edge "$bin" "$work/edge.toml" "$port" "$work/edge.log" env "${RENDER_ENV[@]}" || exit 1
  pids+=("$EDGE_PID")
  "${measure[@]}" "edge \`/studies/{id}/grid\`, render.mode = ${MODE:-default}" \
    "http://127.0.0.1:$port/studies/$study/grid" "$runs" "$key"
  if ((round == 1)); then
    node scripts/bench/grid_browser.mjs page "http://127.0.0.1:$port" "$study" "$key" "$work/nginx/html/grid.html"
    nginx -q -e "$work/nginx/error.log" -p "$work/nginx/" -c "$work/nginx/nginx.conf" &
    pids+=($!)
    wait_http -f "http://127.0.0.1:$nginx_port/grid.html" "${pids[-1]}" 10 "$work/nginx/error.log" || exit 1
  fi
  stop_pids "$EDGE_PID"
  "${measure[@]}" "Orthanc \`/preview\` behind nginx" "http://127.0.0.1:$nginx_port/grid.html" "$runs"
done
echo
echo "Cold grid of study $study ($rounds rounds each, a fresh browser profile per round):"
echo
node scripts/bench/grid_browser.mjs report "$runs"
