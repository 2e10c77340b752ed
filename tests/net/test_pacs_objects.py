"""The objects SurgiPlan sends to a PACS, checked without a network: the Encapsulated PDF
passes dciodvfy (dicom3tools) without error and sits in the source study; sending refuses a
case without the explicit opt-in or without a DICOM source."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from surgiplan.errors import BadInputError
from surgiplan.io.source_series import from_files
from surgiplan.net.send import encapsulated_pdf, identified_reference
from tests.conftest import real_scan
from tests.net.conftest import SMALL_CT


def _pdf(path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    fig.text(0.1, 0.5, "report")
    fig.savefig(path, format="pdf")
    return path


@pytest.fixture
def reference():
    import pydicom

    files = sorted((real_scan(SMALL_CT) / "dicom").glob("*.dcm"))
    return from_files(files, str(pydicom.dcmread(files[0]).SeriesInstanceUID))


def test_encapsulated_pdf_is_valid_and_in_the_source_study(reference, tmp_path):
    ds = encapsulated_pdf(_pdf(tmp_path / "r.pdf"), reference)
    assert ds.StudyInstanceUID == reference.study_uid and ds.PatientID == "99000"
    assert [i.ReferencedSOPInstanceUID for i in ds.SourceInstanceSequence] == \
        [i.sop_instance_uid for i in reference.instances]
    assert ds.EncapsulatedDocument.startswith(b"%PDF-")
    path = tmp_path / "pdf.dcm"
    ds.save_as(path, enforce_file_format=True)
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
    assert not errors, errors


def test_not_a_pdf_is_refused(reference, tmp_path):
    fake = tmp_path / "r.pdf"
    fake.write_text("hello")
    with pytest.raises(BadInputError, match="not a PDF"):
        encapsulated_pdf(fake, reference)


def test_sending_needs_the_opt_in_and_a_dicom_source(tmp_path):
    from tests.ui.conftest import make_twin

    twin = make_twin()
    with pytest.raises(BadInputError, match="--include-identifiers"):
        identified_reference(twin, tmp_path / "c.surgiplan", include_identifiers=False)
    with pytest.raises(BadInputError, match="not built from a DICOM series"):
        identified_reference(twin, tmp_path / "c.surgiplan", include_identifiers=True)
