#!/usr/bin/env bash
# The real-world DICOM corpus test (issue 14): pydicom's bundled test files and generated ones
# (every photometric interpretation and bit depth), each its own instance in one corpus study, on
# a private Orthanc 1.10.1; Orthanc's /preview against the edge's for each render mode in turn, and
# (with the edge in mode edge) DICOMweb /rendered against Debian's orthanc-dicomweb plugin.
# Rules and reference decoder: scripts/ci/corpus.py. Prints a table and a summary line, writes the
# report as JSON to $CORPUS_REPORT if set, exits non-zero on any failure.
#
#   scripts/ci/corpus.sh                          # standalone or from scripts/test.sh
#   CORPUS_MODES=orthanc scripts/ci/corpus.sh     # only some render modes
#
# CORPUS_MODES   render.mode values to test, in order (default "orthanc fallback edge"); each edge
#                gets ORTHANC_EDGE__RENDER__MODE. An edge that predates render.mode (refuses the
#                key) is tested without it in mode orthanc, its only behaviour, and fails the others.
# CORPUS_REPORT  where to write the JSON report (table, summary, per-mode outcomes).
# CORPUS_TIMEOUT seconds per HTTP request (default 30); a timeout is a failure.
# CORPUS_GDCM=0  skip the second reference: an Orthanc with the Debian orthanc-gdcm plugin, asked
#                only for what Orthanc alone does not render (information, never a failure; the
#                files that crash it are listed). On by default when the plugin is installed.
# ORTHANC_EDGE_BIN a prebuilt edge; built here otherwise (scripts/test.sh's features: reused).
# KEEP=1         keep the scratch folder (files, manifest, logs).
# Its own Orthanc (scripts/dev/orthanc.sh, loopback, auth on), not the shared one of the other
# suites; it and the edges are stopped on exit. Needs scripts/ci/setup-deps.sh orthanc corpus.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

log() { echo "corpus.sh: $*" >&2; }
modes=${CORPUS_MODES:-orthanc fallback edge}
for mode in $modes; do
  case $mode in orthanc | fallback | edge) ;; *) log "error: unknown mode '$mode' in CORPUS_MODES"; exit 2 ;; esac
done

scripts/ci/setup-deps.sh orthanc corpus
py=python3
[[ -x /opt/orthanc-edge-corpus/bin/python ]] && py=/opt/orthanc-edge-corpus/bin/python
if [[ -n ${ORTHANC_EDGE_BIN:-} ]]; then
  bin=$ORTHANC_EDGE_BIN
else
  build_test_bin --quiet
  bin=${CARGO_TARGET_DIR:-target}/debug/orthanc-edge
fi

scratch corpus
trap 'scripts/dev/orthanc.sh stop "$work/orthanc" || true; scripts/dev/orthanc.sh stop "$work/orthanc-gdcm" || true; _scratch_cleanup' EXIT
# With Debian's DICOMweb plugin when installed: the reference of the DICOMweb comparison below.
dicomweb=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
if [[ -f $dicomweb ]]; then
  ORTHANC_IT_EXTRA_JSON="{\"Plugins\": [\"$dicomweb\"]}" scripts/dev/orthanc.sh start "$work/orthanc"
else
  scripts/dev/orthanc.sh start "$work/orthanc"
fi
"$py" scripts/ci/corpus.py build "$work"
"$py" scripts/ci/corpus.py upload "$work" --env "$work/orthanc/orthanc.env"
gdcm=/usr/share/orthanc/plugins/libOrthancGdcm.so
if [[ ${CORPUS_GDCM:-1} == 1 && -f $gdcm ]]; then
  "$py" scripts/ci/corpus.py gdcm "$work" --orthanc-dir "$work/orthanc-gdcm" --orthanc-sh scripts/dev/orthanc.sh \
    --plugin "$gdcm"
fi
# shellcheck disable=SC1091
source "$work/orthanc/orthanc.env"

key=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
printf '%s\n' "$key" >"$work/api-key"
printf '%s\n' "$ORTHANC_EDGE_IT_PASSWORD" >"$work/orthanc-password"
key_hash=$("$bin" hash-key "$key")
status=0
# The edges are configured by environment alone (config/default.toml names every variable).
: >"$work/edge.toml"
for mode in $modes; do
  port=$(free_port)
  edge_env=(env "ORTHANC_EDGE__SERVER__LISTEN=127.0.0.1:$port" ORTHANC_EDGE__SERVER__ADMIN_LISTEN=127.0.0.1:0
    ORTHANC_EDGE__SERVER__WORKERS=2 "ORTHANC_EDGE__ORTHANC__URL=$ORTHANC_EDGE_IT_URL"
    "ORTHANC_EDGE__ORTHANC__USERNAME=$ORTHANC_EDGE_IT_USER" "ORTHANC_EDGE__ORTHANC__PASSWORD_FILE=$work/orthanc-password"
    "ORTHANC_EDGE__CACHE__DIR=$work/cache-$mode" ORTHANC_EDGE__LOG__FORMAT=json
    "ORTHANC_EDGE__AUTH__API_KEYS=[{\"name\": \"corpus\", \"hash\": \"$key_hash\", \"scopes\": [\"preview\"]}]")
  if ! "${edge_env[@]}" "ORTHANC_EDGE__RENDER__MODE=$mode" "$bin" check-config --config "$work/edge.toml" \
    >"$work/check-$mode.log" 2>&1; then
    if [[ $mode == orthanc ]] && grep -qi render "$work/check-$mode.log" &&
      "${edge_env[@]}" "$bin" check-config --config "$work/edge.toml" >/dev/null 2>&1; then
      log "this edge has no render.mode: testing mode orthanc as its default behaviour"
    else
      "$py" scripts/ci/corpus.py check "$work" --mode "$mode" \
        --unavailable "config refused: $(tail -n 1 "$work/check-$mode.log")"
      continue
    fi
  else
    edge_env+=("ORTHANC_EDGE__RENDER__MODE=$mode")
  fi
  if ! start_edge "$bin" "$work/edge.toml" "$port" "$work/edge-$mode.log" "${edge_env[@]}"; then
    stop_pids "$EDGE_PID"
    "$py" scripts/ci/corpus.py check "$work" --mode "$mode" --unavailable "did not start (see its log above)"
    continue
  fi
  pids+=("$EDGE_PID")
  "$py" scripts/ci/corpus.py check "$work" --mode "$mode" --edge "http://127.0.0.1:$port" --key-file "$work/api-key" ||
    status=1
  if [[ $mode == edge && -f $dicomweb ]]; then
    "$py" scripts/ci/corpus.py dicomweb "$work" --env "$work/orthanc/orthanc.env" --edge "http://127.0.0.1:$port" \
      --key-file "$work/api-key" || status=1
  fi
  kill -0 "$EDGE_PID" 2>/dev/null || { log "mode $mode: the edge exited during the test"; status=1; }
  stop_pids "$EDGE_PID"
  if grep -q 'panicked' "$work/edge-$mode.log"; then
    log "mode $mode: the edge panicked:"
    grep -m 5 'panicked' "$work/edge-$mode.log" >&2
    status=1
  fi
done

"$py" scripts/ci/corpus.py report "$work" --modes "$modes" ${CORPUS_REPORT:+--json "$CORPUS_REPORT"} || status=1
exit "$status"
