"""Phantoms: analytic distances are exact, and images, labels, DICOM and distance maps agree
with the analytic description within half a voxel."""

from __future__ import annotations

import json

import nrrd
import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage
from scipy.optimize import minimize
from scipy.spatial import cKDTree

from surgiplan.cli.main import main as cli_main
from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role
from surgiplan.phantoms import PHANTOM_NAMES, load_truth
from surgiplan.phantoms.primitives import (
    Box,
    Cylinder,
    Difference,
    Ellipsoid,
    EllipticCylinder,
    Intersection,
    Shell,
    Sphere,
    Tube,
    Union,
    rotation_deg,
    shape_from_json,
)
from surgiplan.phantoms.render import render_phantom
from surgiplan.phantoms.spec import PhantomSpec, PhantomStructure
from tests.conftest import shared_phantom

RNG = np.random.default_rng(7)


# ----------------------------------------------------------------------------- primitives
def test_sphere_distance_at_hand_computed_points():
    s = Sphere((10.0, -5.0, 2.0), 4.0)
    pts = [(10, -5, 2), (14, -5, 2), (10, 5, 2), (13, -1, 2)]
    np.testing.assert_allclose(s.signed_distance(pts), [-4.0, 0.0, 6.0, 1.0], atol=1e-12)


def _ellipsoid_brute(ell: Ellipsoid, point: np.ndarray) -> float:
    """Nearest surface point by dense parametric sampling, refined by Nelder-Mead."""
    e = ell.semi_axes_mm
    q = (point - ell.centre_lps) @ ell.axes
    th, ph = np.meshgrid(np.linspace(0, np.pi, 300), np.linspace(0, 2 * np.pi, 600), indexing="ij")

    def surface(t, p):
        return np.stack([e[0] * np.sin(t) * np.cos(p), e[1] * np.sin(t) * np.sin(p),
                         e[2] * np.cos(t)], axis=-1)

    dist = np.linalg.norm(surface(th, ph) - q, axis=-1)
    i = np.unravel_index(np.argmin(dist), dist.shape)
    res = minimize(lambda a: np.linalg.norm(surface(a[0], a[1]) - q), [th[i], ph[i]],
                   method="Nelder-Mead", options={"xatol": 1e-12, "fatol": 1e-13})
    return min(float(res.fun), float(dist[i]))


def test_ellipsoid_distance_on_axis_points():
    ell = Ellipsoid((1.0, 2.0, 3.0), (30.0, 20.0, 10.0))
    pts = np.array([(41, 2, 3), (1, 2, 3), (1, 2, 9), (1, 30, 3), (21, 2, 3)], dtype=float)
    # beyond the long axis; centre (nearest: smallest semi-axis); inside on the short axis;
    # outside on the middle axis; on the long axis deep inside, where the nearest point leaves
    # the axis (x = 20: closest point found by the degenerate branch).
    got = ell.signed_distance(pts)
    np.testing.assert_allclose(got[:4], [10.0, -10.0, -4.0, 8.0], atol=1e-12)
    assert got[4] == pytest.approx(-_ellipsoid_brute(ell, pts[4]), abs=1e-6)
    assert -10.0 < got[4] < 0.0


@pytest.mark.parametrize("semi", [(50, 30, 20), (40, 40, 15), (25, 25, 25), (15, 45, 30)])
def test_ellipsoid_distance_matches_brute_force_off_axis(semi):
    axes = rotation_deg(RNG.normal(size=3), 37.0)
    ell = Ellipsoid((5.0, -7.0, 11.0), semi, axes)
    pts = ell.centre_lps + (RNG.uniform(-1.4, 1.4, size=(12, 3)) * semi) @ axes.T
    got = ell.signed_distance(pts)
    for p, d in zip(pts, got, strict=True):
        assert abs(d) == pytest.approx(_ellipsoid_brute(ell, p), abs=1e-6)
    inside = np.sum((((pts - ell.centre_lps) @ axes) / semi) ** 2, axis=1) < 1
    assert np.array_equal(got < 0, inside)


