"""One-click vertebral level correction: the whole column is renamed along S, undoably."""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role
from surgiplan.model.volume import ImageVolume
from surgiplan.segmentation.editor import SegmentEditor
from surgiplan.segmentation.spine import correct_levels, relabel_levels
from surgiplan.twin import Twin

GRID = ImageGeometry((12, 12, 30), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))


def _column() -> Twin:
    """L3 at the bottom (k 1-8), L2, L1 above it, and a non-vertebra bone structure."""
    twin = Twin(ImageVolume(np.zeros(GRID.shape_zyx, np.int16), GRID, modality="CT"))
    for n, name in enumerate(("L3", "L2", "L1")):
        mask = np.zeros(GRID.shape_zyx, bool)
        mask[1 + 10 * n:9 + 10 * n, 3:9, 3:9] = True
        twin.add_structure(name, mask, role=Role.BONE)
    twin.add_structure("rib", np.zeros(GRID.shape_zyx, bool), role=Role.BONE)
    return twin


def test_relabel_shifts_every_level_with_the_corrected_one() -> None:
    names = ["L5", "L4", "L3", "L2", "L1", "T12"]
    assert relabel_levels(names, 0, "L4") == ["L4", "L3", "L2", "L1", "T12", "T11"]
    assert relabel_levels(names, 5, "L1") == ["vertebra 1", "L5", "L4", "L3", "L2", "L1"]
    with pytest.raises(BadInputError, match="unknown vertebral level"):
        relabel_levels(names, 0, "L9")


def test_correcting_one_vertebra_renames_the_column_and_undo_restores_it() -> None:
    twin = _column()
    bottom = np.asarray(twin.segmentation.mask("L3")).copy()
    editor = SegmentEditor(twin)
    renames = correct_levels(twin, "L2", "L3", editor=editor)
    assert renames == {"L3": "L4", "L2": "L3", "L1": "L2"}
    assert np.array_equal(twin.segmentation.mask("L4"), bottom)
    assert sorted(twin.segmentation.names()) == ["L2", "L3", "L4", "rib"]
    editor.undo()
    assert sorted(twin.segmentation.names()) == ["L1", "L2", "L3", "rib"]
    assert np.array_equal(twin.segmentation.mask("L3"), bottom)


def test_a_structure_not_named_by_level_is_refused() -> None:
    with pytest.raises(BadInputError, match="not a vertebra named by level"):
        correct_levels(_column(), "rib", "L1")
