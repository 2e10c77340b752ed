"""``surgiplan report --include-identifiers`` releases the patient's identity, so it is logged in
``identifiers.log`` like every other identified export (owner-only file, user, what, where).
Rendered with no display (Qt offscreen, VTK EGL/OSMesa) on a small case: ~30 s on 2 busy
cores, so it runs only with SURGIPLAN_SLOW=1 (the CI budget)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.savecase import ROOT, add_trajectory_plan, small_case

pypdf = pytest.importorskip("pypdf", reason="pypdf reads the PDF text (test extra)")
pytestmark = pytest.mark.skipif(os.environ.get("SURGIPLAN_SLOW") != "1",
                                reason="slow: renders a PDF report (~30 s); set SURGIPLAN_SLOW=1")

PATIENT = {"name": "Roe^Rita", "id": "PID-445566", "birth_date": "19700101"}


@pytest.fixture(scope="module")
def named_case(tmp_path_factory) -> Path:
    """The small case re-saved with (made-up) patient identifiers and a trajectory plan."""
    from surgiplan.io.bundle import load_bundle, save_bundle

    folder = tmp_path_factory.mktemp("report-ids")
    twin = load_bundle(small_case(folder, "plain.surgiplan"))
    twin.image.metadata["patient"] = dict(PATIENT)
    path = save_bundle(twin, folder / "named.surgiplan", include_identifiers=True)
    return add_trajectory_plan(path)


def _log() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "surgiplan" / "log" / "identifiers.log"


def test_identified_report_is_logged(named_case, tmp_path):
    out = tmp_path / "named-report.pdf"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    run = subprocess.run([sys.executable, "-m", "surgiplan", "report", str(named_case),
                          "--include-identifiers", "--out", str(out)], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "identifiers.log" in run.stderr
    text = " ".join(page.extract_text() or "" for page in pypdf.PdfReader(out).pages)
    assert PATIENT["id"] in text  # the opt-in really printed the identity
    lines = [line for line in _log().read_text().splitlines()
             if line.endswith(f"-> {out.resolve()}")]
    assert len(lines) == 1 and "PDF report WITH patient identifiers" in lines[0]
    assert stat.S_IMODE(_log().stat().st_mode) == 0o600
