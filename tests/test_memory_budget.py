"""Memory budgets of distance maps (issue 11 item 8): a map is held only in its structure's
region of interest, agrees with the full-grid computation there, and is a conservative lower
bound beyond it."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import surgiplan.twin as twin_module
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.processing.distance import (
    sample_volume,
    signed_distance_map,
    signed_distance_roi_map,
)
from surgiplan.simulation.context import SimulationContext
from surgiplan.twin import Twin

SHAPE_ZYX = (120, 160, 140)
SPACING = (0.8, 0.7, 1.2)  # x, y, z mm (anisotropic on purpose)


def _grid() -> ImageGeometry:
    return ImageGeometry(SHAPE_ZYX[::-1], SPACING, (-50.0, -60.0, -70.0))


def _ball(geometry: ImageGeometry, centre_zyx=(40, 70, 90), radius_mm=5.0) -> np.ndarray:
    zz, yy, xx = np.indices(geometry.shape_zyx, sparse=True)
    sx, sy, sz = geometry.spacing_mm
    cz, cy, cx = centre_zyx
    return (((zz - cz) * sz) ** 2 + ((yy - cy) * sy) ** 2 + ((xx - cx) * sx) ** 2
            <= radius_mm ** 2)


@pytest.fixture(scope="module")
def maps():
    geometry = _grid()
    mask = _ball(geometry)
    return geometry, mask, signed_distance_roi_map(mask, geometry, margin_mm=10.0), \
        signed_distance_map(mask, geometry)


def test_roi_map_memory_is_bounded_by_its_region(maps):
    geometry, _, roi, _ = maps
    full_bytes = 4 * geometry.n_voxels
    assert roi.values.dtype == np.float32
    assert roi.nbytes < 0.10 * full_bytes, (roi.nbytes, full_bytes)
    assert roi.values.shape == tuple(s.stop - s.start for s in roi.region)


def test_roi_values_equal_the_full_grid_map_inside_the_region(maps):
    _, _, roi, full = maps
    np.testing.assert_allclose(roi.values, full[roi.region], rtol=0, atol=1e-5)


def test_roi_sampling_exact_near_and_a_lower_bound_far(maps):
    geometry, _, roi, full = maps
    rng = np.random.default_rng(3)
    lo_ijk = np.array([s.start for s in roi.region[::-1]]) - 3.0
    hi_ijk = np.array([s.stop for s in roi.region[::-1]]) + 2.0
    ijk = np.concatenate([
        rng.uniform(-0.5, np.asarray(geometry.size) - 0.5, size=(2000, 3)),
        rng.uniform(np.maximum(lo_ijk, -0.5), np.minimum(hi_ijk, np.asarray(geometry.size) - 0.5),
                    size=(2000, 3))])
    points = geometry.index_to_lps(ijk)
    truth = sample_volume(full, geometry, points, fill_value=np.inf)
    got = roi.sample(points)
    exact = roi.exact_at_index(ijk[:, ::-1])
    assert exact.sum() > 100 and (~exact).sum() > 100
    np.testing.assert_allclose(got[exact], truth[exact], rtol=0, atol=1e-4)
    assert np.all(got[~exact] <= truth[~exact] + 1e-4)  # conservative lower bound
    assert np.all(got[~exact] >= 10.0 - 0.5 * max(SPACING) - 1e-6)  # beyond the margin
    off = geometry.index_to_lps(np.array([[-3.0, 5.0, 5.0]]))
    assert roi.sample(off)[0] == np.inf


def test_context_samples_without_a_full_grid_map_near_the_structure():
    geometry = _grid()
    image = ImageVolume(np.zeros(geometry.shape_zyx, np.int16), geometry, modality="CT")
    twin = Twin(image)
    mask = _ball(geometry)
    twin.add_structure("nerve", mask, role="critical")
    context = SimulationContext(twin)
    full = signed_distance_map(mask, geometry)
    near = geometry.index_to_lps(np.array([[90.0, 70.0, 40.0], [95.5, 72.2, 43.1]]))
    np.testing.assert_allclose(context.signed_distance_mm("nerve", near),
                               sample_volume(full, geometry, near, fill_value=np.inf),
                               atol=1e-4)
    assert twin.cached_full_distance("nerve") is None  # no full-grid map was built
    far = geometry.index_to_lps(np.array([[5.0, 5.0, 100.0]]))
    bound = context.signed_distance_mm("nerve", far, exact=False)
    assert twin.cached_full_distance("nerve") is None
    exact = context.signed_distance_mm("nerve", far)
    np.testing.assert_allclose(exact, sample_volume(full, geometry, far, fill_value=np.inf),
                               atol=1e-4)
    assert bound[0] <= exact[0] and bound[0] >= 10.0


def test_distance_in_a_box_equals_the_full_map_there_without_building_it():
    geometry = _grid()
    twin = Twin(ImageVolume(np.zeros(geometry.shape_zyx, np.int16), geometry, modality="CT"))
    mask = _ball(geometry)
    twin.add_structure("nerve", mask, role="critical")
    twin.add_structure("nothing", np.zeros(geometry.shape_zyx, bool), role="critical")
    context = SimulationContext(twin)
    full = signed_distance_map(mask, geometry)
    for box in [(slice(30, 50), slice(60, 80), slice(80, 100)),  # around the ball
                (slice(0, 120), slice(0, 20), slice(0, 140)),  # far from it, to the grid edge
                (slice(110, 120), slice(150, 160), slice(130, 140))]:
        got = context.distance_in_box("nerve", box)
        assert got.dtype == np.float32 and not got.flags.writeable
        # Maurer's float32 sums differ by ~1e-6 relative between a region and the full grid
        np.testing.assert_allclose(got, full[box], rtol=0, atol=1e-4)
    assert twin.cached_full_distance("nerve") is None  # no full-grid map was built
    empty = context.distance_in_box("nothing", (slice(0, 2), slice(0, 3), slice(0, 4)))
    assert empty.shape == (2, 3, 4) and np.all(np.isposinf(empty))
    with pytest.raises(ValueError, match="within the grid"):
        context.distance_in_box("nerve", (slice(-1, 5), slice(0, 3), slice(0, 4)))


# ---------------------------------------------------------------------- budgets of the runs
def _body_case(shape_zyx=(60, 160, 160), spacing=(1.0, 1.0, 1.5), *,
               vessel_z_mm=(-np.inf, np.inf)) -> Twin:
    """A CT-like body cylinder (skin) with a target and a critical vessel along z (within
    ``vessel_z_mm``)."""
    nz, ny, nx = shape_zyx
    geometry = ImageGeometry((nx, ny, nz), spacing,
                             tuple(-n * s / 2 for n, s in zip((nx, ny, nz), spacing, strict=True)))
    zz, yy, xx = np.indices(shape_zyx, sparse=True)
    xmm, ymm, zmm = ((xx - nx / 2) * spacing[0], (yy - ny / 2) * spacing[1],
                     (zz - nz / 2) * spacing[2])
    body = np.broadcast_to((xmm / 70) ** 2 + (ymm / 60) ** 2 < 1, shape_zyx)
    twin = Twin(ImageVolume(np.where(body, 40, -1000).astype(np.int16), geometry,
                            modality="CT"))
    twin.add_structure("skin", body, role="skin")
    twin.add_structure("tumour", xmm ** 2 + (ymm - 10) ** 2 + zmm ** 2 < 64, role="target")
    vessel = ((xmm - 15) ** 2 + ymm ** 2 < 16) & (zmm > vessel_z_mm[0]) & (zmm < vessel_z_mm[1])
    twin.add_structure("vessel", vessel, role="critical", margin_mm=2.0)
    return twin


def _traced_peak(run) -> int:
    """Peak bytes of Python/numpy allocations while ``run()`` runs (not ITK's or VTK's own)."""
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_roi_map_from_a_label_layer_makes_no_full_grid_mask():
    twin = _body_case()
    n_voxels = twin.geometry.n_voxels
    peak = _traced_peak(lambda: twin.distance_roi("vessel"))
    assert peak < 0.5 * n_voxels, f"{peak} bytes: a full-grid boolean mask is {n_voxels}"
    full = signed_distance_map(twin.segmentation.mask("vessel"), twin.geometry)
    roi = twin.distance_roi("vessel")
    np.testing.assert_allclose(roi.values, full[roi.region], rtol=0, atol=1e-4)


def test_roi_cache_stays_within_its_share_of_the_image():
    geometry = _grid()
    twin = Twin(ImageVolume(np.zeros(geometry.shape_zyx, np.int16), geometry, modality="CT"))
    for k in range(12):  # twelve small critical structures along x
        twin.add_structure(f"c{k}", _ball(geometry, centre_zyx=(60, 80, 10 + 10 * k)),
                           role="critical")
    budget = twin_module.ROI_CACHE_IMAGE_FACTOR * twin.image.array.nbytes
    assert twin.roi_cache_bytes == int(budget) and budget <= 4 * twin.image.array.nbytes
    newest = None
    for s in twin.structures:
        newest = twin.distance_roi(s.name, margin_mm=30.0)
        cached = sum(r.nbytes for r in twin._roi_cache.values())
        assert cached <= max(budget, newest.nbytes)
    assert 1 < len(twin._roi_cache) < 12  # LRU: some kept, the oldest dropped
    assert twin.distance_roi("c11") is newest  # the newest is reused, not recomputed


def test_simulate_stays_within_its_memory_budget():
    """The trajectory run holds its maps and meshes near the path and the entry only: the
    full-grid mask and the whole skin surface cost 11x the image bytes here (before)."""
    from surgiplan.simulation import TrajectoryInput, UncertaintyModel, load_simulator

    sim = load_simulator("trajectory")
    inputs = TrajectoryInput(entry_lps=(0.0, -60.0, 0.0), target_lps=(0.0, 10.0, 0.0))
    model = UncertaintyModel(samples=20)
    twin = _body_case()
    context = SimulationContext(twin)
    result = sim.run(context, inputs, sim.spec.defaults(), uncertainty=model)  # compiled
    assert result.ok and abs(result.metric("clearance_mm").value - 10.85) < 0.3
    fresh = SimulationContext(_body_case())
    peak = _traced_peak(lambda: sim.run(fresh, inputs, sim.spec.defaults(),
                                        uncertainty=model))
    assert peak <= 4.0 * twin.image.array.nbytes, peak / twin.image.array.nbytes


def test_plan_path_maps_cover_the_entries_in_reach_only():
    from surgiplan.simulation import PathSearchRequest, load_simulator

    """The critical map covers the vessel's region and the paths from entries within reach
    (0.26 of the grid here), not every skin entry (0.66 of the grid before)."""
    twin = _body_case(shape_zyx=(100, 160, 160), spacing=(1.0, 1.0, 3.0),
                      vessel_z_mm=(-130.0, -70.0))
    sim = load_simulator("trajectory")
    request = PathSearchRequest(target_lps=(0.0, 10.0, -100.0), max_length_mm=70.0, top_k=3)
    result = sim.search(SimulationContext(twin), request, sim.spec.defaults())
    assert result.candidates and result.rejected["too_long"] > 0.5 * result.n_candidates
    region = twin._roi_cache["vessel"].values.size
    assert region < 0.4 * twin.geometry.n_voxels, region / twin.geometry.n_voxels


# ---------------------------------------------------------------------- label layers (crops)
def _random_labels(rng: np.random.Generator, shape=(20, 24, 28)) -> np.ndarray:
    full = np.zeros(shape, np.uint8)
    full[5:12, 8:20, 3:9] = rng.integers(0, 4, size=(7, 12, 6))
    full[14, 2, 20] = 7
    return full


def test_label_layer_reads_and_writes_like_the_full_array():
    """Every way the code reads or writes a layer gives the full array's voxels."""
    import hashlib

    from surgiplan.model.label_layer import LabelLayer, nonzero_box

    rng = np.random.default_rng(5)
    full = _random_labels(rng)
    layer = LabelLayer.from_array(full)
    assert layer.nbytes == 10 * 18 * 18 and layer.offset == (5, 2, 3)  # its box only
    np.testing.assert_array_equal(np.asarray(layer), full)
    for key in [(slice(0, 20), slice(3, 9), slice(0, 28)), 14, (slice(None), 2), (..., 20),
                (slice(4, 13), slice(0, 3), slice(19, 24)), (-6, slice(1, -1))]:
        np.testing.assert_array_equal(layer[key], full[key], err_msg=str(key))
    np.testing.assert_array_equal(layer[::2, 1], full[::2, 1])  # any other index: full array
    zyx = tuple(rng.integers(-20, 20, size=(3, 50)) % np.array(full.shape)[:, None])
    np.testing.assert_array_equal(layer[zyx], full[zyx])
    np.testing.assert_array_equal(layer == 2, full == 2)
    np.testing.assert_array_equal(layer == 0, full == 0)
    np.testing.assert_array_equal(layer != 0, full != 0)
    np.testing.assert_array_equal(np.take(layer, 7, axis=1), np.take(full, 7, axis=1))
    assert layer.sha256() == hashlib.sha256(full.data).hexdigest()
    assert layer.count(3) == np.count_nonzero(full == 3) and layer.max() == full.max()
    mask = np.zeros(full.shape, bool)
    mask[0:2, 20:24, 25:28] = True  # beyond the crop: it grows
    assert not layer.any_in(mask)
    layer[mask], full[mask] = 9, 9
    box = (slice(15, 20), slice(0, 3), slice(0, 2))
    values = rng.integers(0, 3, size=(5, 3, 2)).astype(np.uint8)
    layer[box], full[box] = values, values
    layer.clear_label(9)
    full[full == 9] = 0
    layer.compact()
    np.testing.assert_array_equal(np.asarray(layer), full)
    assert layer.box == nonzero_box(full)  # compacted to the labelled voxels


