"""Real scans for the viewer tests (``/work/shared/scans`` or ``$SURGIPLAN_SCANS``), loaded once
per test process; tests skip with the reason when the folder is absent."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest

SCANS = Path(os.environ.get("SURGIPLAN_SCANS", Path(__file__).resolve().parents[3]
                            / "shared" / "scans"))
if not SCANS.is_dir():
    SCANS = Path("/work/shared/scans")


def scan_folder(name: str) -> Path:
    folder = SCANS / name
    if not folder.is_dir():
        pytest.skip(f"real scan {name!r} not found in {SCANS} (see shared/scans/README.md)")
    return folder


@cache
def load_scan_twin(name: str):
    """The default series of real scan folder ``name`` as a Twin (no structures)."""
    from surgiplan.ui.data import case_io

    folder = scan_folder(name)
    scan = case_io.scan_folder(folder)
    return case_io.open_series(case_io.choose_series(scan, path=folder)).twin
