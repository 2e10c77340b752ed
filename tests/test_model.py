"""The core model: grid geometry in LPS mm, structures in layers, twin events and caches."""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.errors import BadInputError
from surgiplan.model import ImageGeometry, ImageVolume, Role, Segmentation
from surgiplan.model.geometry import orientation_letters
from surgiplan.twin import Twin


def _rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    a, b = [i for i in range(3) if i != axis]
    r = np.eye(3)
    r[a, a], r[a, b], r[b, a], r[b, b] = c, -s, s, c
    return r


@pytest.fixture
def oblique_grid() -> ImageGeometry:
    return ImageGeometry((20, 30, 10), (0.8, 0.9, 2.5), (-12.0, 40.0, 7.5), _rotation(0, 20))


def test_index_lps_round_trip_on_oblique_anisotropic_grid(oblique_grid):
    ijk = np.random.default_rng(0).uniform(-1, 25, size=(50, 3))
    back = oblique_grid.lps_to_index(oblique_grid.index_to_lps(ijk))
    np.testing.assert_allclose(back, ijk, atol=1e-9)


def test_index_to_lps_follows_direction_columns(oblique_grid):
    g = oblique_grid
    step_k = g.index_to_lps([0, 0, 1]) - g.index_to_lps([0, 0, 0])
    np.testing.assert_allclose(step_k, g.direction[:, 2] * 2.5, atol=1e-12)
    np.testing.assert_allclose(g.index_to_lps([0, 0, 0]), g.origin_lps)


def test_geometry_json_round_trip_and_equality(oblique_grid):
    again = ImageGeometry.from_json(oblique_grid.to_json())
    assert again == oblique_grid
    assert again.same_grid(oblique_grid)
    shifted = ImageGeometry(again.size, again.spacing_mm, (-12.0, 40.0, 7.6), again.direction)
    assert not shifted.same_grid(oblique_grid)


def test_geometry_rejects_invalid_values():
    with pytest.raises(ValueError):
        ImageGeometry((10, 10, 0), (1, 1, 1), (0, 0, 0))
    with pytest.raises(ValueError):
        ImageGeometry((10, 10, 10), (1, -1, 1), (0, 0, 0))
    with pytest.raises(ValueError):
        ImageGeometry((10, 10, 10), (1, 1, 1), (0, 0, 0), np.diag([1.0, 2.0, 1.0]))


def test_sitk_bridge_keeps_geometry(oblique_grid):
    arr = np.arange(np.prod(oblique_grid.shape_zyx), dtype=np.int16).reshape(oblique_grid.shape_zyx)
    img = oblique_grid.to_sitk(arr)
    assert ImageGeometry.from_sitk(img) == oblique_grid
    # SimpleITK's own index->physical agrees with ours
    p = img.TransformContinuousIndexToPhysicalPoint((3.0, 4.0, 5.0))
    np.testing.assert_allclose(p, oblique_grid.index_to_lps([3, 4, 5]), atol=1e-9)


def test_bounds_and_containment():
    g = ImageGeometry((10, 10, 10), (1, 1, 2), (0, 0, 0))
    np.testing.assert_allclose(g.bounds_lps(), [[-0.5, -0.5, -1.0], [9.5, 9.5, 19.0]])
    assert g.contains_lps([[0, 0, 0], [9.4, 9.4, 18.9]]).all()
    assert not g.contains_lps([9.6, 0, 0])


def test_orientation_letters():
    assert orientation_letters((0, 0, 1)) == "S"
    assert orientation_letters((-1, 0, 0)) == "R"
    assert orientation_letters((0.7, -0.71, 0)) == "AL"


def _sphere_mask(g: ImageGeometry, centre, radius) -> np.ndarray:
    k, j, i = np.indices(g.shape_zyx)
    pts = g.index_to_lps(np.stack([i, j, k], axis=-1))
    return np.linalg.norm(pts - np.asarray(centre), axis=-1) <= radius


