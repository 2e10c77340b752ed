"""A real Orthanc on 127.0.0.1 (own config and storage in a temporary folder, random free
ports), started once for the module that asks for it and stopped at the end; the PACS settings
of the isolated test user point at it. Skips, with the reason, when Orthanc is not installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import real_scan
from tests.net.orthanc_server import (
    ORTHANC_BINARY,
    PASSWORD,
    USER,
    OrthancServer,
    free_port,
    start_orthanc,
)

CALLING_AE = "SURGIPLAN_T"
SMALL_CT = "liver-ct-3slice-seg"
TILT_CT = "head-ct-gantry-tilt"


def dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() != ".nrrd"
                  and p.name != "LICENSE" and not p.name.lower().startswith("readme"))


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory) -> Iterator[OrthancServer]:
    """A running Orthanc holding the 3-slice liver CT and the 28-file gantry-tilt head CT."""
    if ORTHANC_BINARY is None:
        pytest.skip("Orthanc is not installed (bash installer/dev.sh installs it: apt orthanc)")
    small, tilt = real_scan(SMALL_CT) / "dicom", real_scan(TILT_CT)
    listener = free_port()
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"),
                           {"surgiplan": (CALLING_AE, listener)})
    server.listener_port = listener
    try:
        server.upload(dicom_files(small) + dicom_files(tilt))
        yield server
    finally:
        server.stop()


@pytest.fixture
def pacs(orthanc, tmp_path, monkeypatch):
    """PACS settings (own XDG config folder) for the test Orthanc: DIMSE and DICOMweb."""
    from pydantic import SecretStr

    from surgiplan.net.settings import PacsSettings, ServerSettings, save_settings

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    server = ServerSettings(name="orthanc", ae_title=orthanc.aet, host="127.0.0.1",
                            port=orthanc.dicom_port, timeout_s=60,
                            dicomweb_url=orthanc.dicomweb_url if orthanc.dicomweb else "",
                            dicomweb_user=USER, dicomweb_password=SecretStr(PASSWORD))
    settings = PacsSettings(calling_ae_title=CALLING_AE, listener_port=orthanc.listener_port,
                            listener_host="127.0.0.1", servers={"orthanc": server},
                            default_server="orthanc")
    save_settings(settings)
    return settings


def needs_dicomweb(orthanc: OrthancServer) -> None:
    if not orthanc.dicomweb:
        pytest.skip("Orthanc's DICOMweb plug-in is not installed (apt orthanc-dicomweb)")
