"""Atomic file writing: a file is either entirely the old version or entirely the new one.

The new content goes to a temporary file in the target's own folder (so ``os.replace`` is a
rename on one file system), is flushed and fsynced, then renamed over the target, and the folder
is fsynced so the rename itself survives a power cut. A replaced file keeps its permissions; a
new one is owner-only (0600), which suits patient data. If anything fails before the rename, the
temporary file is deleted and the previous file is left untouched.

A process killed mid-write cannot delete its temporary file. Temporary names carry the writer's
process id (``.NAME.<pid>.<random>.tmp``); :func:`remove_stale_temps` deletes those whose writer
is no longer running, and every atomic write (and every case load) sweeps its own folder first.
A target that exists but is not a regular file (``/dev/full``, a FIFO) is written directly:
renaming over a device would replace the device.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from surgiplan.errors import BadInputError

# OS errors that are the user's situation (disk, permissions), not a bug: told as one line.
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}
# Temporary files of unknown writers (older SurgiPlan versions put no pid in the name) older
# than this are stale too, in seconds: no save takes an hour.
STALE_TEMP_AGE_S = 3600.0


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
    if exc.errno == errno.ENOTDIR or (exc.errno in (errno.ENOENT, errno.EEXIST)
                                      and _file_in_parents(path)):
        return BadInputError(f"{_file_in_parents(path) or path.parent} is a file, not a folder",
                             path=path, action="Choose an output path inside a folder")
    if exc.errno == errno.EISDIR:
        return BadInputError("is a folder, not a file", path=path,
                             action="Give a file name, not a folder")
    if exc.errno in (errno.EIO, errno.EFBIG, errno.ENAMETOOLONG):
        return BadInputError(f"the file could not be written ({exc.strerror})", path=path,
                             action="Check the drive and the name, then save again")
    return None


def _file_in_parents(path: Path) -> Path | None:
    """The first ancestor of ``path`` that exists and is not a folder, if any."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists (signal 0; a foreign user's process counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")
_OLD_TEMP = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp$")  # before pids were added


def remove_stale_temps(folder: str | Path, *, name: str | None = None) -> list[Path]:
    """Delete temporary files left in ``folder`` by killed atomic writes (of target ``name``
    only, if given): those whose writer process is gone, or older than an hour. Returns them."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _TEMP.match(entry.name) or _OLD_TEMP.match(entry.name)
            if match is None or (name is not None and match["name"] != name):
                continue
            pid = int(match["pid"]) if "pid" in match.groupdict() else os.getpid()
            with contextlib.suppress(OSError):
                old = time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_AGE_S
                if (pid != os.getpid() and not pid_alive(pid)) or old:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _is_special(path: Path) -> bool:
    """True when ``path`` exists and is not a regular file (a device, FIFO or socket)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Open a binary temporary file that replaces ``path`` atomically when the block ends.

    On an exception inside the block (or while committing) the temporary file is removed and
    ``path`` is untouched. A full disk or an unwritable folder raises ``BadInputError``.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if _is_special(path):
        with _friendly(path), open(path, "wb") as handle:
            yield handle
        return
    tmp_name: str | None = None
    try:
        remove_stale_temps(folder, name=path.name)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                        dir=folder)
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


@contextlib.contextmanager
def _friendly(path: Path) -> Iterator[None]:
    """OSErrors that are the user's situation become one-line BadInputErrors."""
    try:
        yield
    except OSError as exc:
        friendly = os_error_to_bad_input(exc, path)
        if friendly is not None:
            raise friendly from exc
        raise


def _keep_mode(path: Path, tmp_name: str) -> None:
    """Give the new file the old one's permissions; a new file stays owner-only (0600)."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(tmp_name, path.stat().st_mode & 0o7777)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as handle:
        handle.write(data)
    return Path(path)


def probe_writable(path: str | Path) -> Path:
    """Fail early (one-line ``BadInputError``) when ``path`` cannot be written atomically:
    a missing or read-only folder, a parent that is a file, a folder named as the target.
    Creates and removes a temporary file next to ``path``; a full disk shows only at writing."""
    path = Path(path)
    if path.is_dir():
        raise BadInputError("is a folder, not a file", path=path,
                            action="Give a file name, not a folder")
    if _is_special(path) or (not path.parent.exists() and _file_in_parents(path) is None):
        return path  # a device; or folders the writer will create
    with _friendly(path):
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                        dir=path.parent if str(path.parent) else ".")
        os.close(fd)
        os.unlink(tmp_name)
    return path


@contextlib.contextmanager
def removed_on_failure(*paths: str | Path) -> Iterator[None]:
    """If the block fails, delete those of ``paths`` (files or folders) that did not exist
    when it started: a multi-file export leaves nothing half-written behind."""
    fresh = [Path(p) for p in paths if not os.path.lexists(p)]
    try:
        yield
    except BaseException:
        for path in fresh:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        raise
