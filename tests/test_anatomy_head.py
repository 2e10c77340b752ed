"""Head MR planning preset on the real T1 MPRAGE (issue 16 item 3): ventricles, orbits, face and
ears, checked as an anatomist would (volumes, inside the brain, sides, positions), and the
safest-path search to a deep target never entering a no-go region (slow: SURGIPLAN_SLOW=1).
"""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.io.twin_build import load_image
from surgiplan.model.structures import Role
from surgiplan.segmentation.presets import preset_masks
from tests.conftest import real_scan

NO_GO = ("orbit left", "orbit right", "face", "ears")


@pytest.fixture(scope="module")
def head_case():
    volume = load_image(real_scan("head-mr-t1-mprage"))
    return volume, {p.name: p for p in preset_masks(volume, "mr-head-planning")}


def _ml(mask: np.ndarray, geometry) -> float:
    return float(mask.sum() * geometry.voxel_volume_mm3 / 1000.0)


def _centre(mask: np.ndarray, geometry) -> np.ndarray:
    return geometry.index_to_lps(np.argwhere(mask)[:, ::-1].mean(axis=0))


def test_ventricles_are_critical_inside_the_brain_with_an_adult_volume(head_case) -> None:
    volume, found = head_case
    g = volume.geometry
    ventricles = found["ventricles"]
    assert ventricles.role == Role.CRITICAL
    ml = _ml(ventricles.mask, g)
    assert 5.0 <= ml <= 60.0, ml  # adult lateral + third ventricles; measured 12 ml
    brain = found["brain"].mask
    assert (ventricles.mask & brain).sum() >= 0.6 * ventricles.mask.sum()
    head_centre = _centre(found["head"].mask, g)
    assert abs(_centre(ventricles.mask, g)[0] - head_centre[0]) < 10.0  # on the mid-line


def test_orbits_face_and_ears_are_found_where_they_belong(head_case) -> None:
    volume, found = head_case
    g = volume.geometry
    head = found["head"].mask
    centre = _centre(head, g)
    for name in NO_GO:
        assert found[name].role == Role.CRITICAL and found[name].mask.any(), name
        assert not (found[name].mask & ~head).any()
    left, right = _centre(found["orbit left"].mask, g), _centre(found["orbit right"].mask, g)
    assert left[0] - centre[0] > 15.0 and centre[0] - right[0] > 15.0  # LPS x: + = left
    assert 50.0 <= left[0] - right[0] <= 80.0  # inter-orbital distance, adult ~60-65 mm
    for orbit in (left, right):
        assert orbit[1] < centre[1] - 50.0  # LPS y: - = anterior
    for name in ("orbit left", "orbit right"):
        assert 10.0 <= _ml(found[name].mask, g) <= 45.0  # globe 6 ml + orbital fat
    face = _centre(found["face"].mask, g)
    assert face[1] < centre[1] - 40.0 and face[2] < left[2]  # in front and below the eyes
    ventricles = _centre(found["ventricles"].mask, g)
    assert ventricles[2] > left[2] + 10.0  # the ventricles lie above the orbits


@pytest.mark.slow
def test_safest_path_to_a_deep_target_never_enters_a_no_go_region(head_case) -> None:
    from surgiplan.model.structures import Segmentation
    from surgiplan.simulation import PathSearchRequest, SimulationContext, load_simulator
    from surgiplan.twin import Twin

    volume, found = head_case
    g = volume.geometry
    twin = Twin(volume, Segmentation(geometry=g))
    for p in found.values():
        twin.add_structure(p.name, p.mask, role=p.role)
    # a deep target: the left thalamus, 12 mm left of and 8 mm below the ventricles' centre
    target = _centre(found["ventricles"].mask, g) + np.array([12.0, 0.0, -8.0])
    sim = load_simulator("trajectory")
    result = sim.search(SimulationContext(twin),
                        PathSearchRequest(target_lps=tuple(target), top_k=5),
                        sim.spec.defaults())
    assert result.candidates
    no_go = np.zeros(g.shape_zyx, bool)
    for name in NO_GO:
        no_go |= found[name].mask
    for c in result.candidates:
        entry, tip = np.asarray(c.entry_lps), np.asarray(c.target_lps)
        points = entry + np.linspace(0.0, 1.0, 300)[:, None] * (tip - entry)
        idx = np.rint(g.lps_to_index(points)).astype(int)[:, ::-1]
        assert not no_go[tuple(idx.T)].any(), c.entry_lps
