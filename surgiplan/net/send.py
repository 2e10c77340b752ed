"""Send results back to the PACS: the twin's DICOM SEG and the plan report as an Encapsulated
PDF, both filed in the ORIGINAL study of the case's source series (C-STORE or STOW-RS).

Filing into the original study needs the original identity and UIDs, so sending is refused
unless the caller opts in (``include_identifiers``) and the case still holds them (built with
``--include-identifiers``); each object sent is recorded in the installation's
``identifiers.log`` (:func:`surgiplan.io.source_series.log_identified_export`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID

from surgiplan.errors import BadInputError
from surgiplan.io import source_series
from surgiplan.io.source_series import IDENTITY_KEYWORDS, SourceSeries
from surgiplan.net import dicomweb, dimse
from surgiplan.net.settings import PacsSettings, ServerSettings
from surgiplan.progress import ProgressCallback, report

ENCAPSULATED_PDF = UID("1.2.840.10008.5.1.4.1.1.104.1")
_PDF_MAGIC = b"%PDF-"


@dataclass
class SentObject:
    """One object sent: kind (``seg``/``pdf``), its UIDs and the study it was filed in."""

    kind: str
    sop_instance_uid: str
    series_uid: str
    study_uid: str

    def to_json(self) -> dict:
        return dict(vars(self))


def identified_reference(twin, case: Path, include_identifiers: bool) -> SourceSeries:
    """The case's original source reference; refused without the opt-in or without one."""
    if not include_identifiers:
        raise BadInputError("results go back into the patient's original study, which needs "
                            "the original identifiers and UIDs", path=case,
                            action="Add --include-identifiers (the send is logged in "
                            "identifiers.log)")
    from surgiplan.io.dicom_seg import export_reference

    reference = export_reference(twin, include_identifiers=True, path=case)
    if reference is None:
        raise BadInputError("the case was not built from a DICOM series, so there is no study "
                            "to send results into", path=case,
                            action="Build the case from the DICOM series retrieved from the "
                            "PACS")
    return reference


def _uid() -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid())


def encapsulated_pdf(pdf: Path, reference: SourceSeries, *, title: str = "SurgiPlan plan "
                     "report") -> Dataset:
    """An Encapsulated PDF instance (PS3.3 A.45.1) in the reference's study and patient,
    citing the source images in its Source Instance Sequence."""
    from surgiplan import __version__
    from surgiplan.io.dicom_seg import MANUFACTURER

    data = pdf.read_bytes()
    if not data.startswith(_PDF_MAGIC):
        raise BadInputError("not a PDF file", path=pdf,
                            action="Give the report written by 'surgiplan report'")
    now = datetime.now()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.1")
    ds.file_meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF
    ds.SOPClassUID = ENCAPSULATED_PDF
    ds.SOPInstanceUID = _uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if any(not v.isascii() for v in reference.identity.values()):
        ds.SpecificCharacterSet = "ISO_IR 192"
    for keyword in IDENTITY_KEYWORDS:
        setattr(ds, keyword, reference.identity.get(keyword, ""))
    ds.StudyInstanceUID = reference.study_uid
    ds.SeriesInstanceUID = _uid()
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "DOC", 301, 1
    ds.SeriesDescription = "SurgiPlan report"
    ds.Manufacturer, ds.ConversionType = MANUFACTURER, "WSD"
    ds.SoftwareVersions = __version__
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.InstanceCreationDate, ds.InstanceCreationTime = ds.ContentDate, ds.ContentTime
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "YES"
    ds.DocumentTitle = title
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = data + (b"\0" if len(data) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(data)
    ds.SourceInstanceSequence = [_source_item(reference, i.sop_instance_uid)
                                 for i in reference.instances]
    return ds


def _source_item(reference: SourceSeries, sop_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = reference.sop_class_uid
    item.ReferencedSOPInstanceUID = sop_uid
    return item


def _seg_dataset(twin, reference: SourceSeries, folder: Path) -> Dataset:
    import pydicom

    from surgiplan.io.dicom_seg import write_dicom_seg

    result = write_dicom_seg(twin, folder / "twin.seg.dcm", source=reference,
                             include_identifiers=True)
    return pydicom.dcmread(result.seg_path)


def send_results(settings: PacsSettings, server: ServerSettings, case: Path, *,
                 seg: bool = True, pdf: Path | None = None, include_identifiers: bool = False,
                 protocol: str = "auto", progress: ProgressCallback | None = None
                 ) -> list[SentObject]:
    """Send the case's SEG (``seg``) and/or the report ``pdf`` into the source study."""
    from surgiplan.io.bundle import load_bundle

    if not seg and pdf is None:
        raise BadInputError("nothing to send", path=case, action="Give --seg and/or --pdf FILE")
    twin = load_bundle(case)
    reference = identified_reference(twin, case, include_identifiers)
    with tempfile.TemporaryDirectory(prefix="surgiplan-send-") as tmp:
        objects = []
        if seg:
            objects.append(("seg", _seg_dataset(twin, reference, Path(tmp))))
        if pdf is not None:
            objects.append(("pdf", encapsulated_pdf(Path(pdf), reference)))
        report(progress, 0.4, "objects built")
        datasets = [ds for _, ds in objects]
        use_web = protocol == "dicomweb" or (protocol == "auto" and not server.has_dimse)
        if use_web:
            dicomweb.store(server, datasets, reference.study_uid)
        else:
            dimse.store(settings, server, datasets)
    sent = [SentObject(kind, str(ds.SOPInstanceUID), str(ds.SeriesInstanceUID),
                       str(ds.StudyInstanceUID)) for kind, ds in objects]
    for item in sent:
        source_series.log_identified_export(
            f"{item.kind.upper()} sent to PACS {server.name!r}", case)
    report(progress, 1.0, f"{len(sent)} object(s) stored in study {reference.study_uid}")
    return sent
