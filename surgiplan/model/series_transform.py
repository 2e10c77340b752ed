"""The transform that places one series of a twin in the twin's reference frame (LPS mm).

Sign convention: :attr:`SeriesTransform.matrix_to_reference` is a 4x4 homogeneous matrix that
maps a point given in the series' own LPS frame (its scanner coordinates, mm) to the same
anatomical point in the twin's reference LPS frame (mm). This is the direction of the DICOM
Spatial Registration object's Frame of Reference Transformation Matrix (registered frame ->
registration frame). ITK's registration result maps the other way (fixed = reference point ->
moving = series point) and is what resampling a series onto a reference grid needs; both are
available. An optional deformation (ITK B-spline, text form) acts in the reference frame
before the linear part: ``reference point x -> series point = inverse(matrix)(D(x))``.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from surgiplan import __version__

if TYPE_CHECKING:
    import SimpleITK as sitk

Kind = Literal["identity", "rigid", "affine", "deformable"]
KINDS: tuple[str, ...] = ("identity", "rigid", "affine", "deformable")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _checked_matrix(matrix: Any) -> np.ndarray:
    m = np.array(matrix, dtype=float).reshape(4, 4)
    if not np.all(np.isfinite(m)) or not np.allclose(m[3], (0, 0, 0, 1)):
        raise ValueError("a transform matrix must be 4x4 finite with last row 0 0 0 1")
    if abs(np.linalg.det(m[:3, :3])) < 1e-6:
        raise ValueError("a transform matrix must be invertible")
    m.setflags(write=False)
    return m


@dataclass(frozen=True)
class SeriesTransform:
    """Series LPS (mm) -> reference LPS (mm), with how it was obtained and how good it is.

    ``method``: what made it ("identity: same frame of reference", "registration: ...",
    "manual", "dicom-sro"). ``quality``: the similarity metric (name, value before and after)
    and, when landmark pairs were given, their target registration error in mm (mean, max,
    n). ``deformation_tfm``: ITK transform-file text of a deformation in the reference frame
    (reference -> reference, mm), or None.
    """

    matrix_to_reference: np.ndarray = field(default_factory=lambda: np.eye(4))
    kind: str = "identity"
    method: str = "identity: the series shares the reference frame"
    quality: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    software: str = f"SurgiPlan {__version__}"
    created_utc: str = field(default_factory=_now)
    deformation_tfm: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "matrix_to_reference", _checked_matrix(self.matrix_to_reference))
        if self.kind not in KINDS:
            raise ValueError(f"transform kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "rigid" and not is_rigid(self.matrix_to_reference):
            raise ValueError("a rigid transform must be a rotation plus a translation")
        if (self.kind == "deformable") != (self.deformation_tfm is not None):
            raise ValueError("a deformable transform needs its deformation, and only it has one")

    # ---------------------------------------------------------------- geometry
    @property
    def matrix_from_reference(self) -> np.ndarray:
        """4x4 inverse: reference LPS (mm) -> series LPS (mm), linear part only."""
        return np.linalg.inv(self.matrix_to_reference)

    def to_reference(self, points_series_lps: Any) -> np.ndarray:
        """Series LPS points ``(..., 3)`` (mm) -> reference LPS (linear part; a deformation
        has no closed-form inverse, so it is not applied here)."""
        p = np.asarray(points_series_lps, dtype=float)
        m = self.matrix_to_reference
        return p @ m[:3, :3].T + m[:3, 3]

    def from_reference(self, points_reference_lps: Any) -> np.ndarray:
        """Reference LPS points ``(..., 3)`` (mm) -> series LPS (deformation, then linear)."""
        p = np.asarray(points_reference_lps, dtype=float)
        if self.deformation_tfm is not None:
            tx = deformation_from_text(self.deformation_tfm)
            p = np.array([tx.TransformPoint(tuple(map(float, q))) for q in p.reshape(-1, 3)]
                         ).reshape(p.shape)
        m = self.matrix_from_reference
        return p @ m[:3, :3].T + m[:3, 3]

    def rotation_deg(self) -> float:
        """Rotation angle (degrees) of the linear part's closest rotation."""
        return rotation_angle_deg(self.matrix_to_reference[:3, :3])

    def translation_mm(self) -> float:
        return float(np.linalg.norm(self.matrix_to_reference[:3, 3]))

    def with_quality(self, **quality: Any) -> SeriesTransform:
        return _replace(self, quality={**self.quality, **quality})

    # ---------------------------------------------------------------- SimpleITK bridge
    def reference_to_series_sitk(self) -> sitk.Transform:
        """The SimpleITK transform that maps reference points to series points (what
        ``sitk.Resample`` of the series onto a reference grid needs)."""
        import SimpleITK as sitk

        inverse = self.matrix_from_reference
        linear = sitk.AffineTransform(3)
        linear.SetMatrix(tuple(float(v) for v in inverse[:3, :3].reshape(-1)))
        linear.SetTranslation(tuple(float(v) for v in inverse[:3, 3]))
        if self.deformation_tfm is None:
            return linear
        # CompositeTransform applies the transform added last first
        composite = sitk.CompositeTransform([linear, deformation_from_text(self.deformation_tfm)])
        return composite

    # ---------------------------------------------------------------- JSON
    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "method": self.method,
            "matrix_to_reference": [float(v) for v in self.matrix_to_reference.reshape(-1)],
            "quality": dict(self.quality), "settings": dict(self.settings),
            "software": self.software, "created_utc": self.created_utc,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], deformation_tfm: str | None = None
                  ) -> SeriesTransform:
        return cls(
            matrix_to_reference=np.asarray(data["matrix_to_reference"], dtype=float),
            kind=str(data["kind"]), method=str(data.get("method", "")),
            quality=dict(data.get("quality", {})), settings=dict(data.get("settings", {})),
            software=str(data.get("software", "")), created_utc=str(data.get("created_utc", "")),
            deformation_tfm=deformation_tfm,
        )


