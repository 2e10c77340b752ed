"""The PDF report lists the automatic, unreviewed structures with their method and quality flag
(issue 16 item 5); a user edit changes the flag and a reviewed structure leaves the list.
Real preset on a small CT block, real PDF (QPdfWriter), text read back with pypdf."""

from __future__ import annotations

import io
import unicodedata

import numpy as np
import pytest

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.provenance import EDITED, UNREVIEWED
from surgiplan.model.structures import Segmentation
from surgiplan.model.volume import ImageVolume
from surgiplan.plans.model import Plan
from surgiplan.plans.planset import PlanSet
from surgiplan.segmentation.brush import sphere_region
from surgiplan.segmentation.editor import SegmentEditor
from surgiplan.segmentation.presets import apply_preset
from surgiplan.twin import Twin

SECTION = "Automatic structures (not reviewed)"


def _pdf_text(twin: Twin) -> str:
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the PDF text (test extra)")
    from surgiplan.ui.report.content import build_content
    from surgiplan.ui.report.pdf import pdf_bytes

    content = build_content(twin, PlanSet([Plan(name="entry check")]))
    reader = pypdf.PdfReader(io.BytesIO(pdf_bytes(content, {})))
    text = " ".join((page.extract_text() or "") for page in reader.pages)
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _section(text: str) -> str:
    start = text.index(SECTION)
    return text[start:text.index("Metrics", start) if "Metrics" in text[start:] else None]


def test_report_lists_automatic_unreviewed_structures(qapp) -> None:
    geometry = ImageGeometry((40, 40, 40), (1.0, 1.0, 1.0), (-20.0, -20.0, -20.0))
    r = np.linalg.norm(np.indices(geometry.shape_zyx) - 19.5, axis=0)
    image = np.where(r < 18, 40, -1000).astype(np.int16)
    image[(r >= 14) & (r < 17)] = 800  # skull shell
    image[12:28, 18:23, 18:23] = 300  # a contrast vessel
    twin = Twin(ImageVolume(image, geometry, modality="CT"), Segmentation(geometry=geometry))
    apply_preset(twin, "ct-bone-skin-vessels")
    twin.add_structure("tumour", r < 3, role="target")  # drawn by hand: not automatic

    section = _section(_pdf_text(twin))
    for name in ("skin", "bone", "vessels"):
        assert name in section
    assert "tumour" not in section
    assert section.count("preset ct-bone-skin-vessels") == 3  # the method of each
    assert section.count(UNREVIEWED) == 3  # and its quality flag

    editor = SegmentEditor(twin)
    editor.apply_region("bone", sphere_region(geometry, [15.5, 0.0, 0.0], 3.0), erase=True)
    twin.provenance.mark_reviewed("skin", by="Dr Test")
    text = _pdf_text(twin)
    section = _section(text)
    assert "edited by the user" in section and EDITED.startswith("automatic, edited")
    assert section.count(UNREVIEWED) == 1  # vessels only
    assert "Reviewed: skin" in section
    assert "2 automatic structure(s) not reviewed: bone, vessels" in text  # in the warnings
