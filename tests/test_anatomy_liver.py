"""Liver, its vessels and the spleen on real contrast CTs (issue 16 item 2).

* Against TotalSegmentator's own labels on its real example CT (Dice).
* On the abdomen CT (no reference there): checks an anatomist would make (volumes, sides,
  positions), a lesion grown from one click checked against a hypodense sphere written into the
  real liver (its exact voxels are the truth), and an ablation and a resection planned on the
  segmented liver with that lesion as the target.
"""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.io.twin_build import build_twin, load_image
from surgiplan.model.structures import Role, Segmentation
from surgiplan.model.volume import ImageVolume
from surgiplan.processing.crop import bounding_box, pad_box, sub_geometry
from surgiplan.segmentation.liver import lesion_from_seed, segment_abdomen
from surgiplan.segmentation.morphology import distance_to_mask_mm, grow_mask
from surgiplan.segmentation.threshold import body_mask
from surgiplan.twin import Twin
from tests.conftest import real_scan


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))


@pytest.fixture(scope="module")
def example():
    folder = real_scan("totalsegmentator-example")
    twin = build_twin(folder / "dicom",
                      labels=[folder / "segmentation_totalsegmentator_v2.nii.gz"],
                      label_names="totalsegmentator-v2")
    image = twin.image
    return twin, segment_abdomen(image.array, image.geometry,
                                 body_mask(image.array, image.geometry))


def test_liver_and_spleen_reach_dice_085_on_the_totalsegmentator_example(example) -> None:
    twin, ours = example  # measured: liver 0.95, spleen 0.94
    assert _dice(np.asarray(twin.segmentation.mask("liver")), ours.liver.mask) >= 0.85
    assert _dice(np.asarray(twin.segmentation.mask("spleen")), ours.spleen.mask) >= 0.85


def test_liver_vessels_lie_in_the_liver_and_not_in_the_vena_cava(example) -> None:
    twin, ours = example
    assert ours.vessels.any() and not (ours.vessels & ~ours.liver.mask).any()
    ivc = np.asarray(twin.segmentation.mask("inferior_vena_cava"))
    assert (ours.vessels & ivc).sum() <= 0.05 * ours.vessels.sum()


@pytest.fixture(scope="module")
def abdomen():
    volume = load_image(real_scan("abdomen-ct-contrast"))
    body = body_mask(volume.array, volume.geometry)
    return volume, segment_abdomen(volume.array, volume.geometry, body), body


def _ml(mask: np.ndarray, geometry) -> float:
    return float(mask.sum() * geometry.voxel_volume_mm3 / 1000.0)


def _centre_lps(mask: np.ndarray, geometry) -> np.ndarray:
    return geometry.index_to_lps(np.argwhere(mask)[:, ::-1].mean(axis=0))


def test_abdomen_liver_and_spleen_are_plausible(abdomen) -> None:
    """Adult volumes (liver 1.0-2.2 l, measured 1.57 l; spleen 80-400 ml, measured 158 ml), the
    liver on the patient's right, the spleen on the left and behind it, no shared voxel."""
    volume, ours, body_mask_ = abdomen
    g = volume.geometry
    assert 1000.0 <= _ml(ours.liver.mask, g) <= 2200.0
    assert 80.0 <= _ml(ours.spleen.mask, g) <= 400.0
    liver, spleen = _centre_lps(ours.liver.mask, g), _centre_lps(ours.spleen.mask, g)
    body = _centre_lps(body_mask_, g)
    assert liver[0] < body[0] - 30.0 < body[0] + 30.0 < spleen[0]  # LPS x: + = left
    assert spleen[1] > liver[1]  # LPS y: + = posterior
    assert not (ours.liver.mask & ours.spleen.mask).any()
    assert 10.0 <= _ml(ours.vessels, g) <= 200.0  # measured 56 ml


