"""Clear one-line errors for network failures (refused association, no server, timeouts).

``NetworkError`` is a :class:`~surgiplan.errors.BadInputError`: the CLI exits with code 2 and the
GUI shows the line; it names the server (never its credentials) and says what to check.
"""

from __future__ import annotations

import socket

from surgiplan.errors import BadInputError


class NetworkError(BadInputError):
    """A PACS could not be reached or refused the request."""


def where(host: str, port: int, ae_title: str = "") -> str:
    """``AE@host:port`` (the path part of the message)."""
    return f"{ae_title}@{host}:{port}" if ae_title else f"{host}:{port}"


def why_not_connected(host: str, port: int, timeout_s: float) -> str:
    """Why an association did not start, told apart by one plain TCP connect: nothing
    listening, no answer in time, or a peer that accepted TCP then dropped the DICOM handshake."""
    try:
        with socket.create_connection((host, port), timeout=min(timeout_s, 10.0)):
            return ("the server accepted the connection but did not complete the DICOM "
                    "association (not a DICOM port, a TLS setting that does not match, or the "
                    "server dropped it)")
    except ConnectionRefusedError:
        return "nothing is listening there (the server is down or the port is wrong)"
    except TimeoutError:
        return f"no answer within {min(timeout_s, 10.0):g} s (host unreachable or firewalled)"
    except OSError as exc:
        return f"cannot connect ({exc.strerror or exc})"
