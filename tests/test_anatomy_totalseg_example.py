"""Our spine segmentation against TotalSegmentator's own labels on its real example CT.

The example (../shared/scans/totalsegmentator-example) is 20 JPEG 2000 slices of the upper
abdomen with TotalSegmentator's v2 multi-label output, imported with the project's importers.
"""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.io.twin_build import build_twin
from surgiplan.segmentation.presets import preset_masks
from tests.conftest import real_scan


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))


@pytest.fixture(scope="module")
def example():
    """(the example twin with TotalSegmentator's labels, our ct-spine preset's masks)."""
    folder = real_scan("totalsegmentator-example")
    twin = build_twin(folder / "dicom",
                      labels=[folder / "segmentation_totalsegmentator_v2.nii.gz"],
                      label_names="totalsegmentator-v2")
    return twin, {p.name: p.mask for p in preset_masks(twin.image, "ct-spine")}


@pytest.fixture(scope="module")
def compared(example) -> dict[str, tuple[str, float]]:
    """Reference vertebra -> (our best-matching structure, its Dice)."""
    twin, ours = example
    out = {}
    for name in twin.segmentation.names():
        if not name.startswith("vertebrae_"):
            continue
        ref = np.asarray(twin.segmentation.mask(name))
        scores = {n: _dice(ref, m) for n, m in ours.items() if n not in _NOT_BONE}
        best = max(scores, key=scores.__getitem__)
        out[name.removeprefix("vertebrae_")] = (best, scores[best])
    return out


_NOT_BONE = ("skin", "spinal canal", "aorta", "inferior vena cava")


def test_aorta_reaches_dice_080(example) -> None:
    """Issue 16 acceptance for the aorta (measured 0.84: the calcified, less enhanced aorta of
    this late-phase scan, tracked at the lower HU level)."""
    twin, ours = example
    assert _dice(np.asarray(twin.segmentation.mask("aorta")), ours["aorta"]) >= 0.80


def test_ct_spine_drops_an_ivc_track_that_never_leaves_the_liver(example) -> None:
    """The tracker's "IVC" here is an enhancing vessel inside the liver (Dice 0 against the
    reference): ct-spine drops it as ct-liver does (``abdomen.without_ivc_inside_liver``),
    so whatever IVC it proposes overlaps the reference."""
    twin, ours = example
    ref = np.asarray(twin.segmentation.mask("inferior_vena_cava"))
    assert "inferior vena cava" not in ours or _dice(ref, ours["inferior vena cava"]) >= 0.5


def test_no_vessel_structure_of_a_ct_preset_holds_totalsegmentators_spleen(example) -> None:
    """Issue 16 acceptance against an independent spleen (TotalSegmentator's; the example shows
    no kidney): ct-spine's aorta and ct-bone-skin-vessels' vessels (ct-liver's are checked in
    tests/test_anatomy_liver.py)."""
    twin, ours = example
    spleen = np.asarray(twin.segmentation.mask("spleen"))
    generic = {p.name: p.mask for p in preset_masks(twin.image, "ct-bone-skin-vessels")}
    vessels = [ours[n] for n in ("aorta", "inferior vena cava") if n in ours]
    for mask in [*vessels, generic["vessels"]]:
        assert (mask & spleen).sum() <= 0.005 * spleen.sum()


@pytest.mark.xfail(strict=True, reason="no IVC is found here (Dice 0; the tracker's track is "
                   "a vessel in the liver, dropped): in these 20 slices the IVC is as dense "
                   "as the liver "
                   "around it (83-99 vs 88-90 HU) and never leaves it, so there is no "
                   "enhancing section to start from; carrying the reference's own lowest "
                   "section up (the abdomen CT's method above its track) reaches only 0.53-0.66")
def test_inferior_vena_cava_overlaps_the_reference(example) -> None:
    twin, ours = example
    ref = np.asarray(twin.segmentation.mask("inferior_vena_cava"))
    assert _dice(ref, ours.get("inferior vena cava", np.zeros_like(ref))) >= 0.5


def test_each_reference_vertebra_is_found(compared) -> None:
    assert set(compared) == {"T11", "T12"}
    assert compared["T12"][1] >= 0.6  # measured 0.63 (see the xfail below for the goal)


def test_vertebra_level_names_agree(compared) -> None:
    """No sacrum in these 20 slices: the levels come from the last rib-bearing vertebra
    (the 11th ribs pass 60-115 mm beside the canal at T12)."""
    for level, (ours, _dice) in compared.items():
        assert ours == level


@pytest.mark.xfail(strict=True, reason="issue 16 acceptance not reached: Dice T12 0.63, T11 "
                   "0.33 (goal 0.80): the split at the degenerate T11/T12 disc sits 1-2 slices "
                   "low, T11's spinous process (down to T12's pedicles) goes to T12, the "
                   "fatty marrow (~115 HU) of T12's posterior body is left out, and "
                   "TotalSegmentator's own T11 at the field's top edge covers only the front "
                   "of the body")
def test_vertebrae_reach_dice_080_with_the_same_level_names(compared) -> None:
    for level, (ours, dice) in compared.items():
        assert dice >= 0.80 and ours == level
