"""The ct-liver preset's structures on real contrast CTs (issue 16 item 2): liver, hepatic and
portal veins, spleen, kidneys, gallbladder, aorta, inferior vena cava.

* Against TotalSegmentator's own labels on its real example CT (Dice, overlaps).
* On the abdomen CT (no reference there): checks an anatomist would make (volumes, sides,
  positions, the liver kept below the heart, no organ in a vessel structure), a lesion grown
  from one click checked against a hypodense sphere written into the real liver (its exact
  voxels are the truth), and an ablation and a resection planned on the segmented liver with
  that lesion as the target.

Each scan's structures come from one run of ``abdomen_structures`` (what the preset calls).
"""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.io.twin_build import build_twin, load_image
from surgiplan.model.structures import Role, Segmentation
from surgiplan.model.volume import ImageVolume
from surgiplan.processing.crop import bounding_box, pad_box, sub_geometry
from surgiplan.segmentation.abdomen import abdomen_structures
from surgiplan.segmentation.liver import lesion_from_seed
from surgiplan.segmentation.morphology import distance_to_mask_mm, grow_mask, shrink_mask
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
    return twin, _structures(image.array, image.geometry,
                             body_mask(image.array, image.geometry))


def _structures(image: np.ndarray, geometry, body: np.ndarray) -> dict[str, np.ndarray]:
    return {f.name: f.mask for f in abdomen_structures(image, geometry, body)}


VESSELS = ("aorta", "inferior vena cava", "hepatic veins", "portal veins", "liver vessels")
ORGANS = ("spleen", "left kidney", "right kidney", "gallbladder")


def test_liver_and_spleen_reach_dice_085_on_the_totalsegmentator_example(example) -> None:
    twin, ours = example  # measured: liver 0.95, spleen 0.94
    assert _dice(np.asarray(twin.segmentation.mask("liver")), ours["liver"]) >= 0.85
    assert _dice(np.asarray(twin.segmentation.mask("spleen")), ours["spleen"]) >= 0.85


def test_liver_vessels_lie_in_the_liver_and_not_in_the_vena_cava(example) -> None:
    twin, ours = example
    vessels = ours["liver vessels"]
    assert vessels.any() and not (vessels & ~ours["liver"]).any()
    ivc = np.asarray(twin.segmentation.mask("inferior_vena_cava"))
    assert (vessels & ivc).sum() <= 0.05 * vessels.sum()


def test_no_vessel_structure_holds_totalsegmentators_spleen_on_the_example(example) -> None:
    """Issue 16 acceptance, against an independent spleen (TotalSegmentator's); the example
    shows no kidney and no gallbladder (TotalSegmentator labels neither), nor do we."""
    twin, ours = example
    spleen = np.asarray(twin.segmentation.mask("spleen"))
    for name in VESSELS:
        if name in ours:
            assert not (ours[name] & spleen).any(), name
    assert not {"left kidney", "right kidney", "gallbladder"} & set(ours)


def test_portal_veins_hold_totalsegmentators_portal_vein_on_the_example(example) -> None:
    """TotalSegmentator's portal vein (where it runs in our liver mask, at the hilum): >= 50 %
    in our portal veins (measured 66 %), <= 5 % in our hepatic veins (measured 2 %). No IVC is
    proposed here: its only enhancing track never leaves the liver, so it is another vessel
    (it was the portal vein, Dice 0 against TotalSegmentator's IVC)."""
    twin, ours = example
    portal_ref = np.asarray(twin.segmentation.mask("portal_vein_and_splenic_vein")) & ours["liver"]
    assert portal_ref.sum() > 1000
    assert (portal_ref & ours["portal veins"]).sum() >= 0.5 * portal_ref.sum()
    assert (portal_ref & ours["hepatic veins"]).sum() <= 0.05 * portal_ref.sum()
    assert "inferior vena cava" not in ours


@pytest.fixture(scope="module")
def abdomen():
    volume = load_image(real_scan("abdomen-ct-contrast"))
    body = body_mask(volume.array, volume.geometry)
    return volume, _structures(volume.array, volume.geometry, body), body


def _ml(mask: np.ndarray, geometry) -> float:
    return float(mask.sum() * geometry.voxel_volume_mm3 / 1000.0)


def _centre_lps(mask: np.ndarray, geometry) -> np.ndarray:
    return geometry.index_to_lps(np.argwhere(mask)[:, ::-1].mean(axis=0))