def _with_lesion(volume: ImageVolume, liver: np.ndarray, vessels: np.ndarray,
                 radius_mm: float = 12.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image with a hypodense sphere written deep in the liver, the sphere, its centre LPS):
    60 HU darker than the parenchyma, the scan's own noise kept."""
    g = volume.geometry
    room = distance_to_mask_mm(~(liver & ~grow_mask(vessels, g, 3.0)), g.spacing_mm[::-1])
    centre = np.unravel_index(int(np.argmax(room)), room.shape)
    assert room[centre] > radius_mm + 5.0
    centre_lps = g.index_to_lps(np.array(centre[::-1], float))
    kk, jj, ii = np.indices(liver.shape, sparse=True)
    sz, sy, sx = g.spacing_mm[::-1]
    sphere = (((kk - centre[0]) * sz) ** 2 + ((jj - centre[1]) * sy) ** 2
              + ((ii - centre[2]) * sx) ** 2 <= radius_mm ** 2)
    image = volume.array.astype(np.int16, copy=True)
    image[sphere] -= 60
    return image, sphere, centre_lps


@pytest.fixture(scope="module")
def lesion_case(abdomen):
    volume, ours, _body = abdomen
    image, sphere, centre = _with_lesion(volume, ours.liver.mask, ours.vessels)
    lesion = lesion_from_seed(image, volume.geometry, ours.liver.mask, centre)
    return image, sphere, centre, lesion


def test_lesion_from_one_click_matches_the_written_sphere(abdomen, lesion_case) -> None:
    _image, sphere, _centre, lesion = lesion_case
    assert _dice(sphere, lesion) >= 0.8  # a 12 mm sphere on 1.07 x 1.07 x 3 mm voxels


def test_lesion_seed_outside_the_liver_is_refused(abdomen) -> None:
    from surgiplan.errors import BadInputError

    volume, ours, _body = abdomen
    outside = volume.geometry.index_to_lps(np.array([5.0, 5.0, 5.0]))
    with pytest.raises(BadInputError, match="not inside the organ"):
        lesion_from_seed(volume.array, volume.geometry, ours.liver.mask, outside)


@pytest.fixture(scope="module")
def planned_twin(abdomen, lesion_case) -> Twin:
    """The segmented liver, its vessels and the grown lesion on the CT cropped around the liver
    (the plans need nothing else)."""
    volume, ours, _body = abdomen
    image, _sphere, _centre, lesion = lesion_case
    box = pad_box(bounding_box(ours.liver.mask), (3, 10, 10), image.shape)
    geometry = sub_geometry(volume.geometry, box)
    crop = ImageVolume(np.ascontiguousarray(image[box]), geometry, modality="CT")
    twin = Twin(crop, Segmentation(geometry=geometry))
    twin.add_structure("liver", ours.liver.mask[box] | lesion[box], role=Role.ORGAN)
    twin.add_structure("lesion", lesion[box], role=Role.TARGET)
    twin.add_structure("liver vessels", ours.vessels[box] & ~lesion[box], role=Role.CRITICAL)
    return twin


def test_ablation_and_resection_run_on_the_segmented_liver(planned_twin, lesion_case) -> None:
    from surgiplan.simulation import (
        AblationInput,
        ResectionInput,
        SimulationContext,
        UncertaintyModel,
        load_simulator,
        run_simulation,
    )

    centre = np.asarray(lesion_case[2])
    context = SimulationContext(planned_twin)
    ablation = run_simulation(
        load_simulator("ablation"), context,
        AblationInput(device_id="custom", tip_lps=tuple(centre),
                      shaft_lps=tuple(centre + np.array([-60.0, 0.0, 0.0])),
                      settings={"long_mm": 40.0, "short_mm": 34.0}, target_structure="lesion"),
        parameters={"score_paths": False}, uncertainty=UncertaintyModel(samples=0))
    assert ablation.ok, ablation.error
    margin = ablation.metric("min_margin_mm").value  # a 34 mm zone on a 24 mm lesion
    assert 0.0 < margin < 12.0
    resection = run_simulation(
        load_simulator("resection"), context,
        ResectionInput(organ_structure="liver", target_structure="lesion", margin_mm=10.0),
        parameters={"display_meshes": False}, uncertainty=UncertaintyModel(samples=0))
    assert resection.ok, resection.error
    remnant = resection.metric("remnant_pct").value
    assert 80.0 < remnant < 100.0  # a small specimen out of a 1.5 l liver
