"""A real Orthanc on 127.0.0.1 for the PACS tests and benchmark: its own temporary config and
storage, random free ports, started and stopped by the caller (never the system service).

Orthanc's DICOMweb plug-in (Debian ``orthanc-dicomweb``) is loaded when installed; the tests
that need it skip, with the reason, when it is not.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ORTHANC_BINARY = shutil.which("Orthanc") or (
    "/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
SERVER_AE = "ORTHANC_TEST"
USER, PASSWORD = "surgiplan", "s3cret-pw"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class OrthancServer:
    """A running Orthanc: its DICOM and HTTP ports, AE title and process."""

    folder: Path
    dicom_port: int
    http_port: int
    process: subprocess.Popen
    dicomweb: bool
    aet: str = SERVER_AE
    listener_port: int = 0  # our C-MOVE listener, as registered in DicomModalities

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.http_url}/dicom-web"

    def rest(self, path: str, data: bytes | None = None, method: str | None = None):
        """JSON answer of Orthanc's REST API (with the test credentials)."""
        body = self.raw(path, data, method)
        return json.loads(body) if body else None

    def raw(self, path: str, data: bytes | None = None, method: str | None = None) -> bytes:
        """Raw answer of Orthanc's REST API (with the test credentials)."""
        request = urllib.request.Request(self.http_url + path, data=data, method=method)
        import base64

        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.read()

    def upload(self, files) -> None:
        """Store DICOM files through the REST API."""
        for f in files:
            self.rest("/instances", data=Path(f).read_bytes(), method="POST")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


def start_orthanc(folder: Path, modalities: dict[str, tuple[str, int]] | None = None,
                  *, timeout_s: float = 120.0) -> OrthancServer:
    """Start Orthanc with a private config in ``folder``; ``modalities`` maps a name to the
    (AE title, port) of a peer on 127.0.0.1 (C-MOVE destinations)."""
    if ORTHANC_BINARY is None:
        raise FileNotFoundError("the Orthanc binary is not installed (apt-get install orthanc)")
    folder.mkdir(parents=True, exist_ok=True)
    dicom_port, http_port = free_port(), free_port()
    dicomweb = DICOMWEB_PLUGIN.exists()
    config = {
        "Name": "surgiplan-test", "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"), "HttpPort": http_port,
        "DicomPort": dicom_port, "DicomAet": SERVER_AE, "DicomServerEnabled": True,
        "RemoteAccessAllowed": False, "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD}, "DicomCheckCalledAet": True,
        "DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False, "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False,
        "DicomModalities": {name: [aet, "127.0.0.1", port]
                            for name, (aet, port) in (modalities or {}).items()},
        "DicomModalitiesInDatabase": False, "StorageCompression": False,
        "HttpTimeout": 60, "DicomScpTimeout": 30, "ConcurrentJobs": 1,
        "Plugins": [str(DICOMWEB_PLUGIN)] if dicomweb else [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "SaveJobs": False, "HttpDescribeErrors": True,
    }
    (folder / "orthanc.json").write_text(json.dumps(config, indent=1))
    log = (folder / "orthanc.log").open("wb")
    process = subprocess.Popen([ORTHANC_BINARY, str(folder / "orthanc.json")],
                               stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    server = OrthancServer(folder, dicom_port, http_port, process, dicomweb)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Orthanc exited at start: see {folder / 'orthanc.log'}")
        try:
            server.rest("/system")
            return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"Orthanc did not answer within {timeout_s} s: {folder / 'orthanc.log'}")


class CuttingProxy:
    """A TCP relay on 127.0.0.1 to ``port`` that cuts every connection once ``cut_after``
    bytes went from the server to the client: a network dropping mid-transfer."""

    def __init__(self, port: int, cut_after: int) -> None:
        import threading

        self.target, self.cut_after = port, cut_after
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.cuts = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            pair = (client, upstream)
            threading.Thread(target=self._pump, args=(client, upstream, None, pair),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.cut_after, pair),
                             daemon=True).start()

    def _pump(self, src, dst, limit, pair) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                if limit is not None and sent + len(data) > limit:
                    self.cuts += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in pair:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.listener.close()


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (a hung peer)."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]

    def close(self) -> None:
        self.listener.close()