def test_abdomen_liver_and_spleen_are_plausible(abdomen) -> None:
    """Adult volumes (liver 1.0-2.2 l, measured 1.57 l; spleen 80-400 ml, measured 158 ml), the
    liver on the patient's right, the spleen on the left and behind it, no shared voxel."""
    volume, ours, body_mask_ = abdomen
    g = volume.geometry
    assert 1000.0 <= _ml(ours["liver"], g) <= 2200.0  # measured 1.44 l
    assert 80.0 <= _ml(ours["spleen"], g) <= 400.0
    liver, spleen = _centre_lps(ours["liver"], g), _centre_lps(ours["spleen"], g)
    body = _centre_lps(body_mask_, g)
    assert liver[0] < body[0] - 30.0 < body[0] + 30.0 < spleen[0]  # LPS x: + = left
    assert spleen[1] > liver[1]  # LPS y: + = posterior
    assert not (ours["liver"] & ours["spleen"]).any()
    assert 10.0 <= _ml(ours["liver vessels"], g) <= 200.0  # measured 115 ml


def test_abdomen_kidneys_and_gallbladder_are_plausible(abdomen) -> None:
    """Each kidney 80-300 ml (measured left 156, right 120: a cyst in its lower half), on its
    side beside the spine and behind the liver's centre; the gallbladder 10-150 ml (measured
    75 ml) on the right, below the liver's centre and in front of the right kidney."""
    volume, ours, body_mask_ = abdomen
    g = volume.geometry
    body, liver = _centre_lps(body_mask_, g), _centre_lps(ours["liver"], g)
    left, right = _centre_lps(ours["left kidney"], g), _centre_lps(ours["right kidney"], g)
    for name in ("left kidney", "right kidney"):
        assert 80.0 <= _ml(ours[name], g) <= 300.0, name
    assert right[0] < body[0] - 30.0 < body[0] + 30.0 < left[0]
    assert min(left[1], right[1]) > liver[1] + 20.0
    gall = _centre_lps(ours["gallbladder"], g)
    assert 10.0 <= _ml(ours["gallbladder"], g) <= 150.0
    assert gall[0] < body[0] and gall[2] < liver[2] and gall[1] < right[1]
    masks = [ours[n] for n in ("liver", *ORGANS)]
    for a in range(len(masks)):
        for b in range(a + 1, len(masks)):
            assert not (masks[a] & masks[b]).any()


def test_kidneys_and_spleen_are_not_in_any_vessel_structure(abdomen) -> None:
    """Issue 16 acceptance on the abdomen CT (the old CT preset's "vessels" held them)."""
    _volume, ours, _body = abdomen
    found = [n for n in VESSELS if n in ours]
    assert {"aorta", "inferior vena cava", "hepatic veins", "portal veins"} <= set(found)
    for vessel in found:
        for organ in ORGANS:
            assert not (ours[vessel] & ours[organ]).any(), (vessel, organ)


@pytest.fixture(scope="module")
def heart_distance_mm(abdomen) -> tuple[int, np.ndarray]:
    """(first slice k0, distance in mm to the heart's chambers for the slices from k0 up): the
    chambers found apart from the preset, >= 180 HU in the scan's top quarter (the chest; k
    runs toward S on this scan), the largest island after a 5 mm erosion, grown back within
    the blood."""
    from scipy import ndimage

    volume, _ours, body = abdomen
    g = volume.geometry
    k0 = int(0.5 * volume.array.shape[0])
    top = volume.array[k0:]
    blood = (top >= 180) & (top < 600) & body[k0:]
    blood[: int(0.75 * volume.array.shape[0]) - k0] = False
    labels, _n = ndimage.label(shrink_mask(blood, g, 5.0))
    largest = labels == np.bincount(labels.ravel())[1:].argmax() + 1
    heart = grow_mask(largest, g, 5.0) & blood
    assert 100.0 <= _ml(heart, g) <= 600.0
    return k0, distance_to_mask_mm(heart, g.spacing_mm[::-1])


