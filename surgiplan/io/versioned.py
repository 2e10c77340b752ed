"""Schema-versioned JSON documents: reading them and bringing older versions up to date.

One place for what the case bundle's manifest, the plans document, exercise and attempt files
share: JSON that cannot be read is bad input naming the file (one line), a version newer than
this SurgiPlan reads is refused with what to do, and an older one is upgraded one version at a
time through ``migrations[v]`` (a version-v document -> version v+1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from surgiplan import __version__
from surgiplan.errors import BadInputError

Migration = Callable[[dict[str, Any]], dict[str, Any]]
M = TypeVar("M", bound=BaseModel)


def parse_json(data: bytes | str, *, what: str, path: str | Path, action: str) -> Any:
    """``data`` parsed as JSON; ``BadInputError`` "the WHAT is not valid JSON (...)"."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # Recursion: deep nesting
        raise BadInputError(f"the {what} is not valid JSON ({exc})", path=path,
                            action=action) from exc


def read_json_file(path: str | Path, *, what: str, action: str) -> Any:
    """The JSON in file ``path``; ``BadInputError`` when it is missing, unreadable or not JSON
    (``what`` names the document, e.g. "exercise")."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"no such {what} file", path=path, action="check the path") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise BadInputError(f"cannot read the {what} as JSON ({exc})", path=path,
                            action=action) from exc


def upgrade(raw: dict[str, Any], version: int, *, current: int,
            migrations: Mapping[int, Migration], path: str | Path, subject: str,
            what: str) -> dict[str, Any]:
    """``raw`` (a version-``version`` document) brought up to version ``current``; its
    ``schema_version`` is set at each step. ``subject`` starts the refusal of a newer
    document ("this case was"), ``what`` names its format ("case")."""
    if version > current:
        raise BadInputError(
            f"{subject} made by a newer SurgiPlan ({what} format version {version} is newer "
            f"than this SurgiPlan {__version__} reads, up to {current})", path=path,
            action="Update SurgiPlan to open it")
    while version < current:
        if version not in migrations:
            raise BadInputError(f"{what} format version {version} cannot be upgraded",
                                path=path, action="Open it with the SurgiPlan version that "
                                                  "saved it")
        raw = migrations[version](raw)
        version += 1
        raw["schema_version"] = version
    return raw


def document_version(raw: Any, *, fmt: str, document: str, what: str, path: str | Path,
                     action: str) -> int:
    """The ``schema_version`` of ``raw`` after checking it is a JSON object of format ``fmt``
    with a whole version >= 1 (``document`` names it in messages, e.g. "manifest.json")."""
    if not isinstance(raw, dict) or raw.get("format") != fmt:
        got = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise BadInputError(f"{document} does not describe a SurgiPlan {what} (format {got!r}, "
                            f"expected {fmt!r})", path=path, action=action)
    version = raw.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BadInputError(f"{document} has an invalid schema_version {version!r}", path=path,
                            action=action)
    return version


def validated(model: type[M], raw: Any, *, what: str, path: str | Path, action: str) -> M:
    """``raw`` as the pydantic ``model``; ``BadInputError`` "WHAT is invalid at FIELD: why"
    naming the first problem."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "top level"
        raise BadInputError(f"{what} is invalid at {where}: {err['msg']}", path=path,
                            action=action) from exc
