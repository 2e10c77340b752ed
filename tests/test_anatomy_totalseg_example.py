"""Our spine segmentation against TotalSegmentator's own labels on its real example CT.

The example (../shared/scans/totalsegmentator-example) is 20 JPEG 2000 slices of the upper
abdomen with TotalSegmentator's v2 multi-label output, imported with the project's importers.
"""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.io.twin_build import build_twin
from surgiplan.segmentation.spine import segment_spine
from surgiplan.segmentation.threshold import body_mask
from tests.conftest import real_scan


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))


@pytest.fixture(scope="module")
def compared() -> dict[str, tuple[str, float]]:
    """Reference vertebra -> (our best-matching structure, its Dice)."""
    folder = real_scan("totalsegmentator-example")
    twin = build_twin(folder / "dicom",
                      labels=[folder / "segmentation_totalsegmentator_v2.nii.gz"],
                      label_names="totalsegmentator-v2")
    image = twin.image
    ours = segment_spine(image.array, image.geometry, body_mask(image.array, image.geometry))
    out = {}
    for name in twin.segmentation.names():
        if not name.startswith("vertebrae_"):
            continue
        ref = np.asarray(twin.segmentation.mask(name))
        scores = {n: _dice(ref, m) for n, m in ours.vertebrae.items()}
        best = max(scores, key=scores.__getitem__)
        out[name.removeprefix("vertebrae_")] = (best, scores[best])
    return out


def test_each_reference_vertebra_is_found(compared) -> None:
    assert set(compared) == {"T11", "T12"}
    assert compared["T12"][1] >= 0.5  # measured 0.58 (see the xfail below for the goal)


@pytest.mark.xfail(strict=True, reason="issue 16 acceptance not reached: Dice T12 0.58, T11 "
                   "0.38 (goal 0.80), and without a sacrum or detected ribs in these 20 "
                   "slices the levels are not named")
def test_vertebrae_reach_dice_080_with_the_same_level_names(compared) -> None:
    for level, (ours, dice) in compared.items():
        assert dice >= 0.80 and ours == level