def test_liver_stays_below_the_heart(abdomen, heart_distance_mm) -> None:
    """The liver dome touches the heart's inferior wall through the thin diaphragm with the same
    HU: liver within 20 mm of the heart's blood <= 25 ml (measured 14.6 ml; 49.5 ml when it
    grew ~140 ml into the heart's wall), and none within 5 mm (the wall's inner half)."""
    volume, ours, _body = abdomen
    g = volume.geometry
    k0, near = heart_distance_mm
    liver = ours["liver"][k0:]
    assert _ml(liver & (near <= 20.0), g) <= 25.0
    assert _ml(liver & (near <= 5.0), g) <= 0.5


def test_inferior_vena_cava_runs_from_the_kidneys_up_to_the_heart(abdomen,
                                                                  heart_distance_mm) -> None:
    """The IVC, tracked where it enhances and carried up behind the liver where it does not:
    one unbroken column of cross-sections from below the kidneys' lower poles to within 35 mm
    of the heart's blood (measured 31 mm; it stopped 100 mm below the heart before it was
    carried), each 150-800 mm2, on the patient's right of the aorta in every shared slice."""
    volume, ours, _body = abdomen
    g = volume.geometry
    ivc, aorta = ours["inferior vena cava"], ours["aorta"]
    ks = np.flatnonzero(ivc.any(axis=(1, 2)))
    assert np.all(np.diff(ks) == 1)
    kidneys = np.flatnonzero((ours["left kidney"] | ours["right kidney"]).any(axis=(1, 2)))
    assert ks[0] <= kidneys[0]
    k0, near = heart_distance_mm
    assert ks[-1] >= k0 and near[ks[-1] - k0][ivc[ks[-1]]].min() <= 35.0
    area = ivc.sum(axis=(1, 2))[ks] * g.spacing_mm[0] * g.spacing_mm[1]
    assert area.min() >= 150.0 and area.max() <= 800.0
    for k in np.intersect1d(ks, np.flatnonzero(aorta.any(axis=(1, 2)))):
        x_ivc = g.index_to_lps(np.array([np.argwhere(ivc[k])[:, 1].mean(), 0.0, k]))[0]
        x_aorta = g.index_to_lps(np.array([np.argwhere(aorta[k])[:, 1].mean(), 0.0, k]))[0]
        assert x_ivc < x_aorta  # LPS x: + = patient's left


def test_hepatic_and_portal_veins_are_apart_inside_the_liver(abdomen) -> None:
    """Both found (>= 5 ml), inside the liver, disjoint; the hepatic veins drain toward the dome
    (their centre >= 10 mm above the portal veins' one; measured 26 mm)."""
    volume, ours, _body = abdomen
    g = volume.geometry
    hepatic, portal = ours["hepatic veins"], ours["portal veins"]
    assert _ml(hepatic, g) >= 5.0 and _ml(portal, g) >= 5.0
    assert not (hepatic & ~ours["liver"]).any() and not (portal & ~ours["liver"]).any()
    assert not (hepatic & portal).any()
    assert _centre_lps(hepatic, g)[2] >= _centre_lps(portal, g)[2] + 10.0


