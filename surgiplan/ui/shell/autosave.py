"""Autosave and crash recovery of the open case.

After a change the case is saved (atomically, by ``surgiplan.io.bundle.save_bundle``) to
``<folder>/autosave.surgiplan`` a few seconds later, in a worker. While the app runs,
``<folder>/session.json`` names its process; a clean exit removes both. At start-up, an
autosave left by a process that is no longer running is offered for recovery.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from surgiplan.io.atomic import pid_alive
from surgiplan.twin import Twin

AUTOSAVE_NAME = "autosave.surgiplan"
SESSION_NAME = "session.json"


def default_folder() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("surgiplan", appauthor=False)) / "autosave"


class Autosave:
    """Autosave files of this app session under ``root/session-<pid>/`` (made on demand)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_folder()
        self.folder = self.root / f"session-{os.getpid()}"
        self.remove_stale_temps()

    def remove_stale_temps(self) -> list[Path]:
        """Delete the temporary files of autosaves killed mid-write (patient data), at start."""
        from surgiplan.io.atomic import remove_stale_temps

        if not self.root.is_dir():
            return []
        removed = []
        for folder in self.root.glob("session-*"):
            removed += remove_stale_temps(folder)
            stale = folder / f"{SESSION_NAME}.tmp"
            if stale.exists() and folder != self.folder:
                stale.unlink(missing_ok=True)
                removed.append(stale)
        return removed

    @property
    def bundle_path(self) -> Path:
        return self.folder / AUTOSAVE_NAME

    @property
    def session_path(self) -> Path:
        return self.folder / SESSION_NAME

    def recoverable(self) -> list[Path]:
        """Session folders left by crashed processes that hold an autosave, newest first."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in self.root.glob("session-*"):
            try:
                info = json.loads((folder / SESSION_NAME).read_text(encoding="utf-8"))
                pid = int(info.get("pid", 0))
            except (OSError, ValueError):
                pid = 0
            if folder != self.folder and not pid_alive(pid) and (folder / AUTOSAVE_NAME).exists():
                found.append(folder)
        return sorted(found, key=lambda f: (f / AUTOSAVE_NAME).stat().st_mtime, reverse=True)

    @staticmethod
    def case_of(session_folder: Path) -> str:
        """The case path a crashed session had open ('' if it was never saved)."""
        try:
            info = json.loads((session_folder / SESSION_NAME).read_text(encoding="utf-8"))
            return str(info.get("case", ""))
        except (OSError, ValueError):
            return ""

    def start_session(self, case_path: str = "") -> None:
        """Record this process and its case (before each autosave)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f"{SESSION_NAME}.tmp"
        tmp.write_text(json.dumps({"pid": os.getpid(), "case": case_path}), encoding="utf-8")
        os.replace(tmp, self.session_path)

    def save(self, twin: Twin, **_job_kwargs) -> Path:
        """Write the autosave bundle (atomic). Runs in a worker."""
        from surgiplan.io.bundle import save_bundle

        self.folder.mkdir(parents=True, exist_ok=True)
        return save_bundle(twin, self.bundle_path)

    def discard(self, session_folder: Path | None = None) -> None:
        """Remove this session's autosave (clean exit), or a crashed one (recovery declined)."""
        shutil.rmtree(session_folder or self.folder, ignore_errors=True)
