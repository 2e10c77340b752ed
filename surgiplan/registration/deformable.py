"""Deformable (B-spline) registration of a follow-up series to the reference, after a linear
one (SimpleITK ``ImageRegistrationMethod``, LBFGS-B, multi-resolution), LPS mm.

The B-spline deformation ``D`` lives in the reference frame and acts before the linear part:
reference point ``x`` -> series point ``L^-1(D(x))``, with ``L`` the linear series -> reference
transform (see :class:`~surgiplan.model.series_transform.SeriesTransform`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import SimpleITK as sitk

from surgiplan.errors import CancelledError
from surgiplan.model.series_transform import SeriesTransform, deformation_to_text
from surgiplan.model.volume import ImageVolume
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.registration.engine import as_sitk_float


@dataclass(frozen=True)
class DeformableSettings:
    """B-spline control-point spacing (mm), metric, pyramid and iterations."""

    grid_spacing_mm: float = 40.0  # the finest control-point spacing
    mesh_levels: int = 1  # > 1: the mesh starts coarser and doubles at each pyramid level
    metric: str = "mattes"  # or "correlation" (same modality, e.g. CT follow-up)
    histogram_bins: int = 32
    sampling_fraction: float = 0.1
    shrink_factors: tuple[int, ...] = (2, 1)
    smoothing_mm: tuple[float, ...] = (2.0, 0.0)
    iterations: int = 60
    seed: int = 7


def register_deformable(
    fixed: ImageVolume, moving: ImageVolume, linear: SeriesTransform,
    settings: DeformableSettings | None = None, *,
    progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
) -> SeriesTransform:
    """Refine ``linear`` (series -> reference) with a B-spline deformation; returns a
    ``deformable`` transform with the metric before and after in its quality."""
    settings = settings or DeformableSettings()
    check(cancel)
    start = time.perf_counter()
    f_img, m_img = as_sitk_float(fixed), as_sitk_float(moving)
    extent = np.asarray(fixed.geometry.size) * np.asarray(fixed.geometry.spacing_mm)
    levels = len(settings.shrink_factors)
    coarse = 2 ** (min(settings.mesh_levels, levels) - 1)
    mesh = [max(1, round(e / (settings.grid_spacing_mm * coarse))) for e in extent]
    bspline = sitk.BSplineTransformInitializer(f_img, mesh, order=3)
    reg = sitk.ImageRegistrationMethod()
    if settings.metric == "mattes":
        reg.SetMetricAsMattesMutualInformation(settings.histogram_bins)
    else:
        reg.SetMetricAsCorrelation()
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(settings.sampling_fraction, settings.seed)
    reg.SetInterpolator(sitk.sitkLinear)
    if settings.mesh_levels > 1:  # LBFGS-B cannot follow a mesh that grows between levels
        reg.SetOptimizerAsGradientDescentLineSearch(
            learningRate=5.0, numberOfIterations=settings.iterations,
            convergenceMinimumValue=1e-5, convergenceWindowSize=5)
        reg.SetOptimizerScalesFromPhysicalShift()
    else:
        reg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5,
                                 numberOfIterations=settings.iterations,
                                 maximumNumberOfCorrections=5,
                                 maximumNumberOfFunctionEvaluations=1000)
    reg.SetShrinkFactorsPerLevel(list(settings.shrink_factors))
    reg.SetSmoothingSigmasPerLevel(list(settings.smoothing_mm))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetMovingInitialTransform(linear.reference_to_series_sitk())
    if coarse > 1:  # mesh doubled at each level after the first ``mesh_levels``
        refine = [1] * (levels - settings.mesh_levels) + [2 ** i for i in
                                                          range(settings.mesh_levels)]
        reg.SetInitialTransformAsBSpline(bspline, inPlace=True, scaleFactors=refine)
    else:
        reg.SetInitialTransform(bspline, inPlace=True)
    before = float(reg.MetricEvaluate(f_img, m_img))
    state = {"level": -1}

    def on_level() -> None:
        state["level"] += 1

    def on_iteration() -> None:
        done = max(state["level"], 0) + reg.GetOptimizerIteration() / settings.iterations
        report(progress, 0.9 * done / levels, f"deformable registration: level "
               f"{state['level'] + 1}/{levels}, metric {reg.GetMetricValue():.4f}")
        if cancel is not None and cancel.cancelled:
            reg.StopRegistration()

    reg.AddCommand(sitk.sitkMultiResolutionIterationEvent, on_level)
    reg.AddCommand(sitk.sitkIterationEvent, on_iteration)
    try:
        found = reg.Execute(f_img, m_img)
    finally:
        reg.RemoveAllCommands()
    if cancel is not None and cancel.cancelled:
        raise CancelledError("cancelled by the user")
    bspline = _only_bspline(found)
    after = float(reg.MetricEvaluate(f_img, m_img))
    seconds = time.perf_counter() - start
    report(progress, 1.0, f"deformable registration done in {seconds:.1f} s")
    return replace(
        linear, kind="deformable", deformation_tfm=deformation_to_text(bspline),
        method=f"{linear.method}; then B-spline {settings.grid_spacing_mm:g} mm, LBFGS-B, "
               f"SimpleITK {sitk.Version_VersionString()}",
        quality={**linear.quality, "deformable_metric_before": before,
                 "deformable_metric_after": after, "deformable_seconds": seconds,
                 "deformable_stop": reg.GetOptimizerStopConditionDescription()},
        settings={**linear.settings, "deformable": {
            "grid_spacing_mm": settings.grid_spacing_mm, "metric": settings.metric,
            "iterations": settings.iterations, "shrink_factors": list(settings.shrink_factors),
            "smoothing_mm": list(settings.smoothing_mm), "mesh_size": mesh,
            "mesh_levels": settings.mesh_levels}})


def _only_bspline(transform: sitk.Transform) -> sitk.Transform:
    """The B-spline a registration returned (SimpleITK may wrap it in a composite)."""
    if transform.GetName() == "CompositeTransform":
        composite = sitk.CompositeTransform(transform)
        return composite.GetNthTransform(composite.GetNumberOfTransforms() - 1).Downcast()
    return transform.Downcast()
