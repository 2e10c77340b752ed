"""`surgiplan report`: a PDF of the head phantom's plan, views rendered offscreen (needs an X
display, e.g. xvfb-run); its text is read back with pypdf."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata

import pytest

PATIENT = {"name": "Doe^Janet", "id": "PID-778899", "birth_date": "19610203"}


@pytest.fixture(scope="module")
def head_with_identifiers(tmp_path_factory):
    """The head phantom bundle, re-saved carrying (made-up) patient identifiers."""
    from surgiplan.io.bundle import load_bundle, save_bundle
    from surgiplan.training.cases import phantom_bundle

    twin = load_bundle(phantom_bundle("head"))
    twin.image.metadata["patient"] = dict(PATIENT)
    path = tmp_path_factory.mktemp("report") / "head.surgiplan"
    save_bundle(twin, path, include_identifiers=True)
    return path, twin


def test_report_pdf_of_the_head_phantom(head_with_identifiers, tmp_path):
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the PDF text (test extra)")
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        pytest.skip("no display: run under xvfb-run to render the report's views")
    bundle, _ = head_with_identifiers
    out = tmp_path / "report.pdf"
    run = subprocess.run([sys.executable, "-m", "surgiplan", "report", str(bundle),
                          "--plan", "A anterior-superior trajectory", "--out", str(out)],
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr
    reader = pypdf.PdfReader(str(out))
    text = " ".join((page.extract_text() or "") for page in reader.pages)
    flat = " ".join(unicodedata.normalize("NFKC", text).split())  # ligatures: ff, fi
    assert "A anterior-superior trajectory" in flat
    assert "B lateral temporal trajectory" in flat  # the comparison names the alternatives
    assert "Minimum distance to arteries" in flat and "95 % interval" in flat
    assert " to " in flat and "mm" in flat
    assert "Approval and sign-off" in flat and "Signature" in flat
    assert "Cardinale" in flat and "seed" in flat  # uncertainty model with its source
    assert "SHA-256" in flat and "surgiplan-trajectory" in flat  # provenance
    for identifier in ("Doe", "Janet", PATIENT["id"], PATIENT["birth_date"]):
        assert identifier not in flat
    images = sum(len(page.images) for page in reader.pages)
    assert images >= 4  # 3D, three slices (and the probe's eye)


def test_identifiers_only_when_opted_in(head_with_identifiers):
    from surgiplan.plans.store import plan_set_of_twin
    from surgiplan.ui.report.content import build_content
    from surgiplan.ui.report.pdf import report_html

    _, twin = head_with_identifiers
    plans = plan_set_of_twin(twin)
    hidden = report_html(build_content(twin, plans), [])
    shown = report_html(build_content(twin, plans, include_identifiers=True), [])
    assert "Doe^Janet" not in hidden and PATIENT["id"] not in hidden
    assert "Doe^Janet" in shown and PATIENT["id"] in shown
    assert twin.patient_ref in hidden


def test_bad_output_name_exits_2(head_with_identifiers, tmp_path):
    from surgiplan.cli.main import main

    bundle, _ = head_with_identifiers
    assert main(["report", str(bundle), "--out", str(tmp_path / "report.txt")]) == 2
    assert main(["report", str(bundle), "--plan", "nope", "--out",
                 str(tmp_path / "r.pdf")]) == 2
