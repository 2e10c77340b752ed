"""Local DICOM database: ``index.sqlite`` plus a ``files/`` folder for retrieved instances.

Imported folders are indexed where they are (``managed = 0``); retrieved series are moved into
``files/<study>/<series>/`` (``managed = 1``, removed with the series). Every file goes through
the importer's header scan (:func:`surgiplan.io.dicom_scan.scan_dicom`); an image series that
the loader would refuse or warn about keeps that message in ``series.warnings``. Instances are
keyed by SOP Instance UID, so importing the same files again changes nothing (idempotent).
Each addition is one SQLite transaction written after every file was checked, so an
interrupted retrieve or import leaves the index as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from surgiplan.errors import BadInputError
from surgiplan.progress import CancelToken, ProgressCallback, check

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS patients (
    patient_key INTEGER PRIMARY KEY AUTOINCREMENT, patient_id TEXT NOT NULL,
    patient_name TEXT NOT NULL, birth_date TEXT NOT NULL DEFAULT '', sex TEXT NOT NULL DEFAULT '',
    UNIQUE (patient_id, patient_name));
CREATE TABLE IF NOT EXISTS studies (
    study_uid TEXT PRIMARY KEY, patient_key INTEGER NOT NULL REFERENCES patients(patient_key),
    study_date TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
    accession TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS series (
    series_uid TEXT PRIMARY KEY, study_uid TEXT NOT NULL REFERENCES studies(study_uid),
    modality TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
    series_number INTEGER, kind TEXT NOT NULL DEFAULT 'image', origin TEXT NOT NULL,
    added_utc TEXT NOT NULL, warnings TEXT NOT NULL DEFAULT '[]');
CREATE TABLE IF NOT EXISTS instances (
    sop_instance_uid TEXT PRIMARY KEY,
    series_uid TEXT NOT NULL REFERENCES series(series_uid),
    sop_class_uid TEXT NOT NULL, path TEXT NOT NULL, managed INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS instances_series ON instances(series_uid);
"""


def default_folder() -> Path:
    """The per-user database folder (honours ``XDG_DATA_HOME``)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("surgiplan", appauthor=False)) / "dicom-database"


@dataclass
class AddSummary:
    """What one import or retrieve added: counts, the series touched, and per-file problems."""

    added: int = 0
    already: int = 0
    series: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"added": self.added, "already_in_database": self.already,
                "series": self.series, "problems": self.problems, "warnings": self.warnings}


@dataclass
class _Row:
    """One instance to index, with its patient / study / series attributes."""

    sop: str
    sop_class: str
    path: Path
    series: dict
    study: dict
    patient: dict


def _load_check(info) -> list[str]:
    """The loader's warnings for an image series, or its refusal as one warning line."""
    from surgiplan.io.dicom_load import plan_series_geometry

    try:
        return plan_series_geometry(info)[1]
    except BadInputError as exc:
        return [f"cannot be loaded: {exc}"]


def _header_extras(path: Path) -> dict:
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[
        "AccessionNumber", "StudyInstanceUID", "PatientName", "PatientID", "StudyDate",
        "StudyDescription", "Modality", "SeriesDescription", "SeriesNumber", "SOPInstanceUID",
        "SOPClassUID", "PatientBirthDate", "PatientSex", "SeriesInstanceUID"])
    return {k: str(ds.get(k, "") or "") for k in (
        "AccessionNumber", "StudyInstanceUID", "PatientName", "PatientID", "StudyDate",
        "StudyDescription", "Modality", "SeriesDescription", "SeriesNumber", "SOPInstanceUID",
        "SOPClassUID", "PatientBirthDate", "PatientSex", "SeriesInstanceUID")}


def _rows_from_scan(scan, summary: AddSummary, cancel: CancelToken | None) -> list[_Row]:
    rows: list[_Row] = []
    for info in scan.series:
        check(cancel)
        summary.warnings[info.series_uid] = info.warnings + _load_check(info)
        extra = _header_extras(info.files[0].path)
        for h in info.files:
            rows.append(_Row(h.sop_instance_uid, h.sop_class_uid, h.path, {
                "series_uid": info.series_uid, "modality": info.modality,
                "description": info.description, "series_number": info.series_number,
                "kind": "image"}, {"study_uid": info.study_uid, "study_date": info.study_date,
                                   "description": info.study_description,
                                   "accession": extra["AccessionNumber"]},
                {"patient_id": info.patient_id, "patient_name": info.patient_name,
                 "birth_date": info.patient_birth_date, "sex": info.patient_sex}))
    for obj in scan.non_image:
        check(cancel)
        e = _header_extras(obj.path)
        if not e["SOPInstanceUID"] or not e["SeriesInstanceUID"]:
            summary.problems.append(f"{obj.path}: no SOP instance or series UID")
            continue
        number = int(e["SeriesNumber"]) if e["SeriesNumber"].lstrip("-").isdigit() else None
        rows.append(_Row(e["SOPInstanceUID"], e["SOPClassUID"], obj.path, {
            "series_uid": e["SeriesInstanceUID"], "modality": e["Modality"],
            "description": e["SeriesDescription"], "series_number": number, "kind": obj.kind},
            {"study_uid": e["StudyInstanceUID"], "study_date": e["StudyDate"],
             "description": e["StudyDescription"], "accession": e["AccessionNumber"]},
            {"patient_id": e["PatientID"], "patient_name": e["PatientName"],
             "birth_date": e["PatientBirthDate"], "sex": e["PatientSex"]}))
    return rows


