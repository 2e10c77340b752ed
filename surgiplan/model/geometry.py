"""Image grid geometry in DICOM patient LPS millimetres.

Conventions used throughout SurgiPlan:

* ``size`` is ``(nx, ny, nz)``: columns, rows, slices.
* Voxel arrays are numpy arrays of shape ``(nz, ny, nx)`` (C order, the SimpleITK layout), so
  ``array[k, j, i]`` is the voxel at index ``(i, j, k)``.
* ``direction`` is a 3x3 matrix whose *columns* are the unit vectors of the image axes i, j, k
  in LPS (DICOM ImageOrientationPatient row direction, column direction, slice normal).
* ``origin_lps`` is the LPS position (mm) of the *centre* of voxel (0, 0, 0).
* ``index -> LPS``: ``p = origin + direction @ (spacing * ijk)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import SimpleITK as sitk


def _as_vec3(values: Any, name: str) -> tuple[float, float, float]:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be 3 finite numbers, got {values!r}")
    return (float(arr[0]), float(arr[1]), float(arr[2]))


@dataclass(frozen=True)
class ImageGeometry:
    """A regular voxel grid placed in patient LPS space (mm)."""

    size: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_lps: tuple[float, float, float]
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        size = tuple(int(n) for n in self.size)
        if len(size) != 3 or min(size) < 1:
            raise ValueError(f"size must be 3 positive integers, got {self.size!r}")
        spacing = _as_vec3(self.spacing_mm, "spacing_mm")
        if min(spacing) <= 0:
            raise ValueError(f"spacing_mm must be positive, got {spacing}")
        direction = np.array(self.direction, dtype=float).reshape(3, 3)
        if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
            raise ValueError("direction must be orthonormal (columns are unit image axes in LPS)")
        direction.setflags(write=False)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "spacing_mm", spacing)
        object.__setattr__(self, "origin_lps", _as_vec3(self.origin_lps, "origin_lps"))
        object.__setattr__(self, "direction", direction)

    # ---------------------------------------------------------------- basic properties
    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        """Numpy array shape ``(nz, ny, nx)`` of a volume on this grid."""
        return (self.size[2], self.size[1], self.size[0])

    @property
    def voxel_volume_mm3(self) -> float:
        sx, sy, sz = self.spacing_mm
        return sx * sy * sz

    @property
    def n_voxels(self) -> int:
        return self.size[0] * self.size[1] * self.size[2]

    @property
    def index_to_lps_matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix mapping (i, j, k, 1) to (L, P, S, 1) in mm."""
        m = np.eye(4)
        m[:3, :3] = self.direction * np.asarray(self.spacing_mm)[None, :]
        m[:3, 3] = self.origin_lps
        return m

    @property
    def lps_to_index_matrix(self) -> np.ndarray:
        """4x4 inverse of :attr:`index_to_lps_matrix`."""
        return np.linalg.inv(self.index_to_lps_matrix)

    # ---------------------------------------------------------------- conversions
    def index_to_lps(self, ijk: Any) -> np.ndarray:
        """Continuous voxel indices ``(..., 3)`` in (i, j, k) order -> LPS points in mm."""
        ijk = np.asarray(ijk, dtype=float)
        m = self.index_to_lps_matrix
        return ijk @ m[:3, :3].T + m[:3, 3]

    def lps_to_index(self, points_lps: Any) -> np.ndarray:
        """LPS points ``(..., 3)`` in mm -> continuous voxel indices (i, j, k)."""
        p = np.asarray(points_lps, dtype=float) - np.asarray(self.origin_lps)
        return (p @ self.direction) / np.asarray(self.spacing_mm)

    def contains_lps(self, points_lps: Any) -> np.ndarray:
        """True where a point lies within the grid's voxel extent (half a voxel past centres)."""
        ijk = self.lps_to_index(points_lps)
        upper = np.asarray(self.size) - 0.5
        return np.all((ijk >= -0.5) & (ijk <= upper), axis=-1)

    def corners_lps(self) -> np.ndarray:
        """The 8 outer corners of the grid's voxel extent, shape (8, 3), LPS mm."""
        lo = -0.5
        hi = np.asarray(self.size) - 0.5
        corners = np.array(
            [[x, y, z] for x in (lo, hi[0]) for y in (lo, hi[1]) for z in (lo, hi[2])]
        )
        return self.index_to_lps(corners)

    def bounds_lps(self) -> np.ndarray:
        """Axis-aligned LPS bounding box of the voxel extent: ``[[minL, minP, minS], [max...]]``."""
        c = self.corners_lps()
        return np.stack([c.min(axis=0), c.max(axis=0)])

    def slice_centre_lps(self) -> np.ndarray:
        """LPS position of the grid centre (mm)."""
        return self.index_to_lps((np.asarray(self.size) - 1) / 2.0)

    # ---------------------------------------------------------------- comparison
    def same_grid(self, other: ImageGeometry, *, tol_mm: float = 1e-3) -> bool:
        """True if both grids have the same size and their voxel centres coincide within tol."""
        if self.size != other.size:
            return False
        return bool(np.allclose(self.corners_lps(), other.corners_lps(), atol=tol_mm))

    def overlaps(self, other: ImageGeometry) -> bool:
        """True if the axis-aligned LPS bounding boxes of the two grids intersect."""
        a, b = self.bounds_lps(), other.bounds_lps()
        return bool(np.all(a[0] <= b[1]) and np.all(b[0] <= a[1]))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImageGeometry):
            return NotImplemented
        return (
            self.size == other.size
            and np.allclose(self.spacing_mm, other.spacing_mm, rtol=0, atol=1e-6)
            and np.allclose(self.origin_lps, other.origin_lps, rtol=0, atol=1e-6)
            and np.allclose(self.direction, other.direction, rtol=0, atol=1e-6)
        )

    def __hash__(self) -> int:
        return hash((self.size, tuple(np.round(self.spacing_mm, 6))))

    # ---------------------------------------------------------------- serialisation
    def to_json(self) -> dict[str, Any]:
        """JSON form: size, spacing_mm, origin_lps, direction (9 numbers, row-major)."""
        return {
            "size": list(self.size),
            "spacing_mm": [float(v) for v in self.spacing_mm],
            "origin_lps": [float(v) for v in self.origin_lps],
            "direction": [float(v) for v in self.direction.reshape(-1)],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageGeometry:
        return cls(
            size=tuple(data["size"]),
            spacing_mm=tuple(data["spacing_mm"]),
            origin_lps=tuple(data["origin_lps"]),
            direction=np.asarray(data["direction"], dtype=float).reshape(3, 3),
        )

    def with_size(self, size: tuple[int, int, int]) -> ImageGeometry:
        return ImageGeometry(size, self.spacing_mm, self.origin_lps, self.direction)

    # ---------------------------------------------------------------- SimpleITK bridge
    def apply_to_sitk(self, image: sitk.Image) -> sitk.Image:
        """Set this grid's spacing, origin and direction on a SimpleITK image (LPS, like ITK)."""
        image.SetSpacing(self.spacing_mm)
        image.SetOrigin(self.origin_lps)
        image.SetDirection(tuple(float(v) for v in self.direction.reshape(-1)))
        return image

    @classmethod
    def from_sitk(cls, image: sitk.Image) -> ImageGeometry:
        """Geometry of a 3D SimpleITK image (ITK's physical space is LPS)."""
        return cls(
            size=tuple(image.GetSize()),
            spacing_mm=tuple(image.GetSpacing()),
            origin_lps=tuple(image.GetOrigin()),
            direction=np.asarray(image.GetDirection(), dtype=float).reshape(3, 3),
        )

    def to_sitk(self, array: np.ndarray) -> sitk.Image:
        """Wrap a ``(nz, ny, nx)`` array as a SimpleITK image on this grid (copies the data)."""
        import SimpleITK as sitk

        if array.shape != self.shape_zyx:
            raise ValueError(f"array shape {array.shape} does not match grid {self.shape_zyx}")
        return self.apply_to_sitk(sitk.GetImageFromArray(np.ascontiguousarray(array)))


def orientation_letters(vector_lps: Any) -> str:
    """Patient-orientation letters a unit LPS vector points towards, strongest first.

    Example: ``(0, 0, 1) -> "S"``; ``(0.7, -0.7, 0) -> "LA"``. Components under 0.2 are dropped.
    """
    v = np.asarray(vector_lps, dtype=float)
    names = (("R", "L"), ("A", "P"), ("I", "S"))
    order = np.argsort(-np.abs(v))
    letters = [names[a][1 if v[a] > 0 else 0] for a in order if abs(v[a]) >= 0.2]
    return "".join(letters)
