"""Where a twin came from: source series, file hashes, software, warnings, notes, and which
structures an automatic method made (with its quality flag: unreviewed, edited, reviewed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from surgiplan import __version__

UNREVIEWED = "automatic, unreviewed"
EDITED = "automatic, edited by the user (not reviewed)"
REVIEWED = "reviewed"
QUALITY_FLAGS = (UNREVIEWED, EDITED, REVIEWED)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class AutomaticStructure:
    """How an automatic method made a structure and whether a person has checked it since.

    ``quality``: one of :data:`QUALITY_FLAGS`; ``reviewed_by``/``changed_utc`` say who set the
    flag and when (UTC, ISO 8601)."""

    method: str
    quality: str = UNREVIEWED
    reviewed_by: str = ""
    changed_utc: str = field(default_factory=_now)

    def to_json(self) -> dict[str, str]:
        return {"method": self.method, "quality": self.quality, "reviewed_by": self.reviewed_by,
                "changed_utc": self.changed_utc}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AutomaticStructure:
        quality = str(data.get("quality", UNREVIEWED))
        return cls(method=str(data.get("method", "")),
                   quality=quality if quality in QUALITY_FLAGS else UNREVIEWED,
                   reviewed_by=str(data.get("reviewed_by", "")),
                   changed_utc=str(data.get("changed_utc", "")))


@dataclass
class Provenance:
    """Where a twin came from: enough to reproduce it and to check its inputs were unchanged."""

    source_series_uids: list[str] = field(default_factory=list)
    source_files_sha256: dict[str, str] = field(default_factory=dict)
    software: str = f"SurgiPlan {__version__}"
    created_utc: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds")
    )
    import_warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # structure name -> the automatic method that made it and its quality flag
    automatic: dict[str, AutomaticStructure] = field(default_factory=dict)

    def record_automatic(self, name: str, method: str) -> None:
        """``name`` was just made by ``method`` (an automatic result: flag unreviewed)."""
        self.automatic[name] = AutomaticStructure(method=method)

    def mark_edited(self, name: str) -> None:
        """A user changed the voxels of automatic structure ``name`` (no-op for others)."""
        entry = self.automatic.get(name)
        if entry is not None and entry.quality != EDITED:
            entry.quality, entry.changed_utc = EDITED, _now()

    def mark_reviewed(self, name: str, by: str = "") -> None:
        """A person checked automatic structure ``name``; raises KeyError for others."""
        entry = self.automatic[name]
        entry.quality, entry.reviewed_by, entry.changed_utc = REVIEWED, by, _now()

    def rename_automatic(self, old: str, new: str) -> None:
        if old in self.automatic:
            self.automatic[new] = self.automatic.pop(old)

    def unreviewed(self, names: list[str] | None = None) -> dict[str, AutomaticStructure]:
        """The automatic structures not reviewed yet (of ``names`` when given)."""
        return {n: a for n, a in self.automatic.items()
                if a.quality != REVIEWED and (names is None or n in names)}

    def to_json(self) -> dict[str, Any]:
        return {
            "source_series_uids": list(self.source_series_uids),
            "source_files_sha256": dict(self.source_files_sha256),
            "software": self.software,
            "created_utc": self.created_utc,
            "import_warnings": list(self.import_warnings),
            "notes": list(self.notes),
            "automatic": {n: a.to_json() for n, a in self.automatic.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Provenance:
        return cls(
            source_series_uids=list(data.get("source_series_uids", [])),
            source_files_sha256=dict(data.get("source_files_sha256", {})),
            software=str(data.get("software", "")),
            created_utc=str(data.get("created_utc", "")),
            import_warnings=list(data.get("import_warnings", [])),
            notes=list(data.get("notes", [])),
            automatic={str(n): AutomaticStructure.from_json(a)
                       for n, a in (data.get("automatic") or {}).items()},
        )
