"""Finding a case bundle on disk from what a user names (a file, or a folder holding one)."""

from __future__ import annotations

from pathlib import Path

from surgiplan.errors import BadInputError


def bundle_path(case: Path) -> Path:
    """The case bundle named by ``case`` (a .surgiplan file, or a folder holding one)."""
    case = Path(case)
    if case.is_dir():
        found = sorted(case.glob("*.surgiplan"))
        if len(found) != 1:
            raise BadInputError(f"the folder holds {len(found)} .surgiplan bundles, not one",
                                path=case, action="name the .surgiplan file itself")
        return found[0]
    if case.suffix != ".surgiplan":
        raise BadInputError("not a case bundle (.surgiplan)", path=case,
                            action="give a .surgiplan file or a folder holding one")
    if not case.is_file():
        raise BadInputError("no such case file", path=case, action="check the path")
    return case
