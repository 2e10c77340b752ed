"""The plans audit log: one JSON object per line (``plans/audit.jsonl`` in the case bundle).

Each line records when (UTC), who (the planner's user name, as given), what action, on which
plan (its id and name) and non-identifying facts (field names changed, old/new plan names,
status). It never holds patient identifiers: free text such as notes is not copied (only that
it changed), and any known identifier (the case's patient name, ID, birth date, when the twin
carries them) is replaced by ``[redacted]`` before a line is written. Old lines are kept
byte-for-byte; new ones are appended.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from surgiplan.errors import BadInputError
from surgiplan.plans.model import utc_now

REDACTED = "[redacted]"


class AuditEntry(BaseModel):
    """One audited change."""

    model_config = ConfigDict(extra="allow")

    time_utc: str
    actor: str = ""
    action: str
    plan_id: str = ""
    plan_name: str = ""
    details: dict[str, Any] = {}


class AuditLog:
    """Append-only audit lines; ``forbidden`` strings (identifiers) are redacted when added."""

    def __init__(self, data: bytes = b"", *, forbidden: Iterable[str] = (),
                 path: str = "plans/audit.jsonl") -> None:
        self._old = data if not data or data.endswith(b"\n") else data + b"\n"
        self._entries = _parse(self._old, path)
        self._new: list[AuditEntry] = []
        self.forbidden = sorted({str(f) for f in forbidden if len(str(f).strip()) >= 2},
                                key=len, reverse=True)

    @property
    def entries(self) -> list[AuditEntry]:
        return [*self._entries, *self._new]

    def append(self, action: str, *, actor: str = "", plan_id: str = "", plan_name: str = "",
               details: dict[str, Any] | None = None) -> AuditEntry:
        """Record one change now (identifiers redacted)."""
        entry = AuditEntry(time_utc=utc_now(), actor=self._clean(actor), action=action,
                           plan_id=plan_id, plan_name=self._clean(plan_name),
                           details=self._clean(details or {}))
        self._new.append(entry)
        return entry

    def to_bytes(self) -> bytes:
        """Old lines unchanged, then one compact JSON line per new entry."""
        lines = [json.dumps(e.model_dump(mode="json"), separators=(",", ":"), sort_keys=True)
                 for e in self._new]
        return self._old + "".join(f"{line}\n" for line in lines).encode("utf-8")

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for word in self.forbidden:
                value = _replace_casefold(value, word)
            return value
        if isinstance(value, dict):
            return {self._clean(str(k)): self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value]
        return value


def _replace_casefold(text: str, word: str) -> str:
    low, key = text.casefold(), word.casefold()
    out, start = [], 0
    while (at := low.find(key, start)) >= 0:
        out += [text[start:at], REDACTED]
        start = at + len(key)
    return "".join(out) + text[start:]


def _parse(data: bytes, path: str) -> list[AuditEntry]:
    entries = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(AuditEntry.model_validate_json(line))
        except ValidationError as exc:
            raise BadInputError(f"audit line {number} is not a valid entry "
                                f"({exc.errors()[0]['msg']})", path=path,
                                action="The case file is damaged: open a backup copy") from exc
    return entries


def identifiers_of(twin: Any) -> list[str]:
    """Patient identifiers a twin carries (name and its parts, ID, birth date), to redact."""
    patient = (getattr(twin, "image", None) and twin.image.metadata.get("patient")) or {}
    values: list[str] = []
    for value in patient.values():
        text = str(value or "").strip()
        if text:
            values.append(text)
            values += [part for part in text.replace("^", " ").split() if len(part) >= 3]
    return values
