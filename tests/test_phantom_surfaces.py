"""Issue acceptance: phantom surfaces agree with the analytic description within half a voxel.

Every vertex of the smoothed surface of every structure the phantom marks as exact lies within
half a voxel diagonal of the analytic shape (its exact signed distance, from truth.json).
"""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.phantoms.generate import PHANTOM_NAMES
from surgiplan.processing.surfaces import structure_surfaces
from tests.conftest import shared_phantom


@pytest.mark.parametrize("name", PHANTOM_NAMES)
def test_exact_structure_surfaces_lie_within_half_a_voxel_of_the_truth(name):
    volume, segmentation, truth = shared_phantom(name, seed=0)
    exact = [s.name for s in truth.exact_structures()]
    assert exact, "the phantom must have exact structures to verify against"
    half_diagonal_mm = 0.5 * float(np.linalg.norm(volume.geometry.spacing_mm))
    meshes = structure_surfaces(segmentation, names=exact)
    for structure in exact:
        mesh = meshes[structure]
        assert mesh.n_triangles > 100, structure
        distance_mm = np.abs(truth.signed_distance_mm(structure, mesh.vertices_lps))
        assert distance_mm.max() <= half_diagonal_mm, (
            f"{name}/{structure}: a vertex is {distance_mm.max():.3f} mm from the analytic "
            f"surface (limit {half_diagonal_mm:.3f} mm)")
        # and centred on the true surface, not merely inside the tolerance
        assert np.median(distance_mm) < 0.5 * half_diagonal_mm, structure
