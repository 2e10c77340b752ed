"""DIMSE services through pynetdicom: C-ECHO, C-FIND (study root), C-GET and C-MOVE of a series
into a staging folder, and C-STORE of files.

Every association checks its outcome and raises :class:`NetworkError` with the reason in words
(refused: calling / called AE title not recognised, no reply, busy; nothing listening; timeout;
dropped mid-transfer). Retrieved instances are written to the folder given (a private staging
folder, see :mod:`surgiplan.net.retrieve`), one file per SOP instance, named by its UID.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from surgiplan.net.errors import NetworkError, where, why_not_connected
from surgiplan.net.settings import PacsSettings, ServerSettings
from surgiplan.progress import CancelToken, ProgressCallback, report

_log = logging.getLogger("surgiplan.net")
VERIFICATION = "1.2.840.10008.1.1"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
# Transfer syntaxes we accept for retrieved images: uncompressed first, then the lossless ones
# the importer decodes (the server converts anything else, or refuses the sub-operation).
RECEIVE_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                    JPEG2000Lossless, JPEGLosslessSV1, JPEGLSLossless, RLELossless]
_REJECT_ACTIONS = {
    "Calling AE Title not recognised": "Register SurgiPlan's AE title ({calling}) on the PACS, "
                                       "or set the one it knows with 'pacs config set "
                                       "--calling-ae'",
    "Called AE Title not recognised": "Check the server's AE title in the settings ({called})",
}


def _application_entity(settings: PacsSettings, server: ServerSettings):
    from pynetdicom import AE

    ae = AE(ae_title=settings.calling_ae_title)
    for attr in ("acse_timeout", "dimse_timeout", "network_timeout", "connection_timeout"):
        setattr(ae, attr, server.timeout_s)
    ae.maximum_pdu_size = 0  # unlimited: fewer, larger PDUs
    return ae


def _tls_args(server: ServerSettings) -> tuple[ssl.SSLContext, str] | None:
    if not server.tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                         cafile=server.tls_ca_file or None)
    if server.tls_cert_file:
        context.load_cert_chain(server.tls_cert_file, server.tls_key_file or None)
    return context, server.host


def _rejection(assoc, settings: PacsSettings, server: ServerSettings) -> NetworkError:
    rsp = getattr(assoc.acceptor, "primitive", None)
    reason = getattr(rsp, "reason_str", "no reason given") if rsp is not None else "no reason"
    kind = getattr(rsp, "result_str", "Rejected") if rsp is not None else "Rejected"
    action = next((a for key, a in _REJECT_ACTIONS.items() if key.lower() in reason.lower()),
                  "Check the AE titles and the server's list of known modalities")
    return NetworkError(f"the PACS refused the association ({kind}: {reason})",
                        path=where(server.host, server.port, server.ae_title),
                        action=action.format(calling=settings.calling_ae_title,
                                             called=server.ae_title))


@contextlib.contextmanager
def association(settings: PacsSettings, server: ServerSettings, contexts: Sequence[str],
                *, get_storage: Sequence[str] = (), storage: dict[str, set[str]] | None = None,
                handlers: list | None = None) -> Iterator:
    """An established association with ``server`` proposing the abstract syntaxes
    ``contexts``, the storage classes ``storage`` (class -> transfer syntaxes, for C-STORE) and,
    for C-GET, the storage classes ``get_storage`` with our SCP role;
    released (or aborted on error) on exit."""
    from pynetdicom import build_role

    if not server.has_dimse:
        raise NetworkError("this server has no DIMSE (AE title, host, port) settings",
                           path=server.name, action="Add them, or use its DICOMweb URL")
    ae = _application_entity(settings, server)
    for uid in contexts:
        ae.add_requested_context(uid)
    for uid, syntaxes in (storage or {}).items():
        ae.add_requested_context(uid, sorted(syntaxes))
    roles = []
    for uid in get_storage:
        ae.add_requested_context(uid, RECEIVE_SYNTAXES)
        roles.append(build_role(uid, scp_role=True))
    try:
        assoc = ae.associate(server.host, server.port, ae_title=server.ae_title,
                             ext_neg=roles or None, evt_handlers=handlers or None,
                             tls_args=_tls_args(server))
    except (OSError, ssl.SSLError) as exc:
        raise NetworkError(f"cannot start the association ({exc})",
                           path=where(server.host, server.port, server.ae_title),
                           action="Check the TLS files and the server settings") from None
    if assoc.is_rejected:
        raise _rejection(assoc, settings, server)
    if not assoc.is_established:
        raise NetworkError(f"no DICOM association: "
                           f"{why_not_connected(server.host, server.port, server.timeout_s)}",
                           path=where(server.host, server.port, server.ae_title),
                           action="Check that the PACS is running and the host, port and TLS "
                           "settings")
    try:
        yield assoc
    except BaseException:
        assoc.abort()
        raise
    else:
        assoc.release()


def _lost(server: ServerSettings, what: str) -> NetworkError:
    return NetworkError(f"the connection was lost or timed out during {what}",
                        path=where(server.host, server.port, server.ae_title),
                        action="Nothing was kept from the interrupted transfer; check the "
                        "network and the PACS, then try again")


def _check_status(status: Dataset, server: ServerSettings, what: str) -> int:
    if not status or "Status" not in status:
        raise _lost(server, what)
    code = int(status.Status)
    if code == 0xA801:
        raise NetworkError(f"{what}: the PACS does not know SurgiPlan's AE title as a move "
                           "destination", path=where(server.host, server.port, server.ae_title),
                           action="Register our AE title, host and listener port on the PACS, "
                           "or retrieve with C-GET")
    if code not in (0x0000, 0xFF00, 0xFF01, 0xB000, 0xFE00):
        comment = str(status.get("ErrorComment", "") or "")
        raise NetworkError(f"the PACS answered {what} with status 0x{code:04X}"
                           + (f" ({comment})" if comment else ""),
                           path=where(server.host, server.port, server.ae_title),
                           action="Check the query or the server's log")
    return code


def echo(settings: PacsSettings, server: ServerSettings) -> None:
    """C-ECHO: raises NetworkError unless the server answers Success."""
    with association(settings, server, [VERIFICATION]) as assoc:
        _check_status(assoc.send_c_echo(), server, "C-ECHO")


def find(settings: PacsSettings, server: ServerSettings, query: Dataset,
         cancel: CancelToken | None = None) -> list[Dataset]:
    """C-FIND with the Study Root model at ``query.QueryRetrieveLevel``: the matches."""
    out: list[Dataset] = []
    with association(settings, server, [STUDY_FIND]) as assoc:
        for status, identifier in assoc.send_c_find(query, STUDY_FIND):
            code = _check_status(status, server, "C-FIND")
            if code in (0xFF00, 0xFF01) and identifier is not None:
                out.append(identifier)
            if cancel is not None and cancel.cancelled:
                assoc.abort()
                cancel.raise_if_cancelled()
    return out


def _series_query(study_uid: str, series_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    return ds


def instances(settings: PacsSettings, server: ServerSettings, study_uid: str,
              series_uid: str) -> dict[str, str]:
    """SOP instance UID -> SOP class UID of every instance of a series (IMAGE-level C-FIND)."""
    ds = _series_query(study_uid, series_uid)
    ds.QueryRetrieveLevel = "IMAGE"
    ds.SOPInstanceUID = ""
    ds.SOPClassUID = ""
    return {str(m.SOPInstanceUID): str(m.get("SOPClassUID", "")) for m in
            find(settings, server, ds) if m.get("SOPInstanceUID")}


class _Receiver:
    """C-STORE handler writing each received instance to ``folder`` (counts for progress)."""

    def __init__(self, folder: Path, total: int, progress: ProgressCallback | None,
                 cancel: CancelToken | None) -> None:
        self.folder, self.total, self.progress, self.cancel = folder, total, progress, cancel
        self.received: list[Path] = []
        self.lock = threading.Lock()

    def __call__(self, event) -> int:
        if self.cancel is not None and self.cancel.cancelled:
            return 0xA700  # refused: out of resources (we stop taking files)
        uid = str(event.request.AffectedSOPInstanceUID)
        path = self.folder / f"{uid}.dcm"
        with path.open("wb") as handle:  # raw encoded dataset: no re-encoding
            handle.write(event.encoded_dataset(include_meta=True))
        with self.lock:
            self.received.append(path)
            n = len(self.received)
        report(self.progress, n / max(self.total, 1), f"received {n} of {self.total}")
        return 0x0000


def _run_retrieve(assoc, responses: Iterator, server: ServerSettings, what: str,
                  cancel: CancelToken | None) -> None:
    failed = 0
    for status, _identifier in responses:
        if cancel is not None and cancel.cancelled:
            assoc.abort()
            cancel.raise_if_cancelled()
        code = _check_status(status, server, what)
        failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
        if code == 0xB000 or failed:
            raise NetworkError(f"{what}: {failed} instance(s) could not be sent by the PACS",
                               path=where(server.host, server.port, server.ae_title),
                               action="Nothing was kept; check the server's log (transfer "
                               "syntax or storage problems) and try again")
    if not assoc.is_established:
        raise _lost(server, what)


def get_series(settings: PacsSettings, server: ServerSettings, study_uid: str, series_uid: str,
               folder: Path, expected: dict[str, str], *,
               progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None) -> list[Path]:
    """C-GET of one series into ``folder``; ``expected`` (from :func:`instances`) gives the
    storage classes to negotiate and the count for progress."""
    from pynetdicom import evt

    receiver = _Receiver(folder, len(expected), progress, cancel)
    classes = sorted(set(expected.values()))
    with association(settings, server, [STUDY_GET], get_storage=classes,
                     handlers=[(evt.EVT_C_STORE, receiver)]) as assoc:
        _run_retrieve(assoc, assoc.send_c_get(_series_query(study_uid, series_uid), STUDY_GET),
                      server, "C-GET", cancel)
    return receiver.received


def move_series(settings: PacsSettings, server: ServerSettings, study_uid: str,
                series_uid: str, folder: Path, expected: dict[str, str], *,
                progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> list[Path]:
    """C-MOVE of one series to our own storage listener (``settings.listener_port``, AE title
    ``settings.calling_ae_title``, which the PACS must know), writing into ``folder``."""
    from pynetdicom import AE, evt

    receiver = _Receiver(folder, len(expected), progress, cancel)
    listener = AE(ae_title=settings.calling_ae_title)
    listener.maximum_pdu_size = 0
    for uid in sorted(set(expected.values())):
        listener.add_supported_context(uid, RECEIVE_SYNTAXES)
    try:
        scp = listener.start_server((settings.listener_host, settings.listener_port),
                                    block=False, evt_handlers=[(evt.EVT_C_STORE, receiver)])
    except OSError as exc:
        raise NetworkError(f"cannot listen for C-MOVE on port {settings.listener_port} "
                           f"({exc.strerror or exc})", path=settings.listener_host,
                           action="Choose a free port with 'pacs config set --listener-port', "
                           "or use C-GET") from None
    assert scp is not None  # block=False always returns the running server
    try:
        with association(settings, server, [STUDY_MOVE]) as assoc:
            query = _series_query(study_uid, series_uid)
            _run_retrieve(assoc, assoc.send_c_move(query, settings.calling_ae_title, STUDY_MOVE),
                          server, "C-MOVE", cancel)
    finally:
        scp.shutdown()
    return receiver.received


def store(settings: PacsSettings, server: ServerSettings, datasets: Sequence[Dataset], *,
          progress: ProgressCallback | None = None) -> None:
    """C-STORE of ``datasets`` in their own transfer syntax; each must succeed (warnings
    0xB000-0xBFFF accepted)."""
    contexts: dict[str, set[str]] = {}
    for ds in datasets:
        syntax = str(ds.file_meta.TransferSyntaxUID)
        contexts.setdefault(str(ds.SOPClassUID), {ExplicitVRLittleEndian}).add(syntax)
    with association(settings, server, [], storage=contexts) as assoc:
        for n, ds in enumerate(datasets, start=1):
            code = _check_status(assoc.send_c_store(ds), server, "C-STORE")
            if code not in (0x0000,) and not 0xB000 <= code <= 0xBFFF:
                raise NetworkError(f"C-STORE of {ds.SOPInstanceUID} failed (0x{code:04X})",
                                   path=where(server.host, server.port, server.ae_title))
            report(progress, n / len(datasets), f"sent {n} of {len(datasets)}")
