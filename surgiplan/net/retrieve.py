"""Retrieve one series from a PACS (C-GET, C-MOVE to our own listener, or WADO-RS) into the
local database, through the importer's checks.

Files arrive in a private staging folder inside the database folder; only when every instance
the PACS listed has arrived and reads as DICOM are they moved into the database and indexed
(one transaction). A cancel, a refused association or a connection cut mid-transfer removes the
staging folder and leaves the database as it was.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from surgiplan.db.database import AddSummary, LocalDatabase
from surgiplan.errors import BadInputError
from surgiplan.net import dicomweb, dimse
from surgiplan.net.errors import NetworkError
from surgiplan.net.settings import PacsSettings, ServerSettings
from surgiplan.progress import CancelToken, ProgressCallback, check, report

METHODS = ("get", "move", "wado")


def expected_instances(settings: PacsSettings, server: ServerSettings, study_uid: str,
                       series_uid: str, method: str) -> dict[str, str]:
    """SOP instance UID -> SOP class UID the PACS lists for the series (IMAGE-level query)."""
    if method == "wado":
        found = dicomweb.search(server, "IMAGE", {"SeriesInstanceUID": series_uid},
                                study_uid=study_uid, fields=("SOPClassUID",))
        listed = {str(d.SOPInstanceUID): str(d.get("SOPClassUID", "")) for d in found}
    else:
        listed = dimse.instances(settings, server, study_uid, series_uid)
    if not listed:
        raise BadInputError(f"the PACS lists no instance of series {series_uid} in study "
                            f"{study_uid}", path=server.name,
                            action="Search again ('surgiplan pacs find') and give the UIDs shown")
    return listed


def retrieve_series(settings: PacsSettings, server: ServerSettings, db: LocalDatabase,
                    study_uid: str, series_uid: str, *, method: str = "get",
                    progress: ProgressCallback | None = None,
                    cancel: CancelToken | None = None) -> AddSummary:
    """Retrieve a series by ``method`` (``get``, ``move`` or ``wado``) into ``db``."""
    if method not in METHODS:
        raise BadInputError(f"unknown retrieve method {method!r}", path="retrieve",
                            action=f"Use one of {', '.join(METHODS)}")
    expected = expected_instances(settings, server, study_uid, series_uid, method)
    report(progress, 0.02, f"{len(expected)} instance(s) to retrieve")
    staging = Path(tempfile.mkdtemp(prefix="incoming-", dir=db.folder))
    try:
        def step(fraction: float, text: str) -> None:
            report(progress, 0.02 + 0.9 * fraction, text)

        if method == "wado":
            received = dicomweb.retrieve_series(server, study_uid, series_uid, staging,
                                                len(expected), progress=step, cancel=cancel)
        else:
            fetch = dimse.get_series if method == "get" else dimse.move_series
            received = fetch(settings, server, study_uid, series_uid, staging, expected,
                             progress=step, cancel=cancel)
        check(cancel)
        if len(received) < len(expected):  # e.g. an HTTP stream that ended early
            raise NetworkError(f"the transfer ended early: {len(received)} of {len(expected)} "
                               "instance(s) received (connection cut?)", path=server.name,
                               action="Nothing was kept; check the network and the PACS, then "
                               "try again")
        report(progress, 0.93, "checking the files")
        summary = db.add_retrieved(staging, f"{method}:{server.name}", expected, cancel=cancel)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report(progress, 1.0, f"{summary.added} new instance(s) in the local database")
    return summary
