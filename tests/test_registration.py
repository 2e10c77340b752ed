"""Registration of a moved MR-like head phantom to its CT (known rigid truth), transform
conventions, landmark error, cancel and bad input.

The quick case is on a 3 mm grid (CT 60x74x64): mean TRE 0.23 mm, worst centroid 1.02 mm (the
sagittal sinus, 60 mm from the centre, where a residual 1 degree pitch shows most), held to
1.5 mm, half a voxel; the acceptance run on the full 1 mm grid is the SURGIPLAN_SLOW test and
bench/bench_registration.py. Runs are repeatable bit for bit (seeded samples, scales computed
without ITK's unseeded estimator, one ITK thread): a second run must give the same transform.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from surgiplan.errors import BadInputError, CancelledError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.series_transform import (
    SeriesTransform,
    deformation_from_text,
    deformation_to_text,
    matrix_from_sitk,
    rigid_matrix,
    rotation_angle_deg,
)
from surgiplan.model.volume import ImageVolume
from surgiplan.progress import CancelToken
from surgiplan.registration.engine import RegistrationSettings, register_volumes
from surgiplan.registration.quality import landmark_error, transform_difference
from surgiplan.registration.synthetic import synthetic_pair


@pytest.fixture(scope="module")
def pair():
    return synthetic_pair("head", ct_spacing_mm=3.0)


@pytest.fixture(scope="module")
def rigid(pair):
    return register_volumes(pair.ct, pair.mr, RegistrationSettings(kind="rigid"))


def test_the_synthetic_mr_is_the_truth_moved_by_the_known_transform(pair):
    """Each MR truth label sits where the true transform puts the CT's (Dice >= 0.9)."""
    from surgiplan.registration.resample import series_on_reference

    on_ct = series_on_reference(pair.mr_labels, pair.mr.geometry, pair.true_transform,
                                pair.ct.geometry, sampling="nearest")
    for name in ("brain", "ventricles", "tumour"):
        label = pair.labels.get(name).label
        a, b = on_ct == label, pair.labels.mask(name)
        assert 2 * np.count_nonzero(a & b) / (a.sum() + b.sum()) > 0.85, name
    # and intensities differ in kind: skull bright on CT, dark on MR
    skull = pair.labels.mask("skull")
    mr_on_ct = series_on_reference(pair.mr.array, pair.mr.geometry, pair.true_transform,
                                   pair.ct.geometry)
    brain = pair.labels.mask("brain")
    assert pair.ct.array[skull].mean() > pair.ct.array[brain].mean()
    assert mr_on_ct[skull].mean() < mr_on_ct[brain].mean()


def test_rigid_mutual_information_recovers_the_known_transform(pair, rigid):
    centroids = np.array(list(pair.centroids_lps.values()))
    error = transform_difference(rigid.transform, pair.true_transform, centroids)
    start = SeriesTransform()  # identity: how far off the series starts
    start_error = transform_difference(start, pair.true_transform, centroids)
    assert start_error["tre_mean_mm"] > 10.0
    assert error["tre_mean_mm"] <= 1.0, error
    assert error["tre_max_mm"] <= 1.5, error
    assert error["rotation_error_deg"] <= 1.5, error
    assert rigid.metric_after < rigid.metric_before  # Mattes MI: lower is better
    assert rigid.transform.kind == "rigid"
    assert rigid.transform.quality["metric"] == "Mattes mutual information"
    assert "SimpleITK" in rigid.transform.method
    assert rigid.transform.settings["shrink_factors"] == [4, 2, 1]
    assert rigid.transform.settings["shrink_factors_used"] == [4, 2, 1]  # 3 mm: not scaled


def test_a_second_run_gives_the_same_transform(pair, rigid):
    """Issue 18: runs were not repeatable (ITK's unseeded scale sampling and its threads'
    summing order moved the result by up to 1 mm); now they are, bit for bit."""
    again = register_volumes(pair.ct, pair.mr, RegistrationSettings(kind="rigid"))
    assert again.iterations == rigid.iterations
    np.testing.assert_allclose(again.transform.matrix_to_reference,
                               rigid.transform.matrix_to_reference, rtol=0, atol=1e-6)


