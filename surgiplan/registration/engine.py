"""Rigid and affine registration of two series of one patient (SimpleITK), LPS mm.

SimpleITK's ``ImageRegistrationMethod`` does the work: Mattes mutual information (so CT and MR
can be aligned), an Euler3D (rigid) or affine transform started at the images' centres of
intensity mass (moments) or geometric centres, conjugate-gradient line search with physical
shift scales, and a multi-resolution pyramid (shrink factors, smoothing in mm). (Regular-step
gradient descent stalled ~4 degrees off on the head phantom's near-spherical shells; the line
search does not: see tests/test_registration.py and bench/bench_registration.py.) The fixed image
is the twin's reference series; the result is the :class:`SeriesTransform` that places the
moving series in the reference frame.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import SimpleITK as sitk

from surgiplan.errors import BadInputError, CancelledError
from surgiplan.model.series_transform import SeriesTransform, matrix_from_sitk
from surgiplan.model.volume import ImageVolume
from surgiplan.progress import CancelToken, ProgressCallback, check, report

LinearKind = Literal["rigid", "affine"]
Initialisation = Literal["moments", "geometry", "identity"]


@dataclass(frozen=True)
class RegistrationSettings:
    """How to register; the defaults suit CT <-> MR of a head or trunk at 1-3 mm.

    ``sampling_fraction``: share of fixed voxels the metric samples per iteration (random,
    seeded by ``seed``), at most ``max_samples`` per
    pyramid level (so a 512x512x400 CT costs about what a 2 mm head does; the 1 mm head
    phantom: 40 000 samples and 24 bins, 18-26 s CPU, worst centroid 0.43 mm, against 150 000
    and 32 bins, 40.4 s, 0.89 mm; tried and not kept, issue 18 (d), CPU at load ~12: half the
    samples at the coarse levels 23.5 s, 1.05 mm; both images binned to the finest level
    before the pyramid 21.4 s, 1.08 mm; line-search epsilon 0.1 instead of 0.01 16.9 s,
    0.70 mm; against 18.8 s, 0.43 mm as set). ``smoothing_mm``:
    Gaussian sigma per pyramid level, mm. ``max_step_mm``: the optimiser's largest step in mm
    (rotations through physical shift scales; 0: ITK's estimate, about one voxel).
    ``iterations``: at most, per pyramid level. ``threads``: ITK threads (0: ITK's default).
    ``finest_mm``: the finest pyramid level's voxel size, mm (at least): on a grid finer than
    that every shrink factor is multiplied by ``round(finest_mm / smallest spacing)`` and the
    smoothing sigmas by the same factor (a 1 mm head registers on 2, 4 and 8 mm levels);
    0: the shrink factors as given.
    ``repeatable``: the same inputs and settings give the same transform, bit for bit: the
    metric's samples are seeded by ``seed``, the optimiser scales come from
    :func:`physical_shift_scales`, and ITK runs on one thread while the optimiser does (ITK's
    threads add the metric's partial sums in a timing-dependent order; over ~150 line-search
    iterations that drifted the result by up to 1 mm on the 3 mm head phantom). False: ITK's
    default threads (about twice as fast on 2 cores), results vary run to run.
    """

    kind: LinearKind = "rigid"
    metric: Literal["mattes", "correlation"] = "mattes"
    histogram_bins: int = 24
    sampling_fraction: float = 0.1
    max_samples: int = 40_000
    shrink_factors: tuple[int, ...] = (4, 2, 1)
    smoothing_mm: tuple[float, ...] = (2.0, 1.0, 0.0)
    iterations: int = 100
    max_step_mm: float = 0.0
    initialisation: Initialisation = "moments"
    seed: int = 7
    threads: int = 0
    finest_mm: float = 2.0
    repeatable: bool = True

    def __post_init__(self) -> None:
        if len(self.shrink_factors) != len(self.smoothing_mm) or not self.shrink_factors:
            raise ValueError("shrink_factors and smoothing_mm need one value per level")
        if not 0.0 < self.sampling_fraction <= 1.0:
            raise ValueError("sampling_fraction must be in (0, 1]")

    def for_grid(self, spacing_mm: Any) -> RegistrationSettings:
        """These settings with the pyramid scaled to a grid of ``spacing_mm`` (see
        ``finest_mm``)."""
        factor = max(1, round(self.finest_mm / float(min(spacing_mm)))) if self.finest_mm else 1
        if factor == 1:
            return self
        return replace(self, shrink_factors=tuple(f * factor for f in self.shrink_factors),
                       smoothing_mm=tuple(s * factor for s in self.smoothing_mm),
                       finest_mm=0.0)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["shrink_factors"] = list(self.shrink_factors)
        data["smoothing_mm"] = list(self.smoothing_mm)
        return data


@dataclass(frozen=True)
class RegistrationResult:
    """The transform found, with the metric before/after, iterations, time and stop reason."""

    transform: SeriesTransform
    metric_name: str
    metric_before: float
    metric_after: float
    iterations: int
    seconds: float
    stop_condition: str
    settings: RegistrationSettings = field(default_factory=RegistrationSettings)


def as_sitk_float(volume: ImageVolume) -> sitk.Image:
    """A volume as a float32 SimpleITK image on its LPS grid."""
    return volume.geometry.to_sitk(np.asarray(volume.array, dtype=np.float32))


def _check_inputs(fixed: ImageVolume, moving: ImageVolume) -> None:
    for name, v in (("fixed", fixed), ("moving", moving)):
        if min(v.geometry.size) < 8:
            raise BadInputError(f"the {name} series is too small to register "
                                f"({'x'.join(map(str, v.geometry.size))} voxels)",
                                action="Register volumes of at least 8 voxels along each axis")
        lo, hi = v.value_range()
        if not hi > lo:
            raise BadInputError(f"the {name} series has a single intensity ({lo:g}) and cannot "
                                "be registered", action="Choose a series that shows anatomy")


def initial_transform(fixed: sitk.Image, moving: sitk.Image, settings: RegistrationSettings,
                      initial: np.ndarray | None = None) -> sitk.Transform:
    """Start transform (reference -> series points): centred by moments or geometry, or the
    given 4x4 reference -> series matrix (e.g. a manual nudge)."""
    base: sitk.Transform = (sitk.Euler3DTransform() if settings.kind == "rigid"
                            else sitk.AffineTransform(3))
    if initial is not None:
        affine = sitk.AffineTransform(3)
        affine.SetMatrix(tuple(float(v) for v in initial[:3, :3].reshape(-1)))
        affine.SetTranslation(tuple(float(v) for v in initial[:3, 3]))
        if settings.kind == "rigid":
            euler = sitk.Euler3DTransform()
            euler.SetMatrix(affine.GetMatrix(), 1e-4)
            euler.SetTranslation(affine.GetTranslation())
            return euler
        return affine
    if settings.initialisation == "identity":
        return base
    if settings.initialisation == "geometry":
        return sitk.CenteredTransformInitializer(
            fixed, moving, base, sitk.CenteredTransformInitializerFilter.GEOMETRY)
    # moments of intensity above each image's minimum: CT air (-1000 HU) would weigh negative
    # and put the centre of mass on the wrong side of the head
    return sitk.CenteredTransformInitializer(
        _above_minimum(fixed), _above_minimum(moving), base,
        sitk.CenteredTransformInitializerFilter.MOMENTS)


def _above_minimum(image: sitk.Image) -> sitk.Image:
    """``image`` minus its minimum (so every weight is >= 0)."""
    stats = sitk.MinimumMaximumImageFilter()
    stats.Execute(image)
    return image - stats.GetMinimum()


def sampling_per_level(settings: RegistrationSettings, n_fixed_voxels: int) -> list[float]:
    """Metric sampling fraction per pyramid level: ``sampling_fraction``, capped so that no
    level samples more than ``max_samples`` voxels."""
    return [min(settings.sampling_fraction, settings.max_samples * f ** 3 / n_fixed_voxels)
            for f in settings.shrink_factors]


def physical_shift_scales(fixed: sitk.Image, transform: sitk.Transform,
                          step: float = 0.01) -> list[float]:
    """Optimiser scales as ITK's physical-shift estimator makes them for a matrix transform,
    without its random sampling: per parameter, the largest squared shift (mm^2) of the fixed
    image's eight corners when that parameter moves by ``step``, divided by ``step**2``
    (translations: 1; rotations: about the squared corner radius)."""
    size = np.asarray(fixed.GetSize(), dtype=float) - 1.0
    corners = np.array([fixed.TransformContinuousIndexToPhysicalPoint(
        tuple(float(v) for v in np.asarray(c) * size)) for c in np.ndindex(2, 2, 2)])
    start = np.asarray(transform.GetParameters(), dtype=float)
    base = np.array([transform.TransformPoint(tuple(c)) for c in corners])
    probe = sitk.Transform(transform)
    scales = []
    for i in range(len(start)):
        moved = start.copy()
        moved[i] += step
        probe.SetParameters(tuple(moved))
        shifted = np.array([probe.TransformPoint(tuple(c)) for c in corners])
        scales.append(float(np.max(np.sum((shifted - base) ** 2, axis=1))) / step ** 2)
    return scales


def configure(settings: RegistrationSettings, n_fixed_voxels: int = 0,
              scales: list[float] | None = None) -> sitk.ImageRegistrationMethod:
    """An ``ImageRegistrationMethod`` set up from ``settings`` (no images, no transform);
    ``n_fixed_voxels`` caps the metric's samples per level (0: no cap); ``scales``: the
    optimiser scales (:func:`physical_shift_scales`; None: ITK's estimator, unseeded)."""
    reg = sitk.ImageRegistrationMethod()
    if settings.threads > 0:
        reg.SetNumberOfThreads(settings.threads)
    if settings.metric == "mattes":
        reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=settings.histogram_bins)
    else:
        reg.SetMetricAsCorrelation()
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    if n_fixed_voxels:
        reg.SetMetricSamplingPercentagePerLevel(sampling_per_level(settings, n_fixed_voxels),
                                                settings.seed)
    else:
        reg.SetMetricSamplingPercentage(settings.sampling_fraction, settings.seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsConjugateGradientLineSearch(
        learningRate=1.0, numberOfIterations=settings.iterations, convergenceMinimumValue=1e-6,
        convergenceWindowSize=10, estimateLearningRate=reg.Once,
        maximumStepSizeInPhysicalUnits=settings.max_step_mm)
    if scales is None:
        reg.SetOptimizerScalesFromPhysicalShift()
    else:
        reg.SetOptimizerScales(scales)
    reg.SetShrinkFactorsPerLevel(list(settings.shrink_factors))
    reg.SetSmoothingSigmasPerLevel(list(settings.smoothing_mm))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    return reg


def _watch(reg: sitk.ImageRegistrationMethod, settings: RegistrationSettings,
           progress: ProgressCallback | None, cancel: CancelToken | None) -> dict[str, int]:
    """Progress per pyramid level and iteration; cancelling stops the optimiser."""
    state = {"level": -1, "iterations": 0}
    levels = len(settings.shrink_factors)

    def on_level() -> None:
        state["level"] += 1

    def on_iteration() -> None:
        state["iterations"] += 1
        done = (max(state["level"], 0) + reg.GetOptimizerIteration() / settings.iterations)
        report(progress, 0.05 + 0.9 * done / levels,
               f"registering: level {state['level'] + 1}/{levels}, "
               f"metric {reg.GetMetricValue():.4f}")
        if cancel is not None and cancel.cancelled:
            reg.StopRegistration()

    reg.AddCommand(sitk.sitkMultiResolutionIterationEvent, on_level)
    reg.AddCommand(sitk.sitkIterationEvent, on_iteration)
    return state


def _evaluator(settings: RegistrationSettings, n_fixed_voxels: int
               ) -> sitk.ImageRegistrationMethod:
    """A method that evaluates the metric with at most ``max_samples`` samples."""
    fraction = min(settings.sampling_fraction, settings.max_samples / max(n_fixed_voxels, 1))
    return configure(replace(settings, sampling_fraction=fraction))


def metric_value(reg: sitk.ImageRegistrationMethod, fixed: sitk.Image, moving: sitk.Image,
                 transform: sitk.Transform) -> float:
    """The configured metric of ``transform`` on the full-resolution images."""
    reg.SetInitialTransform(transform, inPlace=False)
    return float(reg.MetricEvaluate(fixed, moving))


def metric_for(fixed: Any, moving: Any) -> Literal["mattes", "correlation"]:
    """The similarity metric for two images (anything with a DICOM ``modality``):
    normalised correlation for CT to CT (calibrated HU: a follow-up matches up to noise; with
    Mattes the rigid stage left a follow-up phantom's vein centroid 2.64 mm off against 1.47 mm,
    and the B-spline kept 2.18 vs 0.92 mm), Mattes mutual information otherwise (CT to MR, and
    MR to MR, whose sequences may differ in contrast: T1, T2, FLAIR)."""
    same_ct = all(str(getattr(x, "modality", "") or "").upper() == "CT" for x in (fixed, moving))
    return "correlation" if same_ct else "mattes"


def register_volumes(
    fixed: ImageVolume,
    moving: ImageVolume,
    settings: RegistrationSettings | None = None,
    *,
    initial_reference_to_series: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> RegistrationResult:
    """Register ``moving`` (a series) to ``fixed`` (the reference), rigid or affine.

    Returns the series -> reference transform with its metric before (at the start transform)
    and after. Mattes MI values are negative; lower is better. Raises ``CancelledError`` when
    ``cancel`` is set during the run, ``BadInputError`` for volumes that cannot be registered.
    """
    settings = settings or RegistrationSettings()
    _check_inputs(fixed, moving)
    check(cancel)
    start = time.perf_counter()
    if settings.kind == "affine" and initial_reference_to_series is None:
        # rigid first: a free affine from the centres trades rotation for shear on round anatomy
        rigid = register_volumes(fixed, moving, replace(settings, kind="rigid"), cancel=cancel,
                                 progress=lambda f, t: report(progress, 0.5 * f, t))
        initial_reference_to_series = rigid.transform.matrix_from_reference
        progress = _second_half(progress)
    report(progress, 0.0, "registering: initialising")
    f_img, m_img = as_sitk_float(fixed), as_sitk_float(moving)
    init = initial_transform(f_img, m_img, settings, initial_reference_to_series)
    n_voxels = fixed.geometry.n_voxels
    pyramid = settings.for_grid(fixed.geometry.spacing_mm)
    # the metric before/after on the images binned to the finest level (what was optimised;
    # on the full 1 mm grid ITK's moving-image gradient alone cost ~2 s per evaluation)
    bins = [pyramid.shrink_factors[-1]] * 3
    f_eval, m_eval = sitk.BinShrink(f_img, bins), sitk.BinShrink(m_img, bins)
    n_eval = int(np.prod(f_eval.GetSize()))
    before = metric_value(_evaluator(settings, n_eval), f_eval, m_eval, init)
    reg = configure(pyramid, n_voxels, physical_shift_scales(f_img, init))
    reg.SetInitialTransform(init, inPlace=False)
    state = _watch(reg, pyramid, progress, cancel)
    try:
        with _itk_threads(1 if settings.repeatable else 0):
            found = reg.Execute(f_img, m_img)
    finally:
        reg.RemoveAllCommands()
    if cancel is not None and cancel.cancelled:
        raise CancelledError("cancelled by the user")
    after = metric_value(_evaluator(settings, n_eval), f_eval, m_eval, found)
    seconds = time.perf_counter() - start
    reference_to_series = matrix_from_sitk(found)
    metric_name = ("Mattes mutual information" if settings.metric == "mattes"
                   else "normalised correlation")
    transform = SeriesTransform(
        matrix_to_reference=_clean_rigid(np.linalg.inv(reference_to_series), settings.kind),
        kind=settings.kind,
        method=(f"registration: {settings.kind}, {metric_name}, "
                f"SimpleITK {sitk.Version_VersionString()}"),
        quality={"metric": metric_name, "metric_before": before, "metric_after": after,
                 "iterations": state["iterations"]},
        settings={**settings.to_json(), "shrink_factors_used": list(pyramid.shrink_factors),
                  "smoothing_mm_used": list(pyramid.smoothing_mm),
                  "fixed_series_uid": fixed.series_uid,
                  "moving_series_uid": moving.series_uid},
    )
    report(progress, 1.0, f"registered in {seconds:.1f} s")
    return RegistrationResult(
        transform=transform, metric_name=metric_name, metric_before=before, metric_after=after,
        iterations=state["iterations"], seconds=seconds,
        stop_condition=reg.GetOptimizerStopConditionDescription(), settings=settings)


@contextmanager
def _itk_threads(count: int) -> Iterator[None]:
    """ITK's default thread count set to ``count`` for the block (0: left as it is). The
    registration's metric takes its threads from this global default, not from the method."""
    if count <= 0:
        yield
        return
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(count)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)


def _second_half(progress: ProgressCallback | None) -> ProgressCallback | None:
    if progress is None:
        return None
    return lambda fraction, text: report(progress, 0.5 + 0.5 * fraction, text)


def _clean_rigid(matrix: np.ndarray, kind: str) -> np.ndarray:
    """Project a numerically near-rigid matrix onto the nearest rotation (for ``rigid``)."""
    if kind != "rigid":
        return matrix
    u, _, vt = np.linalg.svd(matrix[:3, :3])
    out = matrix.copy()
    out[:3, :3] = u @ vt
    return out