def _with_lesion(volume: ImageVolume, liver: np.ndarray, vessels: np.ndarray,
                 radius_mm: float = 10.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    image, sphere, centre = _with_lesion(volume, ours["liver"], ours["liver vessels"])
    lesion = lesion_from_seed(image, volume.geometry, ours["liver"], centre)
    return image, sphere, centre, lesion


def test_lesion_from_one_click_matches_the_written_sphere(abdomen, lesion_case) -> None:
    _image, sphere, _centre, lesion = lesion_case
    assert _dice(sphere, lesion) >= 0.8  # a 10 mm sphere on 1.07 x 1.07 x 3 mm voxels


def test_lesion_seed_outside_the_liver_is_refused(abdomen) -> None:
    from surgiplan.errors import BadInputError

    volume, ours, _body = abdomen
    outside = volume.geometry.index_to_lps(np.array([5.0, 5.0, 5.0]))
    with pytest.raises(BadInputError, match="not inside the organ"):
        lesion_from_seed(volume.array, volume.geometry, ours["liver"], outside)


@pytest.fixture(scope="module")
def planned_twin(abdomen, lesion_case) -> Twin:
    """The segmented liver, its vessels and the grown lesion on the CT cropped around the liver
    (the plans need nothing else)."""
    volume, ours, _body = abdomen
    image, _sphere, _centre, lesion = lesion_case
    box = pad_box(bounding_box(ours["liver"]), (3, 10, 10), image.shape)
    geometry = sub_geometry(volume.geometry, box)
    crop = ImageVolume(np.ascontiguousarray(image[box]), geometry, modality="CT")
    twin = Twin(crop, Segmentation(geometry=geometry))
    twin.add_structure("liver", ours["liver"][box] | lesion[box], role=Role.ORGAN)
    twin.add_structure("lesion", lesion[box], role=Role.TARGET)
    for name in ("hepatic veins", "portal veins"):
        twin.add_structure(name, ours[name][box] & ~lesion[box], role=Role.CRITICAL)
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
    margin = ablation.metric("min_margin_mm").value  # a 34 mm zone on a 20 mm lesion
    assert 0.0 < margin < 12.0
    resection = run_simulation(
        load_simulator("resection"), context,
        ResectionInput(organ_structure="liver", target_structure="lesion", margin_mm=10.0),
        parameters={"display_meshes": False}, uncertainty=UncertaintyModel(samples=0))
    assert resection.ok, resection.error
    remnant = resection.metric("remnant_pct").value
    assert 80.0 < remnant < 100.0  # a small specimen out of a 1.5 l liver


def test_generic_ct_presets_vessels_hold_no_kidney_or_spleen(abdomen) -> None:
    """Issue 16 acceptance for the ``ct-bone-skin-vessels`` preset (its bone and vessel steps,
    run on the slices of the kidneys and spleen to keep CI fast): at most 3 % of each of our
    kidney and spleen masks lies in its "vessels" (measured on the whole scan: spleen 2.1 %,
    left kidney 0.0 %, right kidney 2.0 %; before the thick-organ cut 79, 66 and 67 %), while
    the aorta's lumen stays in it."""
    from surgiplan.segmentation.presets import ct_bone_mask, ct_vessel_mask

    volume, ours, body = abdomen
    organs = {n: ours[n] for n in ("spleen", "left kidney", "right kidney")}
    span = np.flatnonzero(np.any([m.any(axis=(1, 2)) for m in organs.values()], axis=0))
    nz, ny, nx = body.shape
    ks = slice(max(0, span[0] - 3), min(nz, span[-1] + 4))
    image = volume.array[ks]
    geometry = sub_geometry(volume.geometry, (ks, slice(0, ny), slice(0, nx)))
    vessels = ct_vessel_mask(image, geometry, body[ks], ct_bone_mask(image, geometry, body[ks]))
    for name, mask in organs.items():
        assert (vessels & mask[ks]).sum() <= 0.03 * mask.sum(), name
    lumen = ours["aorta"][ks] & (image >= 200)
    assert (vessels & lumen).sum() >= 0.8 * lumen.sum()


def test_liver_step_on_fewer_than_four_slices_says_what_it_needs() -> None:
    """A 3-slice CT (like ../shared/scans/liver-ct-3slice-seg): one clear line, no traceback
    from SimpleITK's recursive Gaussian."""
    from surgiplan.errors import BadInputError
    from surgiplan.model.geometry import ImageGeometry
    from surgiplan.segmentation.liver import segment_abdomen

    geometry = ImageGeometry((40, 40, 3), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    image = np.full((3, 40, 40), 100, np.int16)
    with pytest.raises(BadInputError, match="at least 4 axial slices, the image has 3"):
        segment_abdomen(image, geometry, np.ones(image.shape, bool))


def test_liver_in_a_crop_of_the_upper_liver_agrees_with_the_whole_scans(abdomen) -> None:
    """Slices 84-112 (the crop tests/ui/test_rehearse_real_ct.py's CI variant uses): the seed
    lands on the bottom slice and the heart's chambers fall apart once eroded; the liver found
    in the crop matches the whole scan's liver there (measured Dice 0.987, 1199 vs 1190 ml;
    before: 0.921, 1393 ml with the heart's wall)."""
    import dataclasses

    from surgiplan.segmentation.liver import segment_abdomen

    volume, ours, _body = abdomen
    box = (slice(84, 112), slice(0, volume.array.shape[1]), slice(0, volume.array.shape[2]))
    crop = dataclasses.replace(volume, array=np.ascontiguousarray(volume.array[box]),
                               geometry=sub_geometry(volume.geometry, box))
    found = segment_abdomen(crop.array, crop.geometry, body_mask(crop.array, crop.geometry),
                            with_spleen=False, with_vessels=False).liver.mask
    assert _dice(found, ours["liver"][box]) >= 0.95