def test_the_pyramid_follows_the_grid_and_scales_need_no_sampling():
    """A 1 mm grid registers on 8/4/2 mm levels (finest_mm=2); the optimiser scales are the
    squared corner shifts (translations 1, rotations about the squared corner radius)."""
    from surgiplan.registration.engine import physical_shift_scales

    settings = RegistrationSettings()
    fine = settings.for_grid((1.0, 1.0, 1.2))
    assert fine.shrink_factors == (8, 4, 2) and fine.smoothing_mm == (4.0, 2.0, 0.0)
    assert settings.for_grid((3.0, 3.0, 3.0)) == settings
    assert RegistrationSettings(finest_mm=0.0).for_grid((0.5, 0.5, 0.5)).shrink_factors == (4, 2, 1)
    grid = ImageGeometry((11, 21, 31), (1.0, 1.0, 1.0), (-5.0, -10.0, -15.0))
    image = grid.to_sitk(np.zeros(grid.shape_zyx, np.float32))
    scales = physical_shift_scales(image, sitk.Euler3DTransform())
    np.testing.assert_allclose(scales[3:], 1.0, atol=1e-6)
    # rotation about L moves the corner (y, z) = (10, 15) by |(y, z)| per radian
    assert scales[0] == pytest.approx(10.0 ** 2 + 15.0 ** 2, rel=1e-3)


@pytest.mark.slow  # the full 1 mm head phantom (CT 180x220x190): minutes on a loaded machine
def test_acceptance_tre_at_every_centroid_within_1_mm_on_the_full_grid():
    pair = synthetic_pair("head", ct_spacing_mm=1.0)
    result = register_volumes(pair.ct, pair.mr)
    assert result.transform.settings["shrink_factors_used"] == [8, 4, 2]
    for name, c in pair.centroids_lps.items():
        err = np.linalg.norm(result.transform.from_reference(c)
                             - pair.true_transform.from_reference(c))
        assert err <= 1.0, (name, err)


def test_affine_refines_a_rigid_start(pair, rigid):
    """Affine from the rigid result (what ``kind="affine"`` does by itself after a rigid run;
    a free affine from the centres traded rotation for shear: 9 degrees off)."""
    result = register_volumes(
        pair.ct, pair.mr, RegistrationSettings(kind="affine"),
        initial_reference_to_series=rigid.transform.matrix_from_reference)
    error = transform_difference(result.transform, pair.true_transform,
                                 list(pair.centroids_lps.values()))
    assert result.transform.kind == "affine"
    assert error["tre_mean_mm"] <= 1.5, error


def test_registration_can_be_cancelled_and_reports_progress(pair):
    token, seen = CancelToken(), []

    def progress(fraction, text):
        seen.append(fraction)
        if len(seen) > 3:
            token.cancel()

    with pytest.raises(CancelledError):
        register_volumes(pair.ct, pair.mr, progress=progress, cancel=token)
    assert seen[0] == 0.0 and all(0.0 <= f <= 1.0 for f in seen)


def test_a_blank_series_is_refused_with_a_clear_message(pair):
    blank = ImageVolume(np.zeros(pair.mr.geometry.shape_zyx, np.float32), pair.mr.geometry)
    with pytest.raises(BadInputError, match="moving series has a single intensity"):
        register_volumes(pair.ct, blank)
    tiny_grid = ImageGeometry((4, 40, 40), (1, 1, 1), (0, 0, 0))
    tiny = ImageVolume(np.random.default_rng(0).random(tiny_grid.shape_zyx), tiny_grid)
    with pytest.raises(BadInputError, match="too small to register"):
        register_volumes(pair.ct, tiny)


# ---------------------------------------------------------------------------- conventions
def test_series_transform_directions_agree_with_simpleitk():
    t = SeriesTransform(rigid_matrix((3, -5, 10), (4, 5, -6), (10, 20, 30)), kind="rigid")
    points = np.array([[0.0, 0.0, 0.0], [50.0, -20.0, 35.0]])
    there = np.array([t.reference_to_series_sitk().TransformPoint(tuple(p)) for p in points])
    np.testing.assert_allclose(t.from_reference(points), there, atol=1e-9)
    np.testing.assert_allclose(t.to_reference(there), points, atol=1e-9)
    assert t.rotation_deg() == pytest.approx(rotation_angle_deg(
        rigid_matrix((3, -5, 10), (0, 0, 0))[:3, :3]))
    back = SeriesTransform.from_json(t.to_json())
    np.testing.assert_array_equal(back.matrix_to_reference, t.matrix_to_reference)


