"""Where a twin came from: source series, file hashes, software, warnings, notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from surgiplan import __version__


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

    def to_json(self) -> dict[str, Any]:
        return {
            "source_series_uids": list(self.source_series_uids),
            "source_files_sha256": dict(self.source_files_sha256),
            "software": self.software,
            "created_utc": self.created_utc,
            "import_warnings": list(self.import_warnings),
            "notes": list(self.notes),
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
        )