def test_capsule_distance_at_hand_computed_points():
    cap = Tube([(0, 0, 0), (0, 0, 10)], 2.0)
    pts = [(0, 0, 5), (5, 0, 5), (0, 0, -3), (3, 4, 10), (0, 0, 14)]
    np.testing.assert_allclose(cap.signed_distance(pts), [-2, 3, 1, 3, 2.0], atol=1e-12)
    assert cap.exact and cap.volume_mm3() == pytest.approx(np.pi * 4 * 10 + 4 / 3 * np.pi * 8)


def _surface_kdtree(shape, box, n=220):
    """Points where the distance changes sign on a dense grid: a surface sample (brute)."""
    axes = [np.linspace(lo, hi, n) for lo, hi in zip(*box, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    inside = shape.signed_distance(grid) <= 0
    return cKDTree(grid[inside & (shape.signed_distance(grid) > -0.1)]), grid


@pytest.mark.parametrize("shape", [
    Tube([(0, 0, 0), (12, 3, 4)], [3.0, 1.5]),
    Box((1, 2, 3), (6, 4, 3), rotation_deg((1, 1, 1), 30)),
    Cylinder((0, 0, 0), (1, 2, 2), 4.0, 6.0),
    EllipticCylinder((0, 0, 0), (8.0, 3.0), 5.0, rotation_deg((0, 1, 0), 20)),
])
def test_exact_shapes_match_brute_force_surface_distance(shape):
    lo, hi = shape.bounds_lps()
    pts = RNG.uniform(lo - 4, hi + 4, size=(300, 3))
    d = shape.signed_distance(pts)
    # Sample the surface densely: project random points onto it along the gradient.
    cloud = RNG.uniform(lo - 1, hi + 1, size=(400_000, 3))
    dc = shape.signed_distance(cloud)
    eps = 1e-4
    grad = np.stack([(shape.signed_distance(cloud + eps * np.eye(3)[i]) - dc) / eps
                     for i in range(3)], axis=1)
    surf = cloud - dc[:, None] * grad
    surf = surf[np.abs(shape.signed_distance(surf)) < 1e-6]
    brute, _ = cKDTree(surf).query(pts)
    assert np.all(np.abs(d) <= brute + 1e-6)  # no farther than any sampled surface point
    # ... and a surface point at exactly |d| exists: step back along the gradient.
    grad = np.stack([(shape.signed_distance(pts + eps * np.eye(3)[i])
                      - shape.signed_distance(pts - eps * np.eye(3)[i])) / (2 * eps)
                     for i in range(3)], axis=1)
    smooth = np.abs(np.linalg.norm(grad, axis=1) - 1.0) < 1e-3  # off the medial axis
    witness = pts - d[:, None] * grad
    assert smooth.mean() > 0.9
    assert np.abs(shape.signed_distance(witness[smooth])).max() < 1e-3


def test_boolean_exactness_claims():
    a, b = Sphere((0, 0, 0), 5.0), Sphere((7, 0, 0), 5.0)
    union = Union([a, b])
    assert union.exact_outside and not union.exact_inside
    # Outside: exact (nearest of the two spheres). Inside near the seam: a bound, too shallow.
    assert union.signed_distance([(-8, 0, 0)])[0] == pytest.approx(3.0)
    seam = union.signed_distance([(3.5, 0, 0)])[0]
    true_depth = np.sqrt(25 - 3.5**2)  # nearest boundary: the seam circle
    assert -true_depth <= seam < 0
    inter = Intersection([a, b])
    assert inter.exact_inside and not inter.exact_outside
    assert inter.signed_distance([(3.5, 0, 0)])[0] == pytest.approx(-1.5)
    diff = Difference(a, b)
    assert diff.exact_inside and not diff.exact_outside
    assert diff.signed_distance([(-4, 0, 0)])[0] == pytest.approx(-1.0)
    assert Union([a, Sphere((20, 0, 0), 2.0)], disjoint=True).exact


def test_shell_is_exact_and_refuses_unnested_ellipsoids():
    shell = Shell(Ellipsoid((0, 0, 0), (20, 15, 10)), Ellipsoid((0, 0, 0), (16, 11, 6)))
    pts = [(0, 0, 0), (0, 0, 8), (0, 0, 12), (18, 0, 0)]
    np.testing.assert_allclose(shell.signed_distance(pts), [6, -2, 2, -2], atol=1e-12)
    with pytest.raises(ValueError):
        Shell(Ellipsoid((0, 0, 0), (10, 10, 10)), Ellipsoid((5, 0, 0), (8, 8, 8)))


def test_distance_bounds_are_conservative():
    shapes = [
        Ellipsoid((0, 0, 0), (30, 12, 8), rotation_deg((1, 0, 1), 15)),
        EllipticCylinder((0, 0, 0), (20, 6), 9),
        Shell(Ellipsoid((0, 0, 0), (20, 15, 10)), Ellipsoid((0, 0, 0), (16, 11, 6))),
        Union([Ellipsoid((0, 0, 0), (9, 5, 5)), Tube([(0, 0, 0), (15, 5, 0)], 2.0)]),
    ]
    for shape in shapes:
        lo, hi = shape.bounds_lps()
        pts = RNG.uniform(lo - 5, hi + 5, size=(20_000, 3))
        d, b = shape.signed_distance(pts), shape.signed_distance_bound(pts)
        assert np.all(np.sign(b) == np.sign(d)) and np.all(np.abs(b) <= np.abs(d) + 1e-9)


def test_every_shape_round_trips_through_json():
    shapes = [
        Sphere((1, 2, 3), 4), Ellipsoid((1, 2, 3), (4, 5, 6), rotation_deg((0, 0, 1), 30)),
        Box((0, 0, 0), (1, 2, 3)), Cylinder((0, 0, 0), (0, 0, 1), 2, 3),
        EllipticCylinder((0, 0, 0), (3, 2), 5),
        Tube([(0, 0, 0), (5, 0, 0), (5, 5, 0)], [2, 1.5, 1]),
        Shell(Ellipsoid((0, 0, 0), (9, 9, 9)), Ellipsoid((0, 0, 0), (7, 7, 7))),
        Union([Sphere((0, 0, 0), 1), Sphere((3, 0, 0), 1)], disjoint=True),
        Intersection([Sphere((0, 0, 0), 2), Box((0, 0, 0), (1, 1, 5))]),
        Difference(Sphere((0, 0, 0), 3), Sphere((2, 0, 0), 1)),
    ]
    pts = RNG.uniform(-10, 10, size=(200, 3))
    for shape in shapes:
        again = shape_from_json(json.loads(json.dumps(shape.to_json())))
        assert type(again) is type(shape) and again.exact == shape.exact
        np.testing.assert_array_equal(again.signed_distance(pts), shape.signed_distance(pts))


# ----------------------------------------------------------------------------- phantoms
@pytest.fixture(scope="session")
def phantoms():
    """Each phantom rendered once in memory: name -> (volume, segmentation, truth)."""
    return {name: shared_phantom(name, seed=0) for name in PHANTOM_NAMES}


def _voxel_sample(truth, name, limit=250_000):
    """Voxel indices (k, j, i) in the structure's box (subsampled) and their LPS centres."""
    from surgiplan.phantoms.render import index_box

    geo = truth.geometry
    lo, hi = index_box(truth.structure(name).shape.bounds_lps(), geo)
    kji = np.argwhere(np.ones(tuple((hi - lo)[::-1]), dtype=bool)) + lo[::-1]
    if len(kji) > limit:
        kji = kji[RNG.choice(len(kji), limit, replace=False)]
    return kji, geo.index_to_lps(kji[:, ::-1].astype(float))


EXPECTED_EXACT = {
    "head": {"skull", "ventricles", "arteries", "veins", "tumour"},
    "spine": {"L3", "L4", "L5", "discs", "cauda equina", "aorta"},
    "liver": {"kidneys", "spinal cord", "portal veins", "hepatic veins", "tumour 1", "tumour 2"},
}


@pytest.mark.parametrize("name", PHANTOM_NAMES)
def test_designed_structures_are_exact_and_roles_present(phantoms, name):
    _, seg, truth = phantoms[name]
    exact = {s.name for s in truth.exact_structures()}
    assert EXPECTED_EXACT[name] <= exact, f"cut or clipped: {EXPECTED_EXACT[name] - exact}"
    roles = {s.role for s in truth.structures}
    assert {Role.TARGET, Role.CRITICAL, Role.SKIN} <= roles | ({Role.TARGET} if name == "spine"
                                                              else set())
    assert sorted(seg.names()) == sorted(truth.names())


@pytest.mark.parametrize("name", PHANTOM_NAMES)
def test_exact_structure_labels_equal_their_shapes(phantoms, name):
    _, seg, truth = phantoms[name]
    geo = truth.geometry
    for s in truth.exact_structures():
        kji, pts = _voxel_sample(truth, s.name)
        d = s.signed_distance_mm(pts)
        labelled = seg.layers[0][tuple(kji.T)] == s.label
        clear = np.abs(d) > 1e-6
        assert np.array_equal(labelled[clear], d[clear] < 0), s.name
        # Volume: voxel count vs analytic, within a quarter voxel layer over the surface.
        analytic = s.shape.volume_mm3()
        if analytic is not None:
            mask = seg.mask(s.name)
            faces = sum(np.count_nonzero(np.diff(mask, axis=a)) for a in range(3))
            tolerance = 0.25 * faces * geo.voxel_volume_mm3
            assert abs(mask.sum() * geo.voxel_volume_mm3 - analytic) <= tolerance, s.name


@pytest.mark.parametrize("name", PHANTOM_NAMES)
def test_hu_inside_structures_and_noise(phantoms, name):
    vol, seg, truth = phantoms[name]
    hu = vol.array.astype(float)
    spacing_zyx = truth.geometry.spacing_mm[::-1]
    h = max(spacing_zyx)
    checked = 0
    for s in truth.structures:
        # Deeper than the partial-volume band (and the cortex): mm to the nearest other voxel.
        depth_mm = 1.5 * h if s.core_hu is None else s.cortex_mm + 2.0 * h
        mask = seg.mask(s.name)
        if not mask.any():
            continue
        # The structure's box plus one outside voxel each way (beyond the grid edge counts as
        # outside): an inside voxel's nearest outside voxel is never farther out than that, so
        # the depths equal those over the whole grid.
        box = ndimage.find_objects(mask.astype(np.uint8))[0]
        padded = np.pad(mask[box], 1)
        depth = ndimage.distance_transform_edt(padded, sampling=spacing_zyx)[1:-1, 1:-1, 1:-1]
        core = depth > depth_mm
        if core.sum() < 200:
            continue
        expected = s.hu if s.core_hu is None else s.core_hu
        values = hu[box][core]
        assert values.mean() == pytest.approx(expected, abs=3.0), s.name
        assert values.std() == pytest.approx(truth.noise_sd_hu, rel=0.1), s.name
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("name", PHANTOM_NAMES)
def test_distance_maps_from_labels_agree_with_analytic(phantoms, name):
    from surgiplan.processing.distance import signed_distance_map

    _, seg, truth = phantoms[name]
    geo = truth.geometry
    h = max(geo.spacing_mm)
    half_diagonal = 0.5 * float(np.linalg.norm(geo.spacing_mm))
    for s in truth.exact_structures():
        mask = seg.mask(s.name)
        maurer = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(
            geo.to_sitk(mask.astype(np.uint8)), insideIsPositive=False, squaredDistance=False,
            useImageSpacing=True))
        ours = signed_distance_map(mask, geo)
        kji = np.argwhere(np.abs(maurer) <= 3 * h)
        d = s.signed_distance_mm(geo.index_to_lps(kji[:, ::-1].astype(float)))
        near = np.abs(d) <= 2 * h
        if not s.distance_exact_inside:
            near &= d > 0
        if not s.distance_exact_outside:
            near &= d < 0
        idx = tuple(kji[near].T)
        # ITK measures to the nearest contour voxel centre: between 0 and one voxel diagonal
        # beyond the true surface, i.e. within half a diagonal of (analytic + half diagonal).
        raw_error = maurer[idx] - d[near] - half_diagonal
        assert np.abs(raw_error).max() <= half_diagonal + 1e-3, s.name
        # SurgiPlan's half-voxel-corrected map: within half a voxel diagonal of the truth.
        assert np.abs(ours[idx] - d[near]).max() <= half_diagonal, s.name


def test_generation_is_deterministic_for_a_seed():
    geo = ImageGeometry((40, 40, 30), (1.0, 1.0, 1.5), (-20.0, -20.0, -22.0))
    spec = PhantomSpec("tiny", geo, (
        PhantomStructure("ball", Role.TARGET, 1, 60.0, 1, Ellipsoid((0, 0, 0), (12, 9, 10))),
    ))
    a, b = render_phantom(spec, seed=3), render_phantom(spec, seed=3)
    c = render_phantom(spec, seed=4)
    assert np.array_equal(a.hu, b.hu) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.hu, c.hu) and np.array_equal(a.labels, c.labels)


