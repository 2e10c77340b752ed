"""PACS server settings, stored per user (``platformdirs.user_config_dir("surgiplan")/pacs.json``).

One file holds our own AE title and C-MOVE listener port and the configured servers by name:
DIMSE (called AE title, host, port, optional TLS with a CA file and client certificate) and/or
DICOMweb (base URL, optional user and password). The file is written atomically and owner-only
(0600) because it may hold a DICOMweb password; the password is a ``SecretStr`` so it never
appears in ``repr``, logs or ``--json`` output. No server is configured by default, so nothing
connects anywhere until the user adds one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from surgiplan.errors import BadInputError

SETTINGS_NAME = "pacs.json"
_AE_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 _-.")


def _check_ae(value: str) -> str:
    value = value.strip()
    if not value or len(value) > 16 or not set(value) <= _AE_CHARS:
        raise ValueError(f"AE title {value!r} must be 1-16 letters, digits, space, _ - or .")
    return value


class ServerSettings(BaseModel):
    """One PACS: DIMSE endpoint and/or DICOMweb endpoint (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    ae_title: str = ""  # the server's (called) AE title; "" when DICOMweb only
    host: str = ""
    port: int = Field(default=104, ge=1, le=65535)
    tls: bool = False
    tls_ca_file: str = ""  # PEM bundle that verifies the server ("" = system default)
    tls_cert_file: str = ""  # our client certificate and key, when the server asks for one
    tls_key_file: str = ""
    dicomweb_url: str = ""
    dicomweb_user: str = ""
    dicomweb_password: SecretStr = SecretStr("")
    timeout_s: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("ae_title")
    @classmethod
    def _ae(cls, value: str) -> str:
        return _check_ae(value) if value.strip() else ""

    @field_validator("dicomweb_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"DICOMweb URL {value!r} must start with http:// or https://")
        if "@" in value.split("/")[2] if value.count("/") >= 2 else False:
            raise ValueError("the DICOMweb URL must not hold a user or password; give them "
                             "with --user and --password")
        return value

    @property
    def has_dimse(self) -> bool:
        return bool(self.ae_title and self.host)

    @property
    def has_dicomweb(self) -> bool:
        return bool(self.dicomweb_url)

    def describe(self) -> dict:
        """JSON-safe summary, without the password (only whether one is set)."""
        out = self.model_dump(exclude={"dicomweb_password"})
        out["dicomweb_password_set"] = bool(self.dicomweb_password.get_secret_value())
        return out


class PacsSettings(BaseModel):
    """Our own AE title and C-MOVE listener port, and the configured servers by name."""

    model_config = ConfigDict(extra="forbid")
    calling_ae_title: str = "SURGIPLAN"
    listener_port: int = Field(default=11112, ge=1, le=65535)
    listener_host: str = "0.0.0.0"  # where our C-MOVE listener binds (the PACS connects to it)
    servers: dict[str, ServerSettings] = {}
    default_server: str = ""

    @field_validator("calling_ae_title")
    @classmethod
    def _ae(cls, value: str) -> str:
        return _check_ae(value)

    def server(self, name: str | None = None) -> ServerSettings:
        """The named server, else the default or only one; refused when none is configured."""
        if not self.servers:
            raise BadInputError("no PACS server is configured, so SurgiPlan does not connect "
                                "anywhere", path=settings_path(),
                                action="Add one with 'surgiplan pacs config add NAME --ae ... "
                                "--host ... --port ...' (or --dicomweb URL)")
        key = name or self.default_server or (next(iter(self.servers))
                                              if len(self.servers) == 1 else "")
        if key not in self.servers:
            known = ", ".join(sorted(self.servers))
            raise BadInputError(f"no PACS server named {key!r} (configured: {known})",
                                path=settings_path(), action="Give --server with one of them")
        return self.servers[key]

    def describe(self) -> dict:
        return {"calling_ae_title": self.calling_ae_title, "listener_port": self.listener_port,
                "listener_host": self.listener_host,
                "default_server": self.default_server,
                "servers": [s.describe() for s in self.servers.values()]}


def settings_path() -> Path:
    """The per-user settings file (honours ``XDG_CONFIG_HOME``)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("surgiplan", appauthor=False)) / SETTINGS_NAME


def load_settings(path: Path | None = None) -> PacsSettings:
    """The saved settings, or the empty default (no server) when there is no file."""
    path = path or settings_path()
    if not path.exists():
        return PacsSettings()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return PacsSettings.model_validate(data)
    except (OSError, ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInputError(f"the PACS settings cannot be read ({first})", path=path,
                            action="Fix or delete the file and configure the server again") \
            from None


def save_settings(settings: PacsSettings, path: Path | None = None) -> Path:
    """Write the settings atomically, owner-only (0600): it may hold a DICOMweb password."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = settings.model_dump(mode="json")
    for name, server in settings.servers.items():
        data["servers"][name]["dicomweb_password"] = server.dicomweb_password.get_secret_value()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path
