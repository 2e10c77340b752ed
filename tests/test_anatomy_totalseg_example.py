"""Our spine segmentation against TotalSegmentator's own labels on its real example CT.

The example (../shared/scans/totalsegmentator-example) is 20 JPEG 2000 slices of the upper
abdomen with TotalSegmentator's v2 multi-label output, imported with the project's importers.
"""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.io.twin_build import build_twin
from surgiplan.segmentation.presets import preset_masks
from surgiplan.segmentation.spine import segment_spine
from surgiplan.segmentation.threshold import body_mask
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
    assert compared["T12"][1] >= 0.65  # measured 0.69 (was 0.63; see the xfail below)
    assert compared["T11"][1] >= 0.35  # measured 0.38 (was 0.33), body cut by the field


def test_vertebra_level_names_agree(compared) -> None:
    """No sacrum in these 20 slices: the levels come from the last rib-bearing vertebra
    (the 11th ribs pass 60-115 mm beside the canal at T12)."""
    for level, (ours, _dice) in compared.items():
        assert ours == level


def _wholly_in_view(example, compared) -> set[str]:
    """The reference vertebrae whose body lies wholly in view: a disc found in the field both
    below and above the reference label's largest axial cross-section, its body's level
    (``SpineResult.discs``; a disc at the field's first or last slices counts). A body cut
    by the field's edge has no disc on that side, and neither we nor TotalSegmentator see
    all of it (its T11 here covers only the front of the body's lowest slices)."""
    twin, _ours = example
    image, geometry = twin.image.array, twin.image.geometry
    discs = segment_spine(image, geometry, body_mask(image, geometry)).discs
    out = set()
    for level in compared:
        ref = np.asarray(twin.segmentation.mask(f"vertebrae_{level}"))
        k = int(np.argmax(ref.sum(axis=(1, 2))))
        if any(b < k for _a, b in discs) and any(a > k for a, _b in discs):
            out.add(level)
    return out


def test_the_dice_goal_covers_the_vertebrae_wholly_in_view(example, compared) -> None:
    """Discs at slices 0-2 and 15-17: T12 (largest section at slice 4) is wholly in view;
    T11's body (slice 19, the last) is cut by the top of the field."""
    assert _wholly_in_view(example, compared) == {"T12"}


@pytest.mark.xfail(strict=True, reason="issue 16 acceptance not reached for T12: Dice 0.69 "
                   "(goal 0.80; was 0.63): the split now follows the disc (the body centre's "
                   "darkest slices, 15-17) and the fatty marrow is filled, but behind the body's "
                   "front our T12 holds 7.6 ml the reference leaves out (rib heads, costal "
                   "facets, a voxel more rim) and 4.0 ml of T11's arch (its laminae and "
                   "spinous process reach down beside T12's); the reference itself labels a "
                   "3 ml patch inside T12's body as T11")
def test_vertebrae_wholly_in_view_reach_dice_080_with_the_same_level_names(example,
                                                                            compared) -> None:
    for level in _wholly_in_view(example, compared):
        ours, dice = compared[level]
        assert dice >= 0.80 and ours == level