def _replace(t: SeriesTransform, **changes: Any) -> SeriesTransform:
    from dataclasses import replace

    return replace(t, **changes)


def is_rigid(matrix: np.ndarray, *, tol: float = 1e-4) -> bool:
    r = np.asarray(matrix, dtype=float)[:3, :3]
    return bool(np.allclose(r.T @ r, np.eye(3), atol=tol) and np.linalg.det(r) > 0)


def rotation_angle_deg(rotation: np.ndarray) -> float:
    """Angle (degrees, 0..180) of a 3x3 rotation (the closest one for a near-rotation)."""
    u, _, vt = np.linalg.svd(np.asarray(rotation, dtype=float))
    r = u @ vt
    cos = (np.trace(r) - 1.0) / 2.0
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def rigid_matrix(rotation_deg_xyz: Any, translation_mm: Any,
                 centre_lps: Any = (0.0, 0.0, 0.0)) -> np.ndarray:
    """4x4 rigid matrix: rotations about L, P, S (degrees, applied in that order, right-hand
    rule) about ``centre_lps``, then ``translation_mm`` (LPS)."""
    ax, ay, az = np.radians(np.asarray(rotation_deg_xyz, dtype=float))
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    r = rz @ ry @ rx
    c = np.asarray(centre_lps, dtype=float)
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = c - r @ c + np.asarray(translation_mm, dtype=float)
    return m


def matrix_from_sitk(transform: sitk.Transform) -> np.ndarray:
    """4x4 matrix of a linear SimpleITK transform (Euler3D, Affine, Versor...: matrix, centre,
    translation), mapping its input points to its output points (mm)."""
    import SimpleITK as sitk

    flat = sitk.CompositeTransform(transform)
    flat.FlattenTransform()
    m = np.eye(4)
    for n in range(flat.GetNumberOfTransforms()):
        part = flat.GetNthTransform(n).Downcast()
        if part.GetName() == "TranslationTransform":
            step = np.eye(4)
            step[:3, 3] = part.GetOffset()
        elif hasattr(part, "GetMatrix"):
            step = np.eye(4)
            step[:3, :3] = np.asarray(part.GetMatrix()).reshape(3, 3)
            centre = np.asarray(part.GetCenter())
            step[:3, 3] = np.asarray(part.GetTranslation()) + centre - step[:3, :3] @ centre
        else:
            raise ValueError(f"{part.GetName()} is not a linear transform")
        m = m @ step  # the composite applies its last transform first
    return m


def deformation_to_text(transform: sitk.Transform) -> str:
    """ITK transform-file text of a SimpleITK transform (the format 3D Slicer reads)."""
    import SimpleITK as sitk

    fd, name = tempfile.mkstemp(suffix=".tfm")
    os.close(fd)
    try:
        sitk.WriteTransform(transform, name)
        with open(name, encoding="ascii") as handle:
            return handle.read()
    finally:
        os.unlink(name)


def deformation_from_text(text: str) -> sitk.Transform:
    """The SimpleITK transform stored in ITK transform-file text."""
    import SimpleITK as sitk

    fd, name = tempfile.mkstemp(suffix=".tfm")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text)
        transform = sitk.ReadTransform(name)
    finally:
        os.unlink(name)
    if transform.GetName() == "CompositeTransform":
        composite = sitk.CompositeTransform(transform)
        if composite.GetNumberOfTransforms() == 1:
            return composite.GetNthTransform(0).Downcast()
    return transform.Downcast()