def test_a_twins_layers_hold_their_structures_boxes_only():
    """The body case's skin, vessel and tumour layers cost their boxes (full-grid uint8
    layers cost 1 byte per voxel each, before), voxel-identical to the full masks."""
    twin = _body_case()
    full_bytes = twin.geometry.n_voxels
    layers = twin.segmentation.layers
    assert len(layers) == 2
    assert sum(layer.nbytes for layer in layers) < 0.7 * full_bytes, \
        [layer.nbytes / full_bytes for layer in layers]
    assert layers[1].nbytes < 0.05 * full_bytes  # the tumour and the vessel
    _, ny, nx = twin.geometry.shape_zyx
    _, yy, xx = np.indices(twin.geometry.shape_zyx, sparse=True)
    skin = np.broadcast_to(((xx - nx / 2) / 70) ** 2 + ((yy - ny / 2) / 60) ** 2 < 1,
                           twin.geometry.shape_zyx)
    np.testing.assert_array_equal(twin.segmentation.mask("skin"), skin)
    assert twin.voxel_count("skin") == np.count_nonzero(skin)


def test_a_bundle_loads_its_layers_as_crops(tmp_path, monkeypatch):
    """Saved and loaded, the layers are voxel-identical and come back as crops, decoded slab
    by slab: loading holds no full-grid layer (3 such layers were 1.5x the image bytes; the
    decoder's fixed-size buffers are made small here, as they are beside a big CT's)."""
    import surgiplan.io.bundle_guard as guard
    from surgiplan.io.bundle import load_bundle, save_bundle

    monkeypatch.setattr(guard, "PIECE_BYTES", 1 << 16)
    monkeypatch.setattr(guard, "SLAB_BYTES", 1 << 16, raising=False)

    twin = _body_case(shape_zyx=(80, 160, 160))
    twin.add_structure("bone", np.asarray(twin.segmentation.mask("vessel")) |
                       np.asarray(twin.segmentation.mask("tumour")), role="bone")
    assert len(twin.segmentation.layers) == 3
    path = save_bundle(twin, tmp_path / "case.surgiplan")
    peak = _traced_peak(lambda: load_bundle(path))
    back = load_bundle(path)
    image_bytes = twin.image.array.nbytes
    assert peak < 1.6 * image_bytes, peak / image_bytes
    for a, b in zip(twin.segmentation.layers, back.segmentation.layers, strict=True):
        assert (a.offset, a.data.shape) == (b.offset, b.data.shape)
        np.testing.assert_array_equal(a.data, b.data)
    assert [s.name for s in back.structures] == ["skin", "tumour", "vessel", "bone"]


