"""How good a registration is: landmark target registration error (TRE) and the difference
between two transforms, in mm and degrees (LPS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.series_transform import SeriesTransform, rotation_angle_deg


@dataclass(frozen=True)
class LandmarkError:
    """TRE of landmark pairs (mm): per pair, mean, max and the count."""

    per_pair_mm: tuple[float, ...]
    mean_mm: float
    max_mm: float

    @property
    def n(self) -> int:
        return len(self.per_pair_mm)

    def to_json(self) -> dict[str, Any]:
        return {"tre_mean_mm": self.mean_mm, "tre_max_mm": self.max_mm, "landmark_pairs": self.n}


def landmark_error(transform: SeriesTransform, reference_lps: Any, series_lps: Any
                   ) -> LandmarkError:
    """TRE of landmark pairs: ``reference_lps[i]`` (reference frame) and ``series_lps[i]`` (the
    same anatomical point picked in the series' own frame), ``(n, 3)`` mm each. The error of a
    pair is the distance, in the reference frame, between the reference point and the series
    point carried there by ``transform``."""
    ref = np.asarray(reference_lps, dtype=float).reshape(-1, 3)
    ser = np.asarray(series_lps, dtype=float).reshape(-1, 3)
    if len(ref) != len(ser) or len(ref) == 0:
        raise BadInputError(f"landmarks need pairs: {len(ref)} reference and {len(ser)} series "
                            "points", action="Place the same number of points on both series")
    errors = np.linalg.norm(transform.to_reference(ser) - ref, axis=1)
    return LandmarkError(tuple(float(e) for e in errors), float(errors.mean()),
                         float(errors.max()))


def transform_difference(estimate: SeriesTransform, truth: SeriesTransform,
                         points_reference_lps: Any) -> dict[str, float]:
    """How far ``estimate`` is from ``truth``: TRE at the given reference points (mm, where
    each carries a reference point into the series frame), the residual rotation (degrees) and
    the residual translation at the first point (mm)."""
    pts = np.asarray(points_reference_lps, dtype=float).reshape(-1, 3)
    errors = np.linalg.norm(estimate.from_reference(pts) - truth.from_reference(pts), axis=1)
    residual = estimate.matrix_from_reference @ truth.matrix_to_reference
    return {"tre_mean_mm": float(errors.mean()), "tre_max_mm": float(errors.max()),
            "rotation_error_deg": rotation_angle_deg(residual[:3, :3]),
            "points": float(len(pts))}


def rigid_from_landmarks(reference_lps: Any, series_lps: Any) -> SeriesTransform:
    """The rigid series -> reference transform that best matches landmark pairs (least squares,
    SimpleITK's landmark initializer with a versor rigid transform); at least 3 pairs not on one
    line."""
    import SimpleITK as sitk

    from surgiplan.model.series_transform import matrix_from_sitk

    ref = np.asarray(reference_lps, dtype=float).reshape(-1, 3)
    ser = np.asarray(series_lps, dtype=float).reshape(-1, 3)
    if len(ref) != len(ser) or len(ref) < 3:
        raise BadInputError(f"a landmark alignment needs at least 3 pairs ({len(ref)} reference, "
                            f"{len(ser)} series points)", action="Place more landmark pairs")
    centred = ref - ref.mean(axis=0)
    if np.linalg.matrix_rank(centred, tol=1e-3) < 2:
        raise BadInputError("the landmarks lie on one line and cannot fix a rotation",
                            action="Place landmarks spread over the anatomy")
    found = sitk.LandmarkBasedTransformInitializer(
        sitk.VersorRigid3DTransform(), [float(v) for v in ref.reshape(-1)],
        [float(v) for v in ser.reshape(-1)])
    reference_to_series = matrix_from_sitk(found)
    return SeriesTransform(np.linalg.inv(reference_to_series), kind="rigid",
                           method=f"landmarks: {len(ref)} pairs, least squares rigid")
