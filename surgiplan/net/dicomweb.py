"""DICOMweb through dicomweb-client: QIDO-RS (test connection, search), WADO-RS (retrieve a
series into a staging folder) and STOW-RS (send objects).

The password goes to ``requests`` as session auth, never into a URL or a header we log;
HTTP and connection failures become one-line :class:`NetworkError` messages naming the URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydicom.dataset import Dataset

from surgiplan.net.errors import NetworkError
from surgiplan.net.settings import ServerSettings
from surgiplan.progress import CancelToken, ProgressCallback, check, report

_HTTP_ACTIONS = {401: "Check the DICOMweb user and password in the settings",
                 403: "The account has no right to this; ask the PACS administrator",
                 404: "Check the DICOMweb URL (the path of the service)"}


def client(server: ServerSettings):
    """A dicomweb-client for ``server`` (basic auth when a user is set)."""
    import requests
    from dicomweb_client.api import DICOMwebClient

    if not server.has_dicomweb:
        raise NetworkError("this server has no DICOMweb URL", path=server.name,
                           action="Add one with 'pacs config add NAME --dicomweb URL', or use "
                           "DIMSE")
    session = requests.Session()
    if server.dicomweb_user:
        session.auth = (server.dicomweb_user, server.dicomweb_password.get_secret_value())
    if server.tls_ca_file:
        session.verify = server.tls_ca_file
    return DICOMwebClient(server.dicomweb_url, session=session,
                          timeout=(min(server.timeout_s, 10.0), server.timeout_s))


def translate(exc: Exception, server: ServerSettings, what: str) -> Exception:
    """A NetworkError for a requests failure (others returned unchanged)."""
    import requests

    url = server.dicomweb_url
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        return NetworkError(f"{what} answered HTTP {code} {exc.response.reason or ''}".strip(),
                            path=url, action=_HTTP_ACTIONS.get(code, "Check the server's log"))
    if isinstance(exc, requests.Timeout):
        return NetworkError(f"{what}: no answer within {server.timeout_s:g} s", path=url,
                            action="Check that the server is running, or raise the timeout")
    if isinstance(exc, requests.ConnectionError):
        return NetworkError(f"{what}: cannot connect or the connection was cut", path=url,
                            action="Check that the DICOMweb server is running and the URL; "
                            "nothing was kept from an interrupted transfer")
    return exc


def echo(server: ServerSettings) -> None:
    """'Test connection': a QIDO-RS study search limited to one answer."""
    import requests

    try:
        client(server).search_for_studies(limit=1)
    except requests.RequestException as exc:
        raise translate(exc, server, "QIDO-RS") from None


def search(server: ServerSettings, level: str, filters: dict[str, str], *,
           study_uid: str | None = None, fields: Sequence[str] = ()) -> list[Dataset]:
    """QIDO-RS at ``level`` (``STUDY``/``SERIES``/``IMAGE``): matches as pydicom datasets."""
    import requests

    web = client(server)
    try:
        if level == "STUDY":
            found = web.search_for_studies(search_filters=filters, fields=list(fields) or None)
        elif level == "SERIES":
            found = web.search_for_series(study_instance_uid=study_uid, search_filters=filters,
                                          fields=list(fields) or None)
        else:
            found = web.search_for_instances(study_instance_uid=study_uid,
                                             search_filters=filters, fields=list(fields) or None)
    except requests.RequestException as exc:
        raise translate(exc, server, "QIDO-RS") from None
    return [Dataset.from_json(item) for item in found]


def retrieve_series(server: ServerSettings, study_uid: str, series_uid: str, folder: Path,
                    expected: int, *, progress: ProgressCallback | None = None,
                    cancel: CancelToken | None = None) -> list[Path]:
    """WADO-RS of one series, streamed, in the stored transfer syntax: one file per instance
    in ``folder``."""
    import requests

    out: list[Path] = []
    try:
        for ds in client(server).iter_series(study_uid, series_uid,
                                             media_types=(("application/dicom", "*"),)):
            check(cancel)
            path = folder / f"{ds.SOPInstanceUID}.dcm"
            ds.save_as(path, enforce_file_format=True)
            out.append(path)
            report(progress, len(out) / max(expected, 1), f"received {len(out)} of {expected}")
    except requests.RequestException as exc:
        raise translate(exc, server, "WADO-RS") from None
    return out


def store(server: ServerSettings, datasets: Sequence[Dataset], study_uid: str) -> None:
    """STOW-RS of ``datasets`` into ``study_uid``; raises unless every instance was stored."""
    import requests

    try:
        answer = client(server).store_instances(list(datasets), study_instance_uid=study_uid)
    except requests.RequestException as exc:
        raise translate(exc, server, "STOW-RS") from None
    failed = answer.get("FailedSOPSequence") if answer is not None else None
    if failed:
        raise NetworkError(f"STOW-RS refused {len(failed)} of {len(datasets)} object(s)",
                           path=server.dicomweb_url, action="Check the server's log")
