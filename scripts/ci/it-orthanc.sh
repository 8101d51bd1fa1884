#!/usr/bin/env bash
# Brings up a real Orthanc loaded with the synthetic test DICOM files, for integration tests and
# the demo. Two ways to use it:
#
#   source scripts/ci/it-orthanc.sh          # from a bash script (WORKDIR optional)
#     → starts Orthanc (scripts/dev/orthanc.sh), generates DICOM (scripts/dev/gen_dicom.py), uploads them
#       (scripts/dev/load_samples.py) and exports
#         ORTHANC_EDGE_IT_URL, ORTHANC_EDGE_IT_USER, ORTHANC_EDGE_IT_PASSWORD,
#         ORTHANC_EDGE_IT_MANIFEST (JSON: {"study", "patient", "instances": {stem: {...}}}),
#         ORTHANC_EDGE_IT_DIR (the Orthanc folder: orthanc.log, orthanc.json, storage/),
#         ORTHANC_EDGE_IT_MANIFEST_B (the same for the second patient, when uploaded),
#         ORTHANC_EDGE_IT_DICOMWEB=1 when Orthanc runs Debian's DICOMweb plugin (orthanc-dicomweb,
#           loaded when installed: the reference tests/it/dicomweb_real.rs compares the edge with)
#       and adds an EXIT trap that stops Orthanc, run before any EXIT trap already set.
#       Returns non-zero (with the Orthanc log tail) if anything fails.
#
#   scripts/ci/it-orthanc.sh CMD [ARGS...]   # same, runs CMD with those variables, then stops Orthanc
#     e.g. scripts/ci/it-orthanc.sh cargo nextest run -E 'test(/^edge_real::/)'
#
# WORKDIR: where everything goes (WORKDIR/orthanc, WORKDIR/dicom, WORKDIR/manifest.json).
#   Unset → a fresh temp dir, removed on exit unless ORTHANC_EDGE_IT_KEEP=1.
# IT_ORTHANC_SLICES=N: instances in the generated CT series (default 5; benchmarks use more),
#   spread over IT_ORTHANC_CT_SERIES series (default 1), IT_ORTHANC_CT_SIZE pixels square (128).
# IT_ORTHANC_LARGE=1 also generates and uploads cr_large.dcm (2048x2500, for benchmarks).
# IT_ORTHANC_PATIENT_B=0 skips the second patient (EDGE-TEST-2: its own study, 3 CT slices, other
#   pixels; default 1), which the two-patient security tests (tests/it/security_real.rs) need.
# Needs Orthanc, curl, pydicom, numpy: scripts/ci/setup-deps.sh orthanc python.
# Sourcing does not change the caller's shell options: the steps run in a `set -euo pipefail`
# subshell.

_it_orthanc_scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
_it_orthanc_dicomweb=/usr/share/orthanc/plugins/libOrthancDicomWeb.so

_it_orthanc_cleanup() {
  if [[ -n ${_IT_ORTHANC_DIR:-} ]]; then
    "$_it_orthanc_scripts/dev/orthanc.sh" stop "$_IT_ORTHANC_DIR" || true
  fi
  if [[ -n ${_IT_ORTHANC_TMP:-} && ${ORTHANC_EDGE_IT_KEEP:-0} != 1 ]]; then
    rm -rf -- "$_IT_ORTHANC_TMP"
  fi
  _IT_ORTHANC_DIR=
  _IT_ORTHANC_TMP=
}

_it_orthanc_up() {
  local workdir=${WORKDIR:-}
  _IT_ORTHANC_TMP=
  if [[ -z $workdir ]]; then
    workdir=$(mktemp -d /tmp/orthanc-edge-it.XXXXXX) || return 1
    _IT_ORTHANC_TMP=$workdir
  fi
  mkdir -p "$workdir" || return 1
  workdir=$(cd "$workdir" && pwd -P) || return 1
  _IT_ORTHANC_DIR=$workdir/orthanc

  # Chain the EXIT trap before starting, so a failure half-way still stops Orthanc.
  local prev=() cur
  cur=$(trap -p EXIT)
  if [[ $cur != *_it_orthanc_cleanup* ]]; then
    [[ -n $cur ]] && eval "prev=($cur)"  # trap -- 'CMD' EXIT → prev[2] is CMD
    if [[ ${#prev[@]} -ge 3 && -n ${prev[2]} ]]; then
      # First: the caller's trap may remove the folder that says which Orthanc to stop.
      trap -- '_it_orthanc_cleanup'$'\n'"${prev[2]}" EXIT
    else
      trap -- '_it_orthanc_cleanup' EXIT
    fi
  fi

  # `set -e` is void inside a tested subshell, hence the explicit `|| exit 1` on each step.
  if ! (
    set -euo pipefail
    s=$_it_orthanc_scripts/dev
    if [[ -f $_it_orthanc_dicomweb && -z ${ORTHANC_IT_EXTRA_JSON:-} ]]; then
      export ORTHANC_IT_EXTRA_JSON="{\"Plugins\": [\"$_it_orthanc_dicomweb\"]}"
    fi
    "$s/orthanc.sh" start "$workdir/orthanc" || exit 1
    rm -rf "$workdir/dicom" || exit 1
    large=()
    if [[ ${IT_ORTHANC_LARGE:-0} == 1 ]]; then large=(--large); fi
    large+=(--slices "${IT_ORTHANC_SLICES:-5}" --ct-series "${IT_ORTHANC_CT_SERIES:-1}" --ct-size "${IT_ORTHANC_CT_SIZE:-128}")
    "$s/gen_dicom.py" "$workdir/dicom" "${large[@]}" || exit 1
    "$s/load_samples.py" --env "$workdir/orthanc/orthanc.env" --dicom-dir "$workdir/dicom" \
      --manifest "$workdir/manifest.json" || exit 1
    rm -rf "$workdir/dicom-b" "$workdir/manifest-b.json" || exit 1
    if [[ ${IT_ORTHANC_PATIENT_B:-1} == 1 ]]; then
      "$s/gen_dicom.py" "$workdir/dicom-b" --patient 2 --slices 3 || exit 1
      "$s/load_samples.py" --env "$workdir/orthanc/orthanc.env" --dicom-dir "$workdir/dicom-b" \
        --manifest "$workdir/manifest-b.json" || exit 1
    fi
  ); then
    echo "it-orthanc.sh: setup failed; Orthanc log tail:" >&2
    tail -n 20 "$workdir/orthanc/orthanc.log" >&2 2>/dev/null || true
    _it_orthanc_cleanup
    return 1
  fi

  # shellcheck disable=SC1091
  source "$workdir/orthanc/orthanc.env" || return 1
  export ORTHANC_EDGE_IT_MANIFEST=$workdir/manifest.json
  export ORTHANC_EDGE_IT_DIR=$workdir/orthanc
  if grep -q libOrthancDicomWeb "$workdir/orthanc/orthanc.json"; then
    export ORTHANC_EDGE_IT_DICOMWEB=1
  fi
  if [[ -f $workdir/manifest-b.json ]]; then
    export ORTHANC_EDGE_IT_MANIFEST_B=$workdir/manifest-b.json
  fi
}

if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
  # sourced
  _it_orthanc_up
else
  set -euo pipefail
  if [[ $# -eq 0 ]]; then
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
    exit 2
  fi
  _it_orthanc_up
  status=0
  "$@" || status=$?
  exit "$status"
fi
