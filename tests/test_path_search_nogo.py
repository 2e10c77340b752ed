"""The safest-path search honours no-go zones (issue 15, item 5) on the head phantom: an
orbit-like structure the path must not cross and a sphere drawn over the skin where no entry
may lie; a thin critical set is reported; bad zones are refused with one line."""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.errors import BadInputError
from surgiplan.model.structures import Role
from surgiplan.simulation import PathSearchRequest, SimulationContext, load_simulator
from surgiplan.twin import Twin
from tests.conftest import shared_phantom
from tests.ui.conftest import make_twin

TUMOUR_LPS = (-28.0, 20.0, 42.0)
ORBIT_RADIUS_MM = 12.0
NO_GO_RADIUS_MM = 25.0


@pytest.fixture(scope="module")
def head():
    volume, segmentation, _truth = shared_phantom("head")
    return Twin(volume, segmentation)


def axis_points(c, n: int = 400) -> np.ndarray:
    entry, target = np.asarray(c.entry_lps), np.asarray(c.target_lps)
    return entry + np.linspace(0.0, 1.0, n)[:, None] * (target - entry)


def test_search_avoids_an_orbit_and_a_drawn_no_go_sphere(head):
    sim = load_simulator("trajectory")
    params = sim.spec.defaults()
    base = sim.search(SimulationContext(head), PathSearchRequest(target_lps=TUMOUR_LPS,
                                                                 top_k=5), params)
    assert base.candidates and base.rejected["no_go"] == 0
    best = base.candidates[0]
    # an orbit-like ball on the best path, a third of the way in from the skin
    orbit_centre = axis_points(best, 4)[1]
    geo = head.geometry
    k, j, i = np.indices(geo.shape_zyx)
    lps = geo.index_to_lps(np.stack([i, j, k], axis=-1).astype(float))
    orbit = np.linalg.norm(lps - orbit_centre, axis=-1) <= ORBIT_RADIUS_MM
    head.add_structure("orbit", orbit & ~head.segmentation.mask("tumour"), role=Role.OTHER)
    sphere = (*base.candidates[1].entry_lps, NO_GO_RADIUS_MM)  # drawn over the runner-up
    request = PathSearchRequest(target_lps=TUMOUR_LPS, top_k=5, no_go_structures=("orbit",),
                                no_go_spheres_lps=(sphere,))
    result = sim.search(SimulationContext(head), request, params)
    assert result.rejected["no_go"] > 0 and result.candidates
    radius = request.diameter_mm / 2.0
    for c in result.candidates:
        assert np.linalg.norm(np.asarray(c.entry_lps) - sphere[:3]) > NO_GO_RADIUS_MM
        nearest = np.linalg.norm(axis_points(c) - orbit_centre, axis=1).min()
        assert nearest > ORBIT_RADIUS_MM + radius - 1.0  # within a voxel of the ball's edge
    assert result.warnings == []  # the head phantom has three critical structures


def test_thin_critical_set_warns_and_bad_zones_are_refused(head):
    from surgiplan_trajectory.search import thin_critical_warning

    warning = thin_critical_warning(SimulationContext(make_twin()))
    assert warning and "only 0 critical structure(s)" in warning[0]
    with pytest.raises(BadInputError, match="no-go sphere"):
        PathSearchRequest(target_lps=TUMOUR_LPS, no_go_spheres_lps=((0.0, 0.0, 0.0, -1.0),))
    sim = load_simulator("trajectory")
    with pytest.raises(BadInputError, match="no-go structure 'eyebrow' is not in the case"):
        sim.search(SimulationContext(head), PathSearchRequest(
            target_lps=TUMOUR_LPS, no_go_structures=("eyebrow",)), sim.spec.defaults())