def test_full_size_label_nrrds_without_extents_read_into_crops(tmp_path):
    """A 4D label NRRD of full-grid layers without segment extents (an older or another
    program's file) reads into the same crops: the crop grows as the slabs arrive."""
    import io

    import nrrd

    from surgiplan.io.bundle_guard import read_nrrd_layers
    from surgiplan.model.label_layer import nonzero_box

    rng = np.random.default_rng(2)
    layers = [_random_labels(rng, (30, 24, 28)), np.zeros((30, 24, 28), np.uint8)]
    layers[1][25:29, 1:3, 2:4] = 5
    layers[1][2, 20, 26] = 1
    stacked = np.stack(layers, axis=-1)  # C order (z, y, x, layer) = NRRD (layer, x, y, z)
    buffer = io.BytesIO()
    nrrd.write(buffer, stacked.T, {"encoding": "gzip"}, index_order="F")
    buffer.seek(0)
    got, _ = read_nrrd_layers(buffer, max_bytes=stacked.nbytes, where="test.nrrd")
    for want, layer in zip(layers, got, strict=True):
        np.testing.assert_array_equal(np.asarray(layer), want)
        assert layer.box == nonzero_box(want)  # compacted to the labelled voxels


def test_a_path_search_on_a_lazily_loaded_case_never_reads_the_image(tmp_path):
    """``plan-path`` loads the bundle with ``lazy_image``: the search reads no image voxel (1x
    the image bytes saved), finds the same entries, and voxels read later are the saved ones
    unless the file changed meanwhile (then refused, not silently another case's)."""
    from surgiplan.errors import BadInputError
    from surgiplan.io.bundle import load_bundle, save_bundle
    from surgiplan.simulation import PathSearchRequest, load_simulator

    twin = _body_case(shape_zyx=(40, 160, 160), spacing=(1.0, 1.0, 3.0))
    path = save_bundle(twin, tmp_path / "case.surgiplan")
    sim = load_simulator("trajectory")
    request = PathSearchRequest(target_lps=(0.0, 10.0, 0.0), max_length_mm=70.0, top_k=3)
    lazy = load_bundle(path, lazy_image=True)
    found = sim.search(SimulationContext(lazy), request, sim.spec.defaults())
    assert not lazy.image.loaded and lazy.image.nbytes == twin.image.array.nbytes
    eager = sim.search(SimulationContext(load_bundle(path)), request, sim.spec.defaults())
    assert found.candidates and [c.entry_lps for c in found.candidates] == \
        [c.entry_lps for c in eager.candidates]
    np.testing.assert_array_equal(lazy.image.array, twin.image.array)  # read on first use
    other = load_bundle(path, lazy_image=True)
    twin.image.array[0, 0, 0] += 1
    save_bundle(twin, path)  # another process rewrites the case meanwhile
    with pytest.raises(BadInputError, match="changed on disk"):
        _ = other.image.array


