"""``surgiplan report`` with no display at all (no X server, no GPU: Qt's offscreen platform and
VTK's EGL/OSMesa window), and its write path: a full disk exits 2 with one line and keeps the
previous report byte for byte; an unwritable place is refused before any rendering."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.savecase import add_trajectory_plan, one_line_rc2, run_cli, small_case

pypdf = pytest.importorskip("pypdf")

NO_DISPLAY = {"DISPLAY": "", "WAYLAND_DISPLAY": "", "QT_QPA_PLATFORM": "offscreen"}


def _no_display_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env


def _report(case: Path, out: Path) -> subprocess.CompletedProcess:
    """The report CLI in a child with DISPLAY and WAYLAND_DISPLAY removed."""
    from tests.reliability.savecase import ROOT

    return subprocess.run([sys.executable, "-m", "surgiplan", "report", str(case), "--out",
                           str(out)], capture_output=True, text=True, cwd=ROOT,
                          env=_no_display_env(), timeout=600)


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    return add_trajectory_plan(small_case(tmp_path_factory.mktemp("report")))


@pytest.fixture(scope="module")
def good_report(case, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "report.pdf"
    result = _report(case, out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_report_renders_with_no_display(good_report):
    reader = pypdf.PdfReader(good_report)
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert "Plan report: path A" in text and "Provenance" in text
    images = [im for page in reader.pages for im in page.images]
    assert len(images) >= 4  # 3D view (VTK offscreen) and the three slices
    assert good_report.read_bytes().rstrip().endswith(b"%%EOF")
    assert not [p for p in good_report.parent.iterdir() if p.name.endswith(".tmp")]


def test_report_on_a_full_disk_keeps_the_previous_report(case, good_report, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("simulating a full disk needs root to mount a small tmpfs")
    folder = tmp_path / "small-disk"
    folder.mkdir()
    size_kib = good_report.stat().st_size // 1024 + 48  # the old report fits, a new one not
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs",
                              str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        old = folder / "report.pdf"
        shutil.copyfile(good_report, old)
        before = old.read_bytes()
        line = one_line_rc2(_report(case, old))
        assert "disk is full" in line
        assert old.read_bytes() == before
        assert sorted(p.name for p in folder.iterdir()) == ["report.pdf"]
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_unwritable_places_are_refused_before_rendering(case, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    line = one_line_rc2(run_cli("report", str(case), "--out", str(blocker / "r.pdf"),
                                env=NO_DISPLAY, timeout=120))
    assert "a-file is a file, not a folder" in line
    folder = tmp_path / "taken.pdf"
    folder.mkdir()
    line = one_line_rc2(run_cli("report", str(case), "--out", str(folder), env=NO_DISPLAY,
                                timeout=120))
    assert "is a folder" in line


def test_no_display_selects_the_offscreen_platform(monkeypatch):
    from surgiplan.ui.report.offscreen import choose_platform

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("VTK_DEFAULT_OPENGL_WINDOW", raising=False)
    assert choose_platform() == "offscreen"
    assert os.environ.get("VTK_DEFAULT_OPENGL_WINDOW") in (
        "vtkEGLRenderWindow", "vtkOSOpenGLRenderWindow", None)
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    assert choose_platform() == "xcb"  # an explicit choice is kept