def test_unknown_phantom_name_is_bad_input():
    from surgiplan.phantoms import phantom_spec

    with pytest.raises(BadInputError, match="head, spine, liver"):
        phantom_spec("knee")


# ----------------------------------------------------------------------------- files and CLI
@pytest.fixture(scope="session")
def head_on_disk(head_sample):
    """What ``surgiplan sample head --seed 0`` wrote (tests/conftest.py, once per session)."""
    return head_sample


def test_written_dicom_reloads_on_the_label_grid_with_same_hu(head_on_disk, phantoms):
    from surgiplan.io.dicom_load import load_dicom

    volume, seg, truth = phantoms["head"]
    labels, header = nrrd.read(str(head_on_disk / "labels.nrrd"), index_order="C")
    label_img = sitk.ReadImage(str(head_on_disk / "labels.nrrd"))
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(head_on_disk / "dicom")))
    ct = reader.Execute()
    loaded = load_dicom(head_on_disk / "dicom")
    for geo in (ImageGeometry.from_sitk(ct), ImageGeometry.from_sitk(label_img),
                loaded.geometry):
        assert geo.same_grid(truth.geometry, tol_mm=0.01)
        assert np.allclose(geo.origin_lps, truth.geometry.origin_lps, atol=0.01)
    assert np.allclose(header["space origin"], truth.geometry.origin_lps, atol=1e-9)
    assert np.array_equal(labels, seg.layers[0])
    assert np.array_equal(sitk.GetArrayFromImage(ct), volume.array)
    assert np.array_equal(loaded.array, volume.array)