def test_display_readers_of_a_cropped_layer_give_the_full_arrays_values():
    """The probe's reslice and the display-mesh keys read the crop, with the values and the
    digest of the full-grid array (cached display meshes stay valid)."""
    import hashlib

    from scipy import ndimage

    from surgiplan.model.label_layer import LabelLayer
    from surgiplan.ui.views.display_meshes import structure_keys
    from surgiplan.ui.views.probe_view import _labels_at

    twin = _body_case(shape_zyx=(30, 64, 64))
    layer = twin.segmentation.layers[1]
    full = np.asarray(layer)
    rng = np.random.default_rng(4)
    zyx = rng.uniform(-2.0, np.array(full.shape)[:, None] + 1.0, size=(3, 4000))
    zyx[:, :50] = np.round(zyx[:, :50]) + 0.5  # ties on half voxels
    want = ndimage.map_coordinates(full, zyx, order=0, mode="constant", cval=0,
                                   prefilter=False)
    np.testing.assert_array_equal(_labels_at(layer, zyx), want)
    assert not _labels_at(LabelLayer(full.shape), zyx).any()
    geo = twin.geometry
    grid = repr((geo.size, geo.spacing_mm, geo.origin_lps, np.round(geo.direction, 9).tolist()))
    for s in twin.structures:
        digest = hashlib.sha256(grid.encode())
        digest.update(np.packbits(np.asarray(twin.segmentation.layers[s.layer]) == s.label).data)
        assert structure_keys(twin.segmentation)[s.name] == digest.hexdigest()


