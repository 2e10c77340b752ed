"""Structure properties are checked at the model boundary (issue 13, item 6): a negative,
infinite or NaN margin, a NaN colour or an opacity above one never reach the twin."""

from __future__ import annotations

import math

import numpy as np
import pytest

from surgiplan.model import ImageGeometry, ImageVolume, Segmentation, Structure
from surgiplan.twin import Twin


@pytest.fixture
def twin() -> Twin:
    geo = ImageGeometry(size=(8, 8, 8), spacing_mm=(1.0, 1.0, 1.0), origin_lps=(0.0, 0.0, 0.0))
    labels = np.zeros(geo.shape_zyx, np.uint16)
    labels[2:5, 2:5, 2:5] = 1
    seg = Segmentation(geo, [labels], [Structure("vessel", "critical", 1, margin_mm=2.0)])
    return Twin(ImageVolume(np.zeros(geo.shape_zyx, np.int16), geo), seg)


@pytest.mark.parametrize("props", [
    {"margin_mm": -7.5}, {"margin_mm": math.inf}, {"margin_mm": math.nan},
    {"margin_mm": 1e6}, {"margin_mm": "wide"}, {"color": (math.nan, 0.0, 0.0)},
    {"color": (1.0, 2.0, 0.0)}, {"color": (1.0, 0.0)}, {"opacity": 1.5},
    {"visible": "yes"}, {"role": "dangerous"}, {"margin_mm": 1.0, "opacity": -1.0},
])
def test_bad_values_are_refused_and_nothing_changes(twin, props):
    seen = []
    twin.events.connect(lambda event, **kw: seen.append(event))
    before = twin.segmentation.get("vessel")
    snapshot = (before.margin_mm, before.color, before.opacity, before.visible, before.role)
    with pytest.raises(ValueError):
        twin.set_structure_properties("vessel", **props)
    after = twin.segmentation.get("vessel")
    assert (after.margin_mm, after.color, after.opacity, after.visible, after.role) == snapshot
    assert "structure_properties_changed" not in seen


def test_good_values_are_applied_and_announced(twin):
    seen = []
    twin.events.connect(lambda event, **kw: seen.append((event, kw)))
    twin.set_structure_properties("vessel", margin_mm=3, color=(0.1, 0.2, 0.3), opacity=0.5,
                                  role="target")
    s = twin.segmentation.get("vessel")
    assert (s.margin_mm, s.color, s.opacity, str(s.role)) == (3.0, (0.1, 0.2, 0.3), 0.5,
                                                              "target")
    assert seen[-1][0] == "structure_properties_changed"


def test_a_structure_cannot_be_made_with_a_bad_margin():
    with pytest.raises(ValueError, match="margin_mm"):
        Structure("x", "critical", 1, margin_mm=math.inf)
