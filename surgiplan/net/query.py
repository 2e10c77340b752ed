"""Query a PACS (C-FIND or QIDO-RS) by patient name/ID, date range, modality and accession;
results as a patient -> study -> series tree (plain dicts, JSON-ready)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.dataset import Dataset

from surgiplan.errors import BadInputError
from surgiplan.net import dicomweb, dimse
from surgiplan.net.settings import PacsSettings, ServerSettings
from surgiplan.progress import CancelToken, check

STUDY_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "StudyDate",
              "StudyDescription", "AccessionNumber", "ModalitiesInStudy")
SERIES_KEYS = ("SeriesInstanceUID", "Modality", "SeriesDescription", "SeriesNumber",
               "NumberOfSeriesRelatedInstances")
_DATE = re.compile(r"^(\d{8})?(-(\d{8})?)?$")


@dataclass(frozen=True)
class Query:
    """Matching keys (DICOM wildcards ``*``/``?`` allowed in names and IDs); dates YYYYMMDD."""

    patient_name: str = ""
    patient_id: str = ""
    date_from: str = ""
    date_to: str = ""
    modality: str = ""
    accession: str = ""
    study_uid: str = ""

    def date_range(self) -> str:
        """DICOM date range matching (``A-B``, ``A-``, ``-B``) or "" for any date."""
        text = f"{self.date_from}-{self.date_to}" if self.date_from or self.date_to else ""
        if text and not _DATE.match(text):
            raise BadInputError(f"dates must be YYYYMMDD, got {text!r}", path="query",
                                action="Give --date-from/--date-to as e.g. 20240131")
        return text

    def filters(self) -> dict[str, str]:
        """Non-empty study-level matching keys by DICOM keyword."""
        keys = {"PatientName": self.patient_name, "PatientID": self.patient_id,
                "StudyDate": self.date_range(), "ModalitiesInStudy": self.modality,
                "AccessionNumber": self.accession, "StudyInstanceUID": self.study_uid}
        return {k: v for k, v in keys.items() if v}


def _text(ds: Dataset, key: str) -> str:
    value = ds.get(key, "")
    if value is None:
        return ""
    if key == "ModalitiesInStudy" and not isinstance(value, str):
        return "\\".join(str(v) for v in value)
    return str(value)


def _study_dataset(query: Query) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    for key in STUDY_KEYS:
        setattr(ds, key, "")
    for key, value in query.filters().items():
        setattr(ds, key, value)
    return ds


def _series_dataset(study_uid: str, modality: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study_uid
    for key in SERIES_KEYS:
        setattr(ds, key, "")
    if modality:
        ds.Modality = modality
    return ds


def _series_entry(ds: Dataset) -> dict:
    count = _text(ds, "NumberOfSeriesRelatedInstances")
    number = _text(ds, "SeriesNumber")
    return {"series_uid": _text(ds, "SeriesInstanceUID"), "modality": _text(ds, "Modality"),
            "description": _text(ds, "SeriesDescription"),
            "series_number": int(number) if number.lstrip("-").isdigit() else None,
            "instances": int(count) if count.isdigit() else None}


def build_tree(studies: list[tuple[Dataset, list[Dataset]]]) -> list[dict]:
    """Patient -> study -> series dicts from study matches and their series matches."""
    patients: dict[tuple[str, str], dict] = {}
    for study, series in studies:
        key = (_text(study, "PatientID"), _text(study, "PatientName"))
        patient = patients.setdefault(key, {"patient_id": key[0], "patient_name": key[1],
                                            "birth_date": _text(study, "PatientBirthDate"),
                                            "studies": []})
        patient["studies"].append({
            "study_uid": _text(study, "StudyInstanceUID"),
            "study_date": _text(study, "StudyDate"),
            "description": _text(study, "StudyDescription"),
            "accession": _text(study, "AccessionNumber"),
            "modalities": _text(study, "ModalitiesInStudy"),
            "series": sorted((_series_entry(s) for s in series),
                             key=lambda e: (e["series_number"] is None, e["series_number"] or 0))})
    return sorted(patients.values(), key=lambda p: (p["patient_name"], p["patient_id"]))


def search(settings: PacsSettings, server: ServerSettings, query: Query, *,
           protocol: str = "auto", cancel: CancelToken | None = None) -> list[dict]:
    """Studies matching ``query`` with their series (filtered by modality), as a tree."""
    use_web = protocol == "dicomweb" or (protocol == "auto" and not server.has_dimse)
    pairs: list[tuple[Dataset, list[Dataset]]] = []
    if use_web:
        for study in dicomweb.search(server, "STUDY", query.filters(), fields=STUDY_KEYS):
            check(cancel)
            filters = {"Modality": query.modality} if query.modality else {}
            pairs.append((study, dicomweb.search(server, "SERIES", filters,
                                                 study_uid=str(study.StudyInstanceUID),
                                                 fields=SERIES_KEYS)))
        return build_tree(pairs)
    for study in dimse.find(settings, server, _study_dataset(query), cancel):
        check(cancel)
        series = dimse.find(settings, server,
                            _series_dataset(str(study.StudyInstanceUID), query.modality), cancel)
        pairs.append((study, series))
    return build_tree(pairs)