def test_saving_label_layers_builds_no_full_grid_array(tmp_path):
    """A .seg.nrrd (a case bundle's labels) is written from the crops a few planes at a time:
    three full-grid layers stacked and their bytes cost 6 bytes per voxel before (1.3 now: the
    few planes at a time, the compressor's and the file's buffers)."""
    from surgiplan.io.seg_nrrd import read_seg_nrrd, seg_nrrd_bytes

    twin = _body_case(shape_zyx=(80, 160, 160))
    twin.add_structure("bone", np.asarray(twin.segmentation.mask("vessel")) |
                       np.asarray(twin.segmentation.mask("tumour")), role="bone")
    seg = twin.segmentation
    assert len(seg.layers) == 3
    seg_nrrd_bytes(_body_case(shape_zyx=(4, 20, 20)).segmentation)  # imports out of the count
    peak = _traced_peak(lambda: seg_nrrd_bytes(seg))
    assert peak < 2.0 * twin.geometry.n_voxels, peak / twin.geometry.n_voxels
    path = tmp_path / "labels.seg.nrrd"
    path.write_bytes(seg_nrrd_bytes(seg))
    back = read_seg_nrrd(path)
    for s in seg.structures:
        np.testing.assert_array_equal(back.mask(s.name), seg.mask(s.name))