def test_matrix_from_sitk_handles_composites_in_itk_order():
    euler = sitk.Euler3DTransform((1, 2, 3), 0.1, -0.2, 0.3, (4, 5, 6))
    shift = sitk.TranslationTransform(3, (7, -8, 9))
    composite = sitk.CompositeTransform([euler, shift])  # shift applied first
    m = matrix_from_sitk(composite)
    p = np.array([10.0, -3.0, 7.0])
    np.testing.assert_allclose(m[:3, :3] @ p + m[:3, 3], composite.TransformPoint(tuple(p)))


def test_bad_transforms_are_refused():
    scaled = np.diag([1.1, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="rotation plus a translation"):
        SeriesTransform(scaled, kind="rigid")
    with pytest.raises(ValueError, match="invertible"):
        SeriesTransform(np.diag([0.0, 1.0, 1.0, 1.0]), kind="affine")
    with pytest.raises(ValueError, match="needs its deformation"):
        SeriesTransform(kind="deformable")


def test_a_deformation_survives_its_text_form_and_acts_before_the_linear_part():
    grid = ImageGeometry((10, 10, 10), (5, 5, 5), (-20, -20, -20))
    bspline = sitk.BSplineTransformInitializer(grid.to_sitk(np.zeros(grid.shape_zyx)), [2, 2, 2])
    params = np.zeros(bspline.GetNumberOfParameters())
    params[: len(params) // 3] = 2.0  # every control point moves 2 mm along L
    bspline.SetParameters(tuple(params))
    text = deformation_to_text(bspline)
    linear = rigid_matrix((0, 0, 0), (0, 10, 0))
    t = SeriesTransform(linear, kind="deformable", deformation_tfm=text)
    p = np.array([1.0, 2.0, 3.0])
    # reference x -> D(x) = x + (2, 0, 0) -> inverse linear: minus (0, 10, 0)
    np.testing.assert_allclose(t.from_reference(p), p + [2.0, -10.0, 0.0], atol=1e-6)
    assert deformation_from_text(text).GetName() == "BSplineTransform"


def test_landmark_error_is_the_distance_in_the_reference_frame():
    truth = SeriesTransform(rigid_matrix((0, 0, 20), (5, 0, 0)), kind="rigid")
    ref = np.array([[0.0, 0.0, 0.0], [30.0, 10.0, -5.0], [-12.0, 40.0, 8.0]])
    ser = truth.from_reference(ref)
    assert landmark_error(truth, ref, ser).max_mm < 1e-9
    off = SeriesTransform(rigid_matrix((0, 0, 20), (5, 2, 0)), kind="rigid")
    err = landmark_error(off, ref, ser)
    assert err.mean_mm == pytest.approx(2.0) and err.n == 3
    with pytest.raises(BadInputError, match="landmarks need pairs"):
        landmark_error(truth, ref, ser[:2])


# ---------------------------------------------------------------------------- follow-up
FOLLOWUP_BSPLINE = dict(grid_spacing_mm=80.0, metric="correlation", iterations=200,
                        sampling_fraction=0.25, shrink_factors=(4, 2, 1),
                        smoothing_mm=(4.0, 2.0, 0.0))


def points_on_structures(labels, centroids_lps: dict) -> dict:
    """Per structure, its own voxel nearest its centroid (LPS mm): the centroid of a thin or
    hollow structure lies outside it (head phantom at 3 mm: veins 12.7 mm and arteries 19.1 mm
    from their nearest voxel, in uniform brain; scalp, skull and CSF at the head's centre), so
    a TRE there measures the field where no image feature of that structure constrains it."""
    out = {}
    for name, centroid in centroids_lps.items():
        voxels = labels.geometry.index_to_lps(np.argwhere(labels.mask(name))[:, ::-1])
        out[name] = voxels[np.argmin(np.linalg.norm(voxels - centroid, axis=1))]
    return out


@pytest.fixture(scope="module")
def followup_tre():
    """Centroid TRE (mm) of the 3 mm head follow-up CT (rigid 3/-2/4 deg, 5/-4/6 mm, and a
    known B-spline deformation, ~2.5 mm at the centroids): rigid alone, then rigid + B-spline;
    and the B-spline's TRE at :func:`points_on_structures`. Both CTs are rendered at 1 mm and
    averaged to 3 mm (``render_factor=3``): a follow-up interpolated from the 3 mm baseline
    carried trilinear errors the B-spline fitted (from the true rigid and the B-spline started
    at the truth, the optimiser left it for a better metric, ~1 mm off over the head). The
    truth itself is checked: the known chain maps each truth point back to 1e-9 mm, and the
    B-spline mesh represents the inverse deformation to 0.01 mm."""
    from surgiplan.registration.deformable import DeformableSettings, register_deformable
    from surgiplan.registration.synthetic import synthetic_followup

    fu = synthetic_followup("head", ct_spacing_mm=3.0, render_factor=3)
    names = list(fu.centroids_lps)
    points = np.array([fu.centroids_lps[n] for n in names])
    own = points_on_structures(fu.labels, fu.centroids_lps)
    on_structures = np.array([own[n] for n in names])
    # same modality (CT -> CT): the rigid stage on normalised correlation, as the B-spline. With
    # Mattes MI (32 bins) the rigid stage left the veins centroid 2.64 mm off and the B-spline
    # kept 2.18 mm of it; from correlation 1.47 -> 0.92 mm (from the true rigid: 0.88 mm)
    linear = register_volumes(fu.baseline, fu.followup,
                              RegistrationSettings(metric="correlation", max_samples=150_000))
    found = register_deformable(fu.baseline, fu.followup, linear.transform,
                                DeformableSettings(**FOLLOWUP_BSPLINE))

    def tre(t, at):
        return dict(zip(names, np.linalg.norm(t.from_reference(at) - fu.true_series_points(at),
                                              axis=1), strict=True))

    return tre(linear.transform, points), tre(found, points), tre(found, on_structures)


@pytest.mark.slow  # ~100 s CPU on one core (10 min at load 20)
def test_a_deformed_follow_up_is_recovered_better_than_rigid(followup_tre):
    """Measured (render_factor 3, rigid stage on correlation): rigid alone 0.85-1.47 mm,
    B-spline scalp/skull/CSF/brain 0.06, ventricles 0.30, arteries 0.31, tumour 0.36, veins
    0.92 mm at the centroids (with a Mattes MI rigid stage: veins 2.18, ventricles 0.54,
    arteries 0.49, tumour 0.47); at points on the structures scalp 1.08, skull 0.91, CSF 0.88,
    arteries 0.67, veins 0.98 mm (was 1.21, 1.00, 1.05, 1.20, 2.53)."""
    rigid, deformable, _ = followup_tre
    print("TRE at centroids", deformable, "at points on the structures", followup_tre[2])
    assert np.mean(list(deformable.values())) < 0.7 * np.mean(list(rigid.values()))
    for name in ("brain", "ventricles", "tumour", "scalp"):
        assert deformable[name] <= 1.0, (name, deformable)


@pytest.mark.slow
def test_a_deformed_follow_up_is_within_1_mm_at_every_centroid(followup_tre):
    """Issue 18 (a), follow-up: worst centroid the veins, 0.92 mm (in uniform brain, 12.7 mm
    from any vein voxel, so the field there is interpolated from the control points)."""
    _, deformable, _ = followup_tre
    assert max(deformable.values()) <= 1.0, deformable


def test_the_metric_follows_the_modalities():
    """Correlation only for CT to CT (calibrated HU); Mattes MI across modalities and for MR
    to MR, whose sequences may differ in contrast (the app and the CLI both ask metric_for)."""
    from types import SimpleNamespace

    from surgiplan.registration.engine import metric_for

    ct, mr = SimpleNamespace(modality="CT"), SimpleNamespace(modality="MR")
    assert metric_for(ct, SimpleNamespace(modality="ct")) == "correlation"
    assert metric_for(ct, mr) == metric_for(mr, ct) == metric_for(mr, mr) == "mattes"
    assert metric_for(ct, SimpleNamespace(modality=None)) == "mattes"
