"""Atomic file writing: a file is either entirely the old version or entirely the new one.

The new content goes to a temporary file in the target's own folder (so ``os.replace`` is a
rename on one file system), is flushed and fsynced, then renamed over the target, and the folder
is fsynced so the rename itself survives a power cut. A replaced file keeps its permissions; a
new one is owner-only (0600), which suits patient data. If anything fails before the rename, the
temporary file is deleted and the previous file is left untouched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from surgiplan.errors import BadInputError

# OS errors that are the user's situation (disk, permissions), not a bug: told as one line.
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


def fsync_folder(folder: Path) -> None:
    """fsync a directory so a rename inside it is durable (a no-op where unsupported)."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows: directories cannot be opened for fsync
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def os_error_to_bad_input(exc: OSError, path: Path) -> BadInputError | None:
    """A one-line BadInputError for a full disk, a missing or unwritable folder, else None."""
    if exc.errno in _DISK_FULL:
        return BadInputError(
            "the disk is full, so the file could not be written (the previous version, if any, "
            "is unchanged)",
            path=path,
            action="Free some disk space or save to another drive, then save again",
        )
    if exc.errno == errno.ENOENT and not path.parent.is_dir():
        return BadInputError(f"the folder {path.parent} does not exist", path=path,
                             action="Create it or choose another folder")
    if exc.errno in _NOT_WRITABLE:
        return BadInputError(
            f"cannot write here ({exc.strerror})",
            path=path,
            action="Choose a folder you may write to",
        )
    return None


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Open a binary temporary file that replaces ``path`` atomically when the block ends.

    On an exception inside the block (or while committing) the temporary file is removed and
    ``path`` is untouched. A full disk or an unwritable folder raises ``BadInputError``.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as handle:
            _keep_mode(path, tmp_name)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
        fsync_folder(folder)
    except OSError as exc:
        friendly = os_error_to_bad_input(exc, path)
        if friendly is not None:
            raise friendly from exc
        raise
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def _keep_mode(path: Path, tmp_name: str) -> None:
    """Give the new file the old one's permissions; a new file stays owner-only (0600)."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(tmp_name, path.stat().st_mode & 0o7777)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as handle:
        handle.write(data)
    return Path(path)
