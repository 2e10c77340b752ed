"""Siemens MOSAIC images: one stored frame holding a grid of slices (EPI, fMRI, DWI).

``ImageType`` contains MOSAIC and the private (0019,100A) NumberOfImagesInMosaic gives the slice
count N; the tiles are laid out row by row, ceil(sqrt(N)) per row, in slice order. The stored
ImagePositionPatient is the corner of the whole mosaic as if it were one huge slice centred on
the first tile, so the first tile's corner is that position moved by half the size difference
between mosaic and tile along the row and column directions (the correction dcm2niix and
nibabel document). Slices follow the CSA image header's SliceNormalVector (its sign decides the
slice order); the spacing comes from the CSA series protocol's slice positions, else from
SpacingBetweenSlices / SliceThickness with a warning. Without a CSA normal the slice order is
unknown and the mosaic is refused.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.io.dicom_header import FileHeader

PARALLEL_TOL = 1e-3  # |1 - |cos|| between the CSA normal and row x col
ACTION = "Convert the series with dcm2niix, or export it from the scanner without MOSAIC"


@dataclass(frozen=True)
class MosaicLayout:
    """How one mosaic file splits into slices (LPS mm)."""

    tiles: int
    per_row: int
    tile_rows: int
    tile_columns: int
    first_lps: tuple[float, float, float]  # corner (first pixel centre) of tile 0
    step_lps: tuple[float, float, float]  # from tile k to tile k+1
    warnings: tuple[str, ...] = ()
    key: tuple = ()  # the header facts it was computed from (files sharing them share it)

    def tile_window(self, tile: int) -> tuple[slice, slice]:
        """(row slice, column slice) of a tile within the stored mosaic frame."""
        r, c = divmod(tile, self.per_row)
        return (slice(r * self.tile_rows, (r + 1) * self.tile_rows),
                slice(c * self.tile_columns, (c + 1) * self.tile_columns))

    def position(self, tile: int) -> tuple[float, float, float]:
        (x0, y0, z0), (dx, dy, dz) = self.first_lps, self.step_lps
        return float(x0 + tile * dx), float(y0 + tile * dy), float(z0 + tile * dz)


def _xyz(v: np.ndarray) -> tuple[float, float, float]:
    """A 3-vector (LPS mm) as a float triple."""
    return float(v[0]), float(v[1]), float(v[2])


def _refuse(h: FileHeader, problem: str) -> BadInputError:
    return BadInputError(f"Siemens MOSAIC image: {problem}", path=h.path, action=ACTION)


def _csa(h: FileHeader) -> tuple[np.ndarray | None, float | None]:
    """(SliceNormalVector, slice spacing from the protocol's slice positions) from CSA."""
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nibabel.nicom warns on import that it is experimental
        from nibabel.nicom import csareader

        try:
            ds = pydicom.dcmread(h.path, stop_before_pixels=True)
            image = csareader.get_csa_header(ds, "image")
            series = csareader.get_csa_header(ds, "series")
        except Exception:  # damaged or absent CSA: treated as absent
            return None, None
    normal = None
    tag = (image or {}).get("tags", {}).get("SliceNormalVector")
    if tag and len(tag.get("items") or []) == 3:
        normal = np.asarray([float(v) for v in tag["items"]])
    return normal, _protocol_spacing(series, normal)


def _protocol_spacing(series: dict | None, normal: np.ndarray | None) -> float | None:
    """Distance along the normal between the protocol's first two slice centres (mm)."""
    if not series or normal is None:
        return None
    tags = series.get("tags", {})
    text = next((t["items"][0] for key in ("MrPhoenixProtocol", "MrProtocol")
                 if (t := tags.get(key)) and t.get("items") and isinstance(t["items"][0], str)),
                "")
    centres = []
    for k in (0, 1):
        xyz = []
        for axis in ("dSag", "dCor", "dTra"):
            m = re.search(rf"sSliceArray\.asSlice\[{k}\]\.sPosition\.{axis}\s*=\s*(\S+)", text)
            xyz.append(float(m.group(1)) if m else 0.0)
        if not re.search(rf"sSliceArray\.asSlice\[{k}\]\.", text):
            return None
        centres.append(np.asarray(xyz))
    spacing = abs(float((centres[1] - centres[0]) @ (normal / np.linalg.norm(normal))))
    return spacing if spacing > 0 else None


def _spacing(h: FileHeader, protocol: float | None, notes: list[str]) -> float:
    if protocol:
        return protocol
    for value, name in ((h.spacing_between_slices_mm, "SpacingBetweenSlices"),
                        (h.slice_thickness_mm, "SliceThickness")):
        if value and value > 0:
            notes.append(f"MOSAIC slice spacing {value:g} mm taken from {name} (the CSA "
                         "protocol has no slice positions).")
            return float(value)
    raise _refuse(h, "no slice spacing in the CSA protocol, SpacingBetweenSlices or "
                  "SliceThickness")


def mosaic_layout(h: FileHeader, row: np.ndarray, col: np.ndarray,
                  normal: np.ndarray, key: tuple = ()) -> MosaicLayout:
    """Tile geometry of one mosaic file (row, col, normal: unit LPS axes of the stored frame);
    raises BadInputError when it cannot be determined reliably. ``key`` is kept on it."""
    n = int(h.mosaic_tiles or 0)
    per_row = math.ceil(math.sqrt(n)) if n > 0 else 0
    if n < 1 or h.rows % per_row or h.columns % per_row:
        raise _refuse(h, f"{h.columns}x{h.rows} pixels cannot hold {n} tiles "
                      f"({per_row} per row)")
    tile_rows, tile_cols = h.rows // per_row, h.columns // per_row
    if h.position_lps is None or h.pixel_spacing_mm is None:
        raise _refuse(h, "no ImagePositionPatient or PixelSpacing")
    csa_normal, protocol = _csa(h)
    if csa_normal is None or np.linalg.norm(csa_normal) < 0.5:
        raise _refuse(h, "no CSA SliceNormalVector, so the slice order (the sign of the slice "
                      "normal) is unknown")
    csa_normal = csa_normal / np.linalg.norm(csa_normal)
    cos = float(csa_normal @ normal)
    if abs(abs(cos) - 1.0) > PARALLEL_TOL:
        raise _refuse(h, "the CSA SliceNormalVector is not perpendicular to the image rows "
                      "and columns")
    notes: list[str] = []
    spacing = _spacing(h, protocol, notes)
    sy, sx = h.pixel_spacing_mm
    corner = (np.asarray(h.position_lps) + row * sx * (h.columns - tile_cols) / 2.0
              + col * sy * (h.rows - tile_rows) / 2.0)
    step = math.copysign(1.0, cos) * spacing * normal
    return MosaicLayout(n, per_row, tile_rows, tile_cols, _xyz(corner), _xyz(step),
                        tuple(notes), key)
