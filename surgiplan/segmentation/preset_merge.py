"""How a preset's proposals meet the structures a twin already has.

A structure that an earlier automatic run made and nobody has touched since (quality flag
"automatic, unreviewed") is *updated* with the new proposal; a structure a person drew, edited
or reviewed is *kept* and the proposal dropped; any other name is *added*. So running ct-liver
after ct-spine gives one skin and one aorta, not "skin 2", and never overwrites a person's work.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from surgiplan.model.provenance import UNREVIEWED

if TYPE_CHECKING:
    from surgiplan.twin import Twin

ADD, UPDATE, KEEP = "add", "update", "keep"


def merge_action(twin: Twin, name: str) -> str:
    """What to do with a proposed structure ``name``: :data:`ADD`, :data:`UPDATE` or
    :data:`KEEP` (see the module docstring)."""
    if name not in twin.segmentation.names():
        return ADD
    entry = twin.provenance.automatic.get(name)
    return UPDATE if entry is not None and entry.quality == UNREVIEWED else KEEP


def merge_actions(twin: Twin, names: Iterable[str]) -> dict[str, str]:
    """:func:`merge_action` for each proposed name (in order)."""
    return {name: merge_action(twin, name) for name in names}


def merge_summary(actions: dict[str, str]) -> str:
    """One sentence for the user: what was added, updated and kept."""
    parts = []
    for action, words in ((ADD, "added"), (UPDATE, "updated (automatic, unreviewed)"),
                          (KEEP, "kept yours (drawn, edited or reviewed by a person)")):
        names = [n for n, a in actions.items() if a == action]
        if names:
            parts.append(f"{words}: {', '.join(names)}")
    return "; ".join(parts) if parts else "nothing proposed"