def test_truth_and_labels_json_describe_the_phantom(head_on_disk, phantoms):
    truth = load_truth(head_on_disk / "truth.json")
    _, _, in_memory = phantoms["head"]
    data = json.loads((head_on_disk / "truth.json").read_text())
    assert data["priority_order"][0] == "tumour" and data["priority_order"][-1] == "scalp"
    assert "higher priority" in data["priority_rule"]
    assert truth.geometry == in_memory.geometry and truth.seed == 0
    pts = RNG.uniform(-80, 80, size=(500, 3)) + truth.geometry.slice_centre_lps()
    for s in in_memory.structures:
        assert truth.structure(s.name).exact == s.exact
        np.testing.assert_array_equal(truth.signed_distance_mm(s.name, pts),
                                      s.signed_distance_mm(pts))
    labels = json.loads((head_on_disk / "labels.json").read_text())
    assert labels["schema"] == "surgiplan.labels/1"
    by_name = {e["name"]: e for e in labels["labels"]}
    assert by_name["arteries"]["role"] == "critical" and by_name["arteries"]["margin_mm"] == 2.0
    assert by_name["tumour"]["value"] == truth.structure("tumour").label


def test_load_truth_rejects_other_json(tmp_path):
    bad = tmp_path / "truth.json"
    bad.write_text('{"schema": "something/else"}')
    with pytest.raises(BadInputError, match=r"truth\.json"):
        load_truth(bad)


def test_sample_command_writes_a_twin_with_ground_truth_labels(head_on_disk, phantoms):
    from surgiplan.io.bundle import load_bundle

    _, seg, truth = phantoms["head"]
    twin = load_bundle(head_on_disk / "head.surgiplan")
    assert twin.geometry.same_grid(truth.geometry, tol_mm=0.01)
    for s in truth.structures:
        got = twin.structure(s.name)
        assert got.role == s.role and got.margin_mm == s.margin_mm
        assert np.array_equal(twin.segmentation.mask(s.name), seg.mask(s.name)), s.name


def test_sample_command_unknown_name_exits_2_with_one_line(tmp_path, capsys):
    assert cli_main(["sample", "knee", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "head, spine, liver" in err
    assert not (tmp_path / "x").exists()
