#!/usr/bin/env bash
# Build the one-folder Linux bundle of SurgiPlan with PyInstaller:
#
#   bash installer/build.sh            # -> dist/surgiplan/surgiplan (run it: dist/surgiplan/surgiplan)
#
# Uses the project's .venv (make it with `bash installer/dev.sh test` first) or $PYTHON, installs
# the `installer` extra (PyInstaller) into it, and writes build/ and dist/ in the project root
# (override with DIST_DIR / WORK_DIR).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
DIST_DIR="${DIST_DIR:-$ROOT/dist}"
WORK_DIR="${WORK_DIR:-$ROOT/build/pyinstaller}"

log() { printf '[surgiplan build] %s\n' "$*" >&2; }

if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
  log "installing the installer extra (PyInstaller)"
  "$PY" -m pip install -q -e ".[installer]"
fi
log "building the bundle in $DIST_DIR/surgiplan (a few minutes)"
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$DIST_DIR" --workpath "$WORK_DIR" installer/surgiplan.spec
log "done: $DIST_DIR/surgiplan/surgiplan ($(du -sh "$DIST_DIR/surgiplan" | cut -f1))"
