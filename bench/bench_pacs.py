"""PACS retrieve of the abdomen CT (134 files, 70 MB) from a local Orthanc (127.0.0.1, its own
temporary config and storage), against dcmtk's ``getscu`` of the same series in the same run.

Figures (best of 3 each, after one untimed warm-up retrieve, a fresh local database every time;
getscu with its largest PDU, 128 KiB, as ours negotiates no limit, and ``TCP_NODELAY=1``:
Debian's dcmtk otherwise leaves Nagle's algorithm on and takes ~50 ms per file here):

* ``retrieve_get_vs_getscu``: ``retrieve_series(method="get")`` - IMAGE-level listing, C-GET
  into staging, the importer's header scan and geometry checks, move into the database and one
  SQLite transaction - over ``getscu`` writing the files alone; goal <= 1.5x.
* ``retrieve_move_vs_getscu`` and ``retrieve_wado_vs_getscu``: the same through C-MOVE to our
  own listener and through WADO-RS (no goal: information).

Skipped (no rows) when Orthanc, getscu or the abdomen CT is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.timing import best_time

ROOT = Path(__file__).resolve().parents[1]
SCANS = ROOT.parent / "shared" / "scans" / "abdomen-ct-contrast"
CALLING_AE = "SURGIPLAN_B"


def _setup(tmp: Path):
    sys.path.insert(0, str(ROOT))
    from surgiplan.net.settings import PacsSettings, ServerSettings
    from tests.net.orthanc_server import free_port, start_orthanc

    listener = free_port()
    orthanc = start_orthanc(tmp / "orthanc", {"bench": (CALLING_AE, listener)})
    orthanc.upload(sorted(SCANS.glob("*.dcm")))
    study = orthanc.rest("/studies?expand")[0]
    series = orthanc.rest(f"/series/{study['Series'][0]}")
    uids = (study["MainDicomTags"]["StudyInstanceUID"],
            series["MainDicomTags"]["SeriesInstanceUID"])
    server = ServerSettings(name="orthanc", ae_title=orthanc.aet, host="127.0.0.1",
                            port=orthanc.dicom_port, timeout_s=120,
                            dicomweb_url=orthanc.dicomweb_url if orthanc.dicomweb else "")
    if orthanc.dicomweb:
        from pydantic import SecretStr

        from tests.net.orthanc_server import PASSWORD, USER

        server = server.model_copy(update={"dicomweb_user": USER,
                                           "dicomweb_password": SecretStr(PASSWORD)})
    settings = PacsSettings(calling_ae_title=CALLING_AE, listener_port=listener,
                            listener_host="127.0.0.1", servers={"orthanc": server})
    return orthanc, settings, server, uids


def _ours(tmp: Path, settings, server, uids, method: str) -> None:
    from surgiplan.db.database import LocalDatabase
    from surgiplan.net.retrieve import retrieve_series

    folder = Path(tempfile.mkdtemp(dir=tmp))
    with LocalDatabase(folder) as db:
        summary = retrieve_series(settings, server, db, *uids, method=method)
    assert summary.added == 134, summary.to_json()
    shutil.rmtree(folder)


def _getscu(tmp: Path, orthanc, uids, nodelay: str = "1") -> None:
    out = Path(tempfile.mkdtemp(dir=tmp))
    subprocess.run(["getscu", "-S", "--max-pdu", "131072", "-aet", CALLING_AE, "-aec", orthanc.aet,
                    "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={uids[0]}",
                    "-k", f"SeriesInstanceUID={uids[1]}", "-od", str(out), "127.0.0.1",
                    str(orthanc.dicom_port)], check=True, capture_output=True,
                   env={**os.environ, "TCP_NODELAY": nodelay})
    n = len(list(out.iterdir()))
    assert n == 134, f"getscu wrote {n} files"
    shutil.rmtree(out)


def run() -> list[dict]:
    from tests.net.orthanc_server import ORTHANC_BINARY

    if ORTHANC_BINARY is None or shutil.which("getscu") is None or not SCANS.is_dir():
        print("bench_pacs skipped: needs Orthanc, dcmtk's getscu and the abdomen CT")
        return []
    rows = []
    with tempfile.TemporaryDirectory(prefix="surgiplan-bench-pacs-") as name:
        tmp = Path(name)
        orthanc, settings, server, uids = _setup(tmp)
        try:
            _ours(tmp, settings, server, uids, "get")  # warm Orthanc's cache for both sides
            base = best_time(lambda: _getscu(tmp, orthanc, uids))
            shipped = best_time(lambda: _getscu(tmp, orthanc, uids, nodelay="0"))
            rows.append({"name": "getscu_nagle_vs_nodelay", "value": shipped / base,
                         "unit": "x", "goal": None,
                         "detail": f"getscu as shipped {shipped:.2f} s, TCP_NODELAY=1 "
                         f"{base:.2f} s"})
            methods = ["get", "move"] + (["wado"] if orthanc.dicomweb else [])
            for method in methods:
                ours = best_time(lambda m=method: _ours(tmp, settings, server, uids, m))
                rows.append({"name": f"retrieve_{method}_vs_getscu", "value": ours / base,
                             "unit": "x", "goal": 1.5 if method == "get" else None,
                             "detail": f"ours {ours:.2f} s, getscu {base:.2f} s, 134 files"})
        finally:
            orthanc.stop()
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