def test_segmentation_layers_for_overlapping_structures():
    g = ImageGeometry((30, 30, 30), (1, 1, 1), (0, 0, 0))
    seg = Segmentation(geometry=g)
    brain = seg.add("brain", _sphere_mask(g, (15, 15, 15), 12), role="organ")
    tumour = seg.add("tumour", _sphere_mask(g, (15, 15, 15), 4), role="target", margin_mm=5)
    vessel = seg.add("vessel", _sphere_mask(g, (15, 15, 24), 2), role=Role.CRITICAL)
    assert (brain.layer, tumour.layer, vessel.layer) == (0, 1, 1)
    assert seg.mask("brain").sum() == _sphere_mask(g, (15, 15, 15), 12).sum()
    assert seg.volume_ml("tumour") == pytest.approx(seg.voxel_count("tumour") / 1000.0)
    assert [s.name for s in seg.by_role("target")] == ["tumour"]
    seg.remove("tumour")
    assert seg.names() == ["brain", "vessel"]
    with pytest.raises(BadInputError):
        seg.add("bad", np.zeros((3, 3, 3), bool))


def test_set_mask_moves_layer_when_it_would_overlap():
    g = ImageGeometry((20, 20, 20), (1, 1, 1), (0, 0, 0))
    seg = Segmentation(geometry=g)
    seg.add("a", _sphere_mask(g, (5, 5, 5), 3))
    seg.add("b", _sphere_mask(g, (14, 14, 14), 3))
    grown = _sphere_mask(g, (10, 10, 10), 9)  # now overlaps "a"
    seg.set_mask("b", grown)
    np.testing.assert_array_equal(seg.mask("b"), grown)
    np.testing.assert_array_equal(seg.mask("a"), _sphere_mask(g, (5, 5, 5), 3))


def test_from_labelmap_names_and_unknown_labels():
    g = ImageGeometry((4, 4, 4), (1, 1, 1), (0, 0, 0))
    lab = np.zeros(g.shape_zyx, np.int32)
    lab[0, 0, 0], lab[1, 1, 1] = 1, 7
    seg = Segmentation.from_labelmap(lab, g, {1: {"name": "skull", "role": "bone"}})
    assert seg.names() == ["skull", "label_7"]
    assert seg.get("skull").role is Role.BONE
    with pytest.raises(BadInputError):
        Segmentation.from_labelmap(-lab, g)


def test_twin_emits_events_and_invalidates_only_the_edited_structure(monkeypatch):
    g = ImageGeometry((20, 20, 20), (1, 1, 1), (0, 0, 0))
    twin = Twin(ImageVolume(np.zeros(g.shape_zyx, np.int16), g, modality="CT"))
    seen = []
    twin.events.connect(lambda event, **kw: seen.append((event, kw.get("name"))))
    twin.add_structure("a", _sphere_mask(g, (5, 5, 5), 3), role="critical")
    twin.add_structure("b", _sphere_mask(g, (14, 14, 14), 3), role="target")
    calls = []

    def fake_sdm(mask, geometry, **_):  # count computations, keep real semantics irrelevant
        calls.append(int(mask.sum()))
        return np.zeros(geometry.shape_zyx, np.float32)

    import surgiplan.processing.distance as distance

    monkeypatch.setattr(distance, "signed_distance_map", fake_sdm)
    twin.signed_distance_mm("a")
    twin.signed_distance_mm("b")
    twin.signed_distance_mm("a")
    assert len(calls) == 2
    twin.set_structure_mask("b", _sphere_mask(g, (14, 14, 14), 4))
    twin.signed_distance_mm("a")
    twin.signed_distance_mm("b")
    assert len(calls) == 3
    twin.set_structure_properties("a", margin_mm=3.0, role="bone")
    assert twin.structure("a").role is Role.BONE
    assert ("structure_added", "a") in seen and ("structure_changed", "b") in seen
    assert ("structure_properties_changed", "a") in seen
    assert twin.image.units == "HU"
