"""Moving images and structures between a twin's series through their transforms (LPS mm).

A series' image shown on the reference grid (fused display) is sampled at each reference voxel
centre ``x`` from the series at ``T^-1(x)`` (deformation, then linear). A structure drawn on the
reference carried onto a series grid is sampled at each series voxel ``y`` from the reference
at ``T(y)`` (linear, then the inverse deformation). Labels use nearest-neighbour sampling of a
binary mask (so no label is ever blended), images trilinear.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import SimpleITK as sitk

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.series_transform import SeriesTransform, deformation_from_text
from surgiplan.processing.resample import resample_to_grid
from surgiplan.progress import CancelToken, ProgressCallback

Sampling = Literal["linear", "nearest"]


def _affine(matrix: np.ndarray) -> sitk.AffineTransform:
    tx = sitk.AffineTransform(3)
    tx.SetMatrix(tuple(float(v) for v in matrix[:3, :3].reshape(-1)))
    tx.SetTranslation(tuple(float(v) for v in matrix[:3, 3]))
    return tx


def series_to_reference_sitk(transform: SeriesTransform, reference: ImageGeometry
                             ) -> sitk.Transform:
    """SimpleITK transform mapping series points to reference points (for resampling the
    reference onto a series grid). A deformation is inverted numerically on the reference
    grid (``sitk.InvertDisplacementField``)."""
    linear = _affine(transform.matrix_to_reference)
    if transform.deformation_tfm is None:
        return linear
    deformation = deformation_from_text(transform.deformation_tfm)
    field = sitk.TransformToDisplacementField(
        deformation, sitk.sitkVectorFloat64, [int(n) for n in reference.size],
        reference.origin_lps, reference.spacing_mm,
        tuple(float(v) for v in reference.direction.reshape(-1)))
    inverse = sitk.InvertDisplacementField(field, maximumNumberOfIterations=30,
                                           maxErrorToleranceThreshold=0.05,
                                           meanErrorToleranceThreshold=0.001,
                                           enforceBoundaryCondition=True)
    # a CompositeTransform applies the transform added last first: linear, then D^-1
    return sitk.CompositeTransform([sitk.DisplacementFieldTransform(inverse), linear])


def _resample(array: np.ndarray, source: ImageGeometry, target: ImageGeometry,
              transform: sitk.Transform, sampling: Sampling, default_value: float,
              progress: ProgressCallback | None, cancel: CancelToken | None) -> np.ndarray:
    return resample_to_grid(array, source, target, interpolation=sampling,
                            default_value=default_value, transform=transform,
                            progress=progress, cancel=cancel)


def series_on_reference(
    array: np.ndarray, series: ImageGeometry, transform: SeriesTransform,
    reference: ImageGeometry, *, sampling: Sampling = "linear", default_value: float = 0.0,
    progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
) -> np.ndarray:
    """A series' voxels (image or mask, on ``series``) sampled on the reference grid."""
    return _resample(array, series, reference, transform.reference_to_series_sitk(), sampling,
                     default_value, progress, cancel)


def reference_on_series(
    array: np.ndarray, reference: ImageGeometry, transform: SeriesTransform,
    series: ImageGeometry, *, sampling: Sampling = "nearest", default_value: float = 0.0,
    progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
) -> np.ndarray:
    """Reference voxels (a structure mask by default, on ``reference``) sampled on a series'
    grid."""
    return _resample(array, reference, series, series_to_reference_sitk(transform, reference),
                     sampling, default_value, progress, cancel)
