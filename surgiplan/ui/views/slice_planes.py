"""How an image grid is shown in the axial, coronal and sagittal slice views (numpy only).

Each view shows the *index plane* of the volume closest to its patient plane, flipped so that
the screen follows the radiological convention:

* axial: screen right = patient Left (+L), screen down = Posterior (+P) - viewed from the feet;
* coronal: screen right = patient Left (+L), screen down = Inferior (-S);
* sagittal: screen right = Posterior (+P), screen down = Inferior (-S) - anterior on the left.

A :class:`PlaneMapping` turns the ``(nz, ny, nx)`` voxel array into a 2D image
``(rows, cols)`` with row 0 at the top of the screen, and converts between screen pixels,
voxel indices and LPS millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from surgiplan.model.geometry import ImageGeometry, orientation_letters


class Plane(StrEnum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"


# (normal, screen-right, screen-down) unit vectors in LPS for each patient plane.
_SCREEN_AXES_LPS: dict[Plane, tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]] = {
    Plane.AXIAL: ((0, 0, 1), (1, 0, 0), (0, 1, 0)),
    Plane.CORONAL: ((0, 1, 0), (1, 0, 0), (0, 0, -1)),
    Plane.SAGITTAL: ((1, 0, 0), (0, 1, 0), (0, 0, -1)),
}

# The patient direction "forward" (wheel up, Up arrow, PageUp) moves to, per plane, in LPS:
# superior (axial), anterior (coronal), left (sagittal) - the same on every acquisition.
FORWARD_LPS: dict[Plane, tuple[float, float, float]] = {
    Plane.AXIAL: (0.0, 0.0, 1.0),
    Plane.CORONAL: (0.0, -1.0, 0.0),
    Plane.SAGITTAL: (1.0, 0.0, 0.0),
}
FORWARD_NAMES = {Plane.AXIAL: "superior", Plane.CORONAL: "anterior", Plane.SAGITTAL: "left"}


@dataclass(frozen=True)
class PlaneMapping:
    """Maps one patient plane onto image axes of a grid.

    ``slice_axis``, ``col_axis``, ``row_axis`` are image axes (0=i, 1=j, 2=k); ``col_flip`` /
    ``row_flip`` say the displayed columns/rows run against increasing index.
    """

    plane: Plane
    geometry: ImageGeometry
    slice_axis: int
    col_axis: int
    row_axis: int
    col_flip: bool
    row_flip: bool

    # ------------------------------------------------------------------ sizes
    @property
    def n_slices(self) -> int:
        return self.geometry.size[self.slice_axis]

    @property
    def shape_rows_cols(self) -> tuple[int, int]:
        return (self.geometry.size[self.row_axis], self.geometry.size[self.col_axis])

    @property
    def pixel_mm(self) -> tuple[float, float]:
        """(column width, row height) of one displayed pixel in mm."""
        sp = self.geometry.spacing_mm
        return (sp[self.col_axis], sp[self.row_axis])

    @property
    def slice_spacing_mm(self) -> float:
        return self.geometry.spacing_mm[self.slice_axis]

    # ------------------------------------------------------------------ extraction
    def extract(self, array: np.ndarray, slice_index: int) -> np.ndarray:
        """The 2D ``(rows, cols)`` view of slice ``slice_index`` of a ``(nz, ny, nx)`` array."""
        np_axis = {0: 2, 1: 1, 2: 0}  # image axis -> numpy axis
        plane = np.take(array, int(slice_index), axis=np_axis[self.slice_axis])
        # remaining numpy axes keep their order (descending image axis)
        remaining = [a for a in (2, 1, 0) if a != self.slice_axis]
        if remaining.index(self.row_axis) != 0:
            plane = plane.T
        if self.row_flip:
            plane = plane[::-1, :]
        if self.col_flip:
            plane = plane[:, ::-1]
        return plane

    # ------------------------------------------------------------------ coordinates
    def pixel_to_index(self, col: float, row: float, slice_index: float) -> np.ndarray:
        """Displayed pixel (continuous, pixel centres at integers) -> voxel index (i, j, k)."""
        rows, cols = self.shape_rows_cols
        ijk = np.zeros(3)
        ijk[self.col_axis] = (cols - 1 - col) if self.col_flip else col
        ijk[self.row_axis] = (rows - 1 - row) if self.row_flip else row
        ijk[self.slice_axis] = slice_index
        return ijk

    def index_to_pixel(self, ijk: np.ndarray) -> tuple[float, float, float]:
        """Voxel index (i, j, k) -> (col, row, slice index) in displayed pixels."""
        rows, cols = self.shape_rows_cols
        c, r = float(ijk[self.col_axis]), float(ijk[self.row_axis])
        col = (cols - 1 - c) if self.col_flip else c
        row = (rows - 1 - r) if self.row_flip else r
        return col, row, float(ijk[self.slice_axis])

    def pixel_to_lps(self, col: float, row: float, slice_index: float) -> np.ndarray:
        return self.geometry.index_to_lps(self.pixel_to_index(col, row, slice_index))

    def lps_to_pixel(self, point_lps: np.ndarray) -> tuple[float, float, float]:
        return self.index_to_pixel(self.geometry.lps_to_index(point_lps))

    def slice_index_of(self, point_lps: np.ndarray) -> int:
        """Nearest slice index to an LPS point, clamped to the volume."""
        k = self.geometry.lps_to_index(point_lps)[self.slice_axis]
        return int(np.clip(np.rint(k), 0, self.n_slices - 1))

    def forward_step(self) -> int:
        """Slice-index step (+1 or -1) that moves toward :data:`FORWARD_LPS` of the plane
        (superior, anterior or left), whatever the file's slice order or patient position."""
        normal = self.geometry.direction[:, self.slice_axis]
        return 1 if float(normal @ np.asarray(FORWARD_LPS[self.plane])) >= 0 else -1

    def depth_from_slice_mm(self, points_lps: np.ndarray, slice_index: float) -> np.ndarray:
        """Signed distance (mm) of LPS points from the plane of ``slice_index`` along its
        normal (positive towards +index); within ``slice_spacing_mm / 2`` is on the slice."""
        normal = self.geometry.direction[:, self.slice_axis]
        here = self.pixel_to_lps(0, 0, slice_index) @ normal
        return np.asarray(points_lps, float) @ normal - here

    # ------------------------------------------------------------------ labels
    def screen_vectors_lps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit LPS vectors of screen right, screen down and the slice normal (towards +index)."""
        d = self.geometry.direction
        right = d[:, self.col_axis] * (-1.0 if self.col_flip else 1.0)
        down = d[:, self.row_axis] * (-1.0 if self.row_flip else 1.0)
        return right, down, d[:, self.slice_axis]

    def edge_labels(self) -> dict[str, str]:
        """Orientation letters for the ``left``, ``right``, ``top``, ``bottom`` screen edges."""
        right, down, _ = self.screen_vectors_lps()
        return {
            "left": orientation_letters(-right),
            "right": orientation_letters(right),
            "top": orientation_letters(-down),
            "bottom": orientation_letters(down),
        }

    def slice_position_mm(self, slice_index: int) -> float:
        """Signed position (mm) of a slice along the plane's patient normal (L, P or S)."""
        normal = np.asarray(_SCREEN_AXES_LPS[self.plane][0], dtype=float)
        ijk = np.zeros(3)
        ijk[self.slice_axis] = slice_index
        return float(self.geometry.index_to_lps(ijk) @ normal)


def plane_mapping(geometry: ImageGeometry, plane: Plane | str) -> PlaneMapping:
    """Choose the image axes and flips that show ``plane`` radiologically on ``geometry``."""
    plane = Plane(plane)
    normal, right, down = (np.asarray(v, dtype=float) for v in _SCREEN_AXES_LPS[plane])
    d = geometry.direction
    slice_axis = int(np.argmax(np.abs(normal @ d)))
    others = [a for a in range(3) if a != slice_axis]
    # pick the assignment of the two remaining axes to (right, down) that aligns best
    score_keep = abs(right @ d[:, others[0]]) + abs(down @ d[:, others[1]])
    score_swap = abs(right @ d[:, others[1]]) + abs(down @ d[:, others[0]])
    col_axis, row_axis = others if score_keep >= score_swap else others[::-1]
    return PlaneMapping(
        plane=plane,
        geometry=geometry,
        slice_axis=slice_axis,
        col_axis=col_axis,
        row_axis=row_axis,
        col_flip=bool(right @ d[:, col_axis] < 0),
        row_flip=bool(down @ d[:, row_axis] < 0),
    )
