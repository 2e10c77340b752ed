"""Crash logs: the traceback of an unexpected error, written to the user's log folder so that
the CLI and the app can name the file instead of showing a traceback."""

from __future__ import annotations

import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

import surgiplan


def log_dir() -> Path:
    """Folder for crash logs (platform user log dir)."""
    import platformdirs

    return Path(platformdirs.user_log_dir("surgiplan", appauthor=False))


def write_crash_log(exc: BaseException) -> Path | None:
    """Write the traceback of an unexpected exception to a log file; return its path."""
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = folder / f"crash-{stamp}.log"
        path.write_text(
            f"SurgiPlan {surgiplan.__version__}\n{' '.join(sys.argv)}\n\n"
            + "".join(traceback.format_exception(exc)),
            encoding="utf-8",
        )
        return path
    except OSError:
        return None
