"""Allowed entries derived from anatomy (issue 15, item 5): the skin farther than 20 mm from the
brain (face, ears) becomes a no-go structure and the safest-path search never enters through it.
On the head phantom the brain is carved back on the patient's right (as under an ear), so the
right-side skin over the deep right target is "ear"; without the zone the search picks entries
there, with it none."""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.phantoms import make_phantom
from surgiplan.simulation import PathSearchRequest, SimulationContext, load_simulator
from surgiplan.twin import Twin
from surgiplan.ui.plan.entry_regions import ZONE_NAME, add_face_zone, face_zone_mask

TARGET_LPS = (-28.0, 20.0, 42.0)  # the deep right lesion of the head phantom


@pytest.fixture(scope="module")
def head() -> Twin:
    volume, segmentation, _truth = make_phantom("head")
    return Twin(volume, segmentation)


def _entries(twin: Twin, no_go: tuple[str, ...]) -> np.ndarray:
    sim = load_simulator("trajectory")
    request = PathSearchRequest(target_lps=TARGET_LPS, top_k=5, no_go_structures=no_go)
    result = sim.search(SimulationContext(twin), request, sim.spec.defaults())
    return np.array([c.entry_lps for c in result.candidates])


def _carve_brain_under(twin: Twin, point_lps: np.ndarray, radius_mm: float) -> None:
    """No brain within ``radius_mm`` of a skin point: the face/ear situation there."""
    brain = twin.segmentation.mask("brain")
    k, j, i = np.nonzero(brain)
    lps = twin.geometry.index_to_lps(np.stack([i, j, k], 1).astype(float))
    near = np.linalg.norm(lps - point_lps, axis=1) < radius_mm
    carved = brain.copy()
    carved[k[near], j[near], i[near]] = False
    twin.set_structure_mask("brain", carved)


def test_face_and_ear_zone_from_anatomy_keeps_the_search_off_them(head):
    free = _entries(head, ())
    assert len(free)
    _carve_brain_under(head, free[0], 45.0)  # the best way in now runs under an "ear"
    mask = face_zone_mask(head)
    assert mask.any() and not (mask & ~head.segmentation.mask("scalp")).any()
    name = add_face_zone(head, mask)
    assert name == ZONE_NAME and head.voxel_count(name) == int(mask.sum())
    zone_distance = SimulationContext(head).distance_map(name)

    def in_zone(points: np.ndarray) -> np.ndarray:
        idx = np.round(head.geometry.lps_to_index(points)).astype(int)[:, ::-1]
        return zone_distance[tuple(idx.T)] <= 1.0

    assert in_zone(free[:1]).all()  # without the zone the search would enter there
    kept = _entries(head, (name,))
    assert len(kept) and not in_zone(kept).any()
