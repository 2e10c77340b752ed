"""The core type-checks: mypy (default strictness, ``[tool.mypy]`` in pyproject.toml) finds no
error in ``surgiplan`` (the Qt user interface ``surgiplan/ui`` excluded).

The mypy cache lives outside the repository (``$SURGIPLAN_MYPY_CACHE`` or a folder in the
system temp dir), so only the first run on a machine is cold (about 1 min on 2 loaded cores).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy is not installed (pip install -e .[test])")

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("SURGIPLAN_MYPY_CACHE",
                            Path(tempfile.gettempdir()) / "surgiplan-mypy-cache"))


def _core_files() -> set[str]:
    """Repository paths of the core's modules (every .py under surgiplan/ but surgiplan/ui)."""
    return {str(p.relative_to(ROOT)) for p in (ROOT / "surgiplan").rglob("*.py")
            if p.relative_to(ROOT / "surgiplan").parts[0] != "ui"}


@pytest.fixture(scope="module")
def mypy_run() -> subprocess.CompletedProcess:
    """One mypy run over the configured packages (verbose: stderr lists the sources)."""
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(CACHE), "--verbose", "--no-pretty", "--no-error-summary"],
        cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_core_has_no_type_errors(mypy_run: subprocess.CompletedProcess) -> None:
    errors = [line for line in mypy_run.stdout.splitlines() if ": error: " in line]
    detail = errors[:25] or (mypy_run.stdout.splitlines() + mypy_run.stderr.splitlines())[-25:]
    assert mypy_run.returncode == 0 and not errors, (
        f"mypy found {len(errors)} type error(s) in the core (exit {mypy_run.returncode}); "
        "first:\n" + "\n".join(detail))


def test_config_checks_the_whole_core_and_not_the_ui(
        mypy_run: subprocess.CompletedProcess) -> None:
    sources = re.findall(r"Found source: +BuildSource\(path='([^']+)', module='([^']+)'",
                         mypy_run.stderr)
    modules = {module for _, module in sources}
    assert modules, "mypy listed no sources: is [tool.mypy] packages set in pyproject.toml?"
    assert not {m for m in modules if m == "surgiplan.ui" or m.startswith("surgiplan.ui.")}
    checked = {str(Path(path).resolve().relative_to(ROOT)) for path, _ in sources}
    missing = _core_files() - checked
    assert not missing, f"mypy does not check {sorted(missing)[:10]}"