class LocalDatabase:
    """The SQLite index in ``folder`` (created on first use); see the module docstring."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder else default_folder()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.files_folder = self.folder / "files"
        self.path = self.folder / "index.sqlite"
        try:
            self._conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA journal_mode = WAL")
            with self._conn:
                self._conn.executescript(_SCHEMA)
                self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)",
                                   (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as exc:
            raise BadInputError(f"the local DICOM database cannot be opened ({exc})",
                                path=self.path, action="Move the file away; SurgiPlan makes a "
                                "new one (then import the folders again)") from None
        version = int(self._conn.execute("SELECT value FROM meta WHERE key='schema'")
                      .fetchone()[0])
        if version > SCHEMA_VERSION:
            raise BadInputError(f"the database has schema {version}, newer than this SurgiPlan "
                                f"({SCHEMA_VERSION})", path=self.path,
                                action="Use a newer SurgiPlan")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> LocalDatabase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- adding
    def import_path(self, path: str | Path, *, origin: str = "import",
                    progress: ProgressCallback | None = None,
                    cancel: CancelToken | None = None) -> AddSummary:
        """Index the DICOM files under ``path`` where they are (idempotent)."""
        from surgiplan.io.dicom_scan import scan_dicom

        scan = scan_dicom(path, progress=progress, cancel=cancel)
        summary = AddSummary(problems=[str(p) for p in scan.problems
                                       if not p.plainly_not_dicom])
        rows = _rows_from_scan(scan, summary, cancel)
        if not rows:
            raise BadInputError(f"no DICOM object to add ({scan.summary()})", path=path,
                                action="Give a folder, file or DICOMDIR holding DICOM files")
        check(cancel)
        self._insert(rows, origin, managed=False, summary=summary)
        return summary

    def add_retrieved(self, staging: Path, origin: str, expected: Iterable[str],
                      cancel: CancelToken | None = None) -> AddSummary:
        """Check the files retrieved into ``staging`` (every ``expected`` SOP instance UID
        present, every file readable), move them into ``files/`` and index them; the staging
        folder is removed. Refused, with nothing indexed, when anything is missing or broken."""
        from surgiplan.io.dicom_scan import scan_dicom

        scan = scan_dicom(staging, cancel=cancel)
        summary = AddSummary()
        rows = _rows_from_scan(scan, summary, cancel)
        broken = [str(p) for p in scan.problems] + summary.problems
        missing = set(expected) - {r.sop for r in rows}
        if broken or missing:
            raise BadInputError(f"the retrieved series is incomplete or damaged "
                                f"({len(missing)} missing, {len(broken)} unreadable"
                                + (f"; first: {broken[0]}" if broken else "") + ")",
                                path=origin, action="Nothing was added; retrieve it again")
        known = self._known({r.sop for r in rows})
        for r in rows:
            if r.sop in known:  # already indexed (imported or retrieved before): keep that one
                summary.already += 1
                continue
            target = self.files_folder / r.study["study_uid"] / r.series["series_uid"]
            target.mkdir(parents=True, exist_ok=True)
            final = target / f"{r.sop}.dcm"
            os.replace(r.path, final)
            r.path = final
        self._insert([r for r in rows if r.sop not in known], origin, managed=True,
                     summary=summary)
        shutil.rmtree(staging, ignore_errors=True)
        return summary

    def _known(self, sops: set[str]) -> set[str]:
        rows = self._conn.execute("SELECT sop_instance_uid FROM instances").fetchall()
        return sops & {r[0] for r in rows}

    def _insert(self, rows: Sequence[_Row], origin: str, *, managed: bool,
                summary: AddSummary) -> None:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        c = self._conn
        with c:  # one transaction: all rows or none
            for r in rows:
                p = r.patient
                c.execute("INSERT OR IGNORE INTO patients (patient_id, patient_name, birth_date,"
                          " sex) VALUES (?, ?, ?, ?)", (p["patient_id"], p["patient_name"],
                                                        p["birth_date"], p["sex"]))
                key = c.execute("SELECT patient_key FROM patients WHERE patient_id=? AND "
                                "patient_name=?", (p["patient_id"], p["patient_name"])
                                ).fetchone()[0]
                s = r.study
                c.execute("INSERT OR IGNORE INTO studies VALUES (?, ?, ?, ?, ?)",
                          (s["study_uid"], key, s["study_date"], s["description"],
                           s["accession"]))
                se = r.series
                warnings = json.dumps(summary.warnings.get(se["series_uid"], []))
                c.execute("INSERT OR IGNORE INTO series VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (se["series_uid"], s["study_uid"], se["modality"], se["description"],
                           se["series_number"], se["kind"], origin, now, warnings))
                done = c.execute("INSERT OR IGNORE INTO instances VALUES (?, ?, ?, ?, ?)",
                                 (r.sop, se["series_uid"], r.sop_class,
                                  str(Path(r.path).resolve()), int(managed))).rowcount
                summary.added += done
                summary.already += 1 - done
                if se["series_uid"] not in summary.series:
                    summary.series.append(se["series_uid"])

    # ---------------------------------------------------------------- reading
    def tree(self) -> list[dict]:
        """Patients -> studies -> series (with instance counts), sorted for display."""
        c = self._conn
        out = []
        for key, pid, name, birth, sex in c.execute(
                "SELECT patient_key, patient_id, patient_name, birth_date, sex FROM patients "
                "ORDER BY patient_name, patient_id").fetchall():
            studies = []
            for uid, date, desc, acc in c.execute(
                    "SELECT study_uid, study_date, description, accession FROM studies WHERE "
                    "patient_key=? ORDER BY study_date, study_uid", (key,)).fetchall():
                series = [{"series_uid": su, "modality": mod, "description": d,
                           "series_number": num, "kind": kind, "origin": origin,
                           "added_utc": added, "warnings": json.loads(w), "instances": n}
                          for su, mod, d, num, kind, origin, added, w, n in c.execute(
                              "SELECT s.series_uid, modality, description, series_number, kind, "
                              "origin, added_utc, warnings, COUNT(i.sop_instance_uid) FROM "
                              "series s LEFT JOIN instances i ON i.series_uid = s.series_uid "
                              "WHERE study_uid=? GROUP BY s.series_uid ORDER BY series_number",
                              (uid,)).fetchall()]
                if series:
                    studies.append({"study_uid": uid, "study_date": date, "description": desc,
                                    "accession": acc, "series": series})
            if studies:
                out.append({"patient_id": pid, "patient_name": name, "birth_date": birth,
                            "sex": sex, "studies": studies})
        return out

    def series_files(self, series_uid: str) -> list[Path]:
        """The files of a series; BadInputError when the series is unknown."""
        rows = self._conn.execute("SELECT path FROM instances WHERE series_uid=? ORDER BY path",
                                  (series_uid,)).fetchall()
        if not rows:
            raise BadInputError(f"series {series_uid} is not in the local database",
                                path=self.path, action="List them with 'surgiplan db list'")
        return [Path(r[0]) for r in rows]

    def missing_files(self) -> list[Path]:
        """Indexed files that are no longer on disk (moved or deleted imported folders)."""
        return [Path(p) for (p,) in self._conn.execute("SELECT path FROM instances")
                if not Path(p).exists()]

    def remove_series(self, series_uid: str) -> int:
        """Forget a series (deleting the files the database holds itself); instances removed."""
        files = self._conn.execute("SELECT path, managed FROM instances WHERE series_uid=?",
                                   (series_uid,)).fetchall()
        if not files:
            self.series_files(series_uid)  # raises the clear message
        with self._conn as c:
            c.execute("DELETE FROM instances WHERE series_uid=?", (series_uid,))
            c.execute("DELETE FROM series WHERE series_uid=?", (series_uid,))
            c.execute("DELETE FROM studies WHERE study_uid NOT IN (SELECT study_uid FROM "
                      "series)")
            c.execute("DELETE FROM patients WHERE patient_key NOT IN (SELECT patient_key "
                      "FROM studies)")
        for path, managed in files:
            if managed:
                Path(path).unlink(missing_ok=True)
        return len(files)

    def integrity(self) -> str:
        """SQLite's own integrity check ("ok" when sound)."""
        return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])

    def has_series(self, series_uid: str) -> bool:
        return self._conn.execute("SELECT 1 FROM series WHERE series_uid=?",
                                  (series_uid,)).fetchone() is not None
