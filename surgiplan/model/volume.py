"""An image volume: voxel array + geometry + the facts a viewer and a report need."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import numpy as np

from surgiplan.model.geometry import ImageGeometry


@dataclass
class ImageVolume:
    """A 3D scalar image on a regular LPS grid.

    ``array`` has shape ``(nz, ny, nx)``. For CT the values are Hounsfield units (rescale
    slope/intercept already applied). ``warnings`` are human sentences about how the volume was
    built (resampled tilt, interpolated missing slice...): they are part of the result and must
    be shown to the user, never only logged.
    """

    array: np.ndarray
    geometry: ImageGeometry
    modality: str = "OT"
    description: str = ""
    series_uid: str = ""
    units: str = ""
    window_center: float | None = None
    window_width: float | None = None
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(f"volume array must be 3D, got shape {self.array.shape}")
        if self.array.shape != self.geometry.shape_zyx:
            raise ValueError(
                f"array shape {self.array.shape} does not match geometry {self.geometry.shape_zyx}"
            )
        if not self.units:
            self.units = "HU" if self.modality == "CT" else ""

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    def value_range(self) -> tuple[float, float]:
        return float(self.array.min()), float(self.array.max())

    def default_window(self) -> tuple[float, float]:
        """(centre, width): the file's WindowCenter/Width if present, else from the histogram.

        The histogram window spans the 1st..99th percentile of a subsample of voxels.
        """
        if self.window_center is not None and self.window_width and self.window_width > 0:
            return float(self.window_center), float(self.window_width)
        sample = self.array.reshape(-1)[:: max(1, self.array.size // 200_000)]
        lo, hi = np.percentile(sample, [1.0, 99.0])
        if hi <= lo:
            hi = lo + 1.0
        return float((lo + hi) / 2.0), float(hi - lo)


class LazyImageVolume(ImageVolume):
    """An :class:`ImageVolume` whose voxels are read on first use of ``array``.

    ``load()`` returns the ``(nz, ny, nx)`` array of ``dtype`` (and refuses, with a one-line
    error, a source that changed since). Until then the volume costs no voxel memory: a run
    that never reads the image (a path search on a case bundle) does not hold it."""

    def __init__(self, load: Callable[[], np.ndarray], geometry: ImageGeometry, dtype: Any,
                 **facts: Any) -> None:
        self._load: Callable[[], np.ndarray] | None = load
        self._array: np.ndarray | None = None
        self._dtype = np.dtype(dtype)
        defaults = {f.name: (f.default_factory() if f.default_factory is not MISSING  # type: ignore[misc]
                             else f.default) for f in fields(ImageVolume) if f.name != "array"}
        for name, default in defaults.items():
            setattr(self, name, facts.pop(name, default))
        if facts:
            raise TypeError(f"unknown image facts {sorted(facts)}")
        self.geometry = geometry
        if not self.units:
            self.units = "HU" if self.modality == "CT" else ""

    @property  # type: ignore[override]
    def array(self) -> np.ndarray:
        if self._array is None:
            assert self._load is not None
            array = self._load()
            if array.shape != self.geometry.shape_zyx or array.dtype != self._dtype:
                raise ValueError(f"image voxels {array.shape} {array.dtype} do not match "
                                 f"{self.geometry.shape_zyx} {self._dtype}")
            self._array, self._load = array, None
        return self._array

    @array.setter
    def array(self, value: np.ndarray) -> None:
        self._array, self._load = value, None

    @property
    def loaded(self) -> bool:
        """True once the voxels are in memory."""
        return self._array is not None

    @property
    def nbytes(self) -> int:
        """Bytes of the voxels (known without reading them)."""
        return int(self.geometry.n_voxels) * self._dtype.itemsize
