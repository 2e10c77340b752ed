#!/usr/bin/env bash
# One-command set-up and run for SurgiPlan on Debian 12 (Python 3.11, pip, root or sudo).
#
#   bash installer/dev.sh app    # install what is missing, open the app on the head phantom
#   bash installer/dev.sh test   # install what is missing, run the whole test suite under Xvfb
#
# Installs: Debian packages Qt/VTK need (xvfb, xcb, GL), a venv in .venv with the project and
# its test extras. Re-runs are quick: each step is skipped when already done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

APT_PACKAGES=(
  xvfb xauth
  libgl1 libegl1 libegl-mesa0 libglu1-mesa libosmesa6 libglx-mesa0
  libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0
  libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0
  libxcb-xfixes0 libxcb-xkb1 libxcb-shm0 libxcb-sync1 libxcb-render0 libx11-xcb1
  libdbus-1-3 libfontconfig1 libfreetype6 libxrender1 libxi6 libxtst6 libxext6 libsm6 libice6
  fonts-dejavu-core
  dicom3tools  # dciodvfy: the DICOM conformance test checks every object SurgiPlan writes
  orthanc orthanc-dicomweb dcmtk  # PACS tests: a real Orthanc on loopback; getscu for the bench
  libtbb12  # numba's thread-safe TBB threading layer (simulator kernels in parallel workers)
)

log() { printf '[surgiplan setup] %s\n' "$*" >&2; }

install_debian_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_python_env() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment in $VENV"
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.surgiplan-installed"
  local want
  want="$(cat pyproject.toml plugins/*/pyproject.toml | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing Python packages (first run takes a few minutes)"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -e ".[test]"
    # Simulator plug-ins install like any third-party plug-in: through their entry points.
    for plugin in plugins/*/; do
      [ -f "$plugin/pyproject.toml" ] && "$VENV/bin/python" -m pip install -q -e "$plugin"
    done
    echo "$want" > "$stamp"
  fi
}

ensure_sample() {
  local name="$1"
  if [ ! -f "sample_scans/$name/$name.surgiplan" ]; then
    log "generating the $name phantom in sample_scans/$name"
    "$VENV/bin/surgiplan" sample "$name" --out "sample_scans/$name"
  fi
}

cmd_app() {
  ensure_sample head
  if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
    exec "$VENV/bin/surgiplan" gui "sample_scans/head/head.surgiplan" "$@"
  fi
  log "no display found: running under Xvfb (set DISPLAY to see the window)"
  exec xvfb-run -a -s "-screen 0 1600x1000x24" "$VENV/bin/surgiplan" gui \
    "sample_scans/head/head.surgiplan" "$@"
}

cmd_test() {
  export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-xcb}"
  local status=0
  # Test files run in two worker processes (pytest-xdist; one file stays on one worker, so its
  # fixtures are built once): the machines have two cores. SURGIPLAN_TEST_WORKERS=0 runs serially.
  xvfb-run -a -s "-screen 0 1600x1000x24" "$VENV/bin/python" -m pytest -q \
    -n "${SURGIPLAN_TEST_WORKERS:-2}" --dist loadfile "$@" || status=$?
  # pytest exit 5 = no tests collected: that is a failure for us too.
  return "$status"
}

main() {
  local what="${1:-}"
  shift || true
  case "$what" in
    app|test) ;;
    *) echo "usage: bash installer/dev.sh app|test [args...]" >&2; exit 2 ;;
  esac
  install_debian_packages
  install_python_env
  "cmd_$what" "$@"
}

main "$@"
