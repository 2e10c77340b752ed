"""PACS faults end with one clear line and nothing half-written: server down, association
refused (wrong AE titles), a hung server, and the connection cut in the middle of a retrieve
(C-GET and WADO-RS through a relay that drops it); credentials never reach logs or output."""

from __future__ import annotations

import json
import logging
import stat

import pytest
from pydantic import SecretStr

from surgiplan.cli.main import main
from surgiplan.db.database import LocalDatabase
from surgiplan.net import dicomweb, dimse
from surgiplan.net.errors import NetworkError
from surgiplan.net.retrieve import retrieve_series
from surgiplan.net.settings import load_settings, save_settings, settings_path
from tests.net.conftest import needs_dicomweb
from tests.net.orthanc_server import PASSWORD, CuttingProxy, SilentServer, free_port


def _tilt(orthanc) -> tuple[str, str]:
    """Study and series UIDs of the 28-file gantry-tilt CT in the test Orthanc."""
    for study in orthanc.rest("/studies?expand"):
        if study["PatientMainDicomTags"].get("PatientID") != "99000":
            series = orthanc.rest(f"/series/{study['Series'][0]}")
            return (study["MainDicomTags"]["StudyInstanceUID"],
                    series["MainDicomTags"]["SeriesInstanceUID"])
    raise AssertionError("the gantry-tilt CT is not in the test Orthanc")


def _untouched(db: LocalDatabase) -> None:
    assert db.tree() == [] and db.integrity() == "ok"
    assert not [p for p in db.folder.iterdir() if p.name.startswith("incoming-")]
    assert not db.files_folder.exists() or not any(db.files_folder.rglob("*.dcm"))


def test_no_server_configured_means_no_connection(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty"))
    assert main(["pacs", "echo"]) == 2
    err = capsys.readouterr().err
    assert "no PACS server is configured" in err and len(err.strip().splitlines()) == 1


def test_server_down_is_named_and_the_database_stays_empty(pacs, orthanc, tmp_path):
    server = pacs.servers["orthanc"].model_copy(update={"port": free_port()})
    with LocalDatabase(tmp_path / "db") as db:
        with pytest.raises(NetworkError, match="nothing is listening"):
            retrieve_series(pacs, server, db, *_tilt(orthanc))
        _untouched(db)


def test_wrong_ae_titles_are_refused_with_the_reason(pacs, orthanc, capsys):
    settings = load_settings()
    settings.calling_ae_title = "STRANGER"
    save_settings(settings)
    assert main(["pacs", "echo"]) == 2
    err = capsys.readouterr().err
    assert "refused the association" in err and "Calling AE title not recognised" in err
    assert "STRANGER" in err and "Traceback" not in err
    server = pacs.servers["orthanc"].model_copy(update={"ae_title": "NOT_ORTHANC"})
    with pytest.raises(NetworkError, match="Called AE title not recognised"):
        dimse.echo(pacs, server)


def test_a_hung_server_times_out_with_a_message(pacs):
    silent = SilentServer()
    try:
        server = pacs.servers["orthanc"].model_copy(update={"port": silent.port,
                                                            "timeout_s": 2.0})
        with pytest.raises(NetworkError, match="did not complete the DICOM association"):
            dimse.echo(pacs, server)
    finally:
        silent.close()


@pytest.mark.parametrize("method", ["get", "wado"])
def test_connection_cut_mid_transfer_leaves_nothing(pacs, orthanc, tmp_path, method):
    if method == "wado":
        needs_dicomweb(orthanc)
    proxy = CuttingProxy(orthanc.http_port if method == "wado" else orthanc.dicom_port,
                         cut_after=3_000_000)  # about 6 of the 28 slices
    try:
        server = pacs.servers["orthanc"].model_copy(update={
            "port": proxy.port, "timeout_s": 10.0,
            "dicomweb_url": f"http://127.0.0.1:{proxy.port}/dicom-web"})
        with LocalDatabase(tmp_path / "db") as db:
            study, series = _tilt(orthanc)
            with pytest.raises(NetworkError, match=r"lost|cut|incomplete"):
                retrieve_series(pacs, server, db, study, series, method=method)
            assert proxy.cuts >= 1
            _untouched(db)
    finally:
        proxy.close()


def test_credentials_never_in_settings_output_or_logs(pacs, orthanc, capsys, caplog):
    path = settings_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert main(["pacs", "config", "show", "--json"]) == 0
    shown = capsys.readouterr().out
    assert PASSWORD not in shown and json.loads(shown)["servers"][0]["dicomweb_password_set"]
    assert PASSWORD not in repr(load_settings())
    needs_dicomweb(orthanc)
    bad = pacs.servers["orthanc"].model_copy(update={"dicomweb_password": SecretStr("wrong")})
    with caplog.at_level(logging.DEBUG):
        dicomweb.echo(pacs.servers["orthanc"])
        with pytest.raises(NetworkError, match="401"):
            dicomweb.echo(bad)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged and PASSWORD not in logged and "wrong" not in logged
    import base64

    assert base64.b64encode(f"surgiplan:{PASSWORD}".encode()).decode() not in logged


def test_a_url_holding_credentials_is_refused(capsys):
    assert main(["pacs", "config", "add", "x", "--dicomweb",
                 "http://user:pw@127.0.0.1:1/dicom-web"]) == 2
    assert "must not hold a user or password" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["get", "wado"])
def test_cancel_mid_retrieve_leaves_nothing(pacs, orthanc, tmp_path, method):
    from surgiplan.errors import CancelledError
    from surgiplan.progress import CancelToken

    if method == "wado":
        needs_dicomweb(orthanc)
    token = CancelToken()
    seen: list[str] = []

    def progress(fraction: float, text: str) -> None:
        seen.append(text)
        if text.startswith("received 3 of"):
            token.cancel()

    with LocalDatabase(tmp_path / "db") as db:
        with pytest.raises(CancelledError):
            retrieve_series(pacs, pacs.servers["orthanc"], db, *_tilt(orthanc), method=method,
                            progress=progress, cancel=token)
        assert "received 3 of 28" in seen and "received 28 of 28" not in seen
        _untouched(db)
    assert main(["pacs", "echo"]) == 0  # the server is fine afterwards
