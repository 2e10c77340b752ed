"""DICOM RT Structure Set (RTSTRUCT) reading: ROI contours rasterised onto the image grid.

Each CLOSED_PLANAR contour (ContourData: x, y, z in patient LPS mm) goes to the image slice
nearest its plane. All contours of one ROI in one slice are filled together with the even-odd
rule, so an inner contour cuts a hole (XOR). A voxel is inside when its centre is inside.
Slices between two contoured slices of an ROI that got no contour of their own (contours
drawn every few slices) take the nearest contoured slice, with a warning. Names come from
StructureSetROISequence, colours from ROIDisplayColor. Contours not parallel to the image
slices are refused: resample the image to the plan's orientation first.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Segmentation
from surgiplan.progress import CancelToken, ProgressCallback, check, report

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
PLANE_TOLERANCE_VOXELS = 0.5  # largest spread of a contour's points across slices (voxels)


def even_odd_fill(polygons_ij: list[np.ndarray], shape_yx: tuple[int, int]) -> np.ndarray:
    """Boolean ``(ny, nx)`` mask of voxel centres inside the polygons by the even-odd rule.

    ``polygons_ij``: closed polygons as ``(n, 2)`` arrays of continuous voxel indices (i, j).
    Overlapping polygons cancel (a contour inside another is a hole).
    """
    ny, nx = shape_yx
    edges = [np.stack([p, np.roll(p, -1, axis=0)], axis=1) for p in polygons_ij if len(p) >= 3]
    mask = np.zeros((ny, nx), dtype=bool)
    if not edges:
        return mask
    e = np.concatenate(edges)  # (E, 2 ends, 2 coords)
    x0, y0, x1, y1 = e[:, 0, 0], e[:, 0, 1], e[:, 1, 0], e[:, 1, 1]
    lo = max(0, int(np.ceil(min(y0.min(), y1.min()))))
    hi = min(ny - 1, int(np.floor(max(y0.max(), y1.max()))))
    if hi < lo:
        return mask
    rows = np.arange(lo, hi + 1, dtype=float)[:, None]
    crosses = ((y0 <= rows) & (y1 > rows)) | ((y1 <= rows) & (y0 > rows))  # half-open rule
    dy = np.where(y1 != y0, y1 - y0, 1.0)
    x_at = x0 + (rows - y0) * (x1 - x0) / dy
    r, c = np.nonzero(crosses)
    start = np.clip(np.ceil(x_at[r, c]), 0, nx).astype(np.int64)  # centres i >= x are past it
    toggles = np.zeros((hi - lo + 1, nx + 1), dtype=np.int32)
    np.add.at(toggles, (r, start), 1)
    mask[lo:hi + 1] = (np.cumsum(toggles, axis=1)[:, :nx] % 2).astype(bool)
    return mask


def _read(path: Path):
    import pydicom

    if not path.is_file():
        raise BadInputError("no such file", path=path, action="Check the path")
    try:
        ds = pydicom.dcmread(path)
    except (pydicom.errors.InvalidDicomError, OSError, ValueError) as exc:
        raise BadInputError(f"not a readable DICOM file ({exc})", path=path,
                            action="Give a DICOM RT Structure Set file") from exc
    if str(ds.get("SOPClassUID", "")) != RTSTRUCT_SOP_CLASS and ds.get("Modality") != "RTSTRUCT":
        raise BadInputError(f"not an RT Structure Set (modality {ds.get('Modality', '?')})",
                            path=path, action="Give a DICOM RTSTRUCT file")
    return ds


def _roi_names(ds) -> dict[int, str]:
    return {int(item.ROINumber): " ".join(str(item.get("ROIName", "")).split())
            or f"ROI_{item.ROINumber}" for item in ds.get("StructureSetROISequence", [])}


def _slice_polygons(
    roi, geometry: ImageGeometry, *, path: Path, name: str, skipped: set[str]
) -> dict[int, list[np.ndarray]]:
    """Slice index k -> the ROI's closed contours there, as (i, j) voxel-index polygons."""
    out: dict[int, list[np.ndarray]] = defaultdict(list)
    for contour in roi.get("ContourSequence", []):
        kind = str(contour.get("ContourGeometricType", "CLOSED_PLANAR"))
        if kind != "CLOSED_PLANAR":
            skipped.add(kind)
            continue
        points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
        ijk = geometry.lps_to_index(points)
        k = float(np.median(ijk[:, 2]))
        if np.ptp(ijk[:, 2]) > PLANE_TOLERANCE_VOXELS:
            raise BadInputError(
                f"a contour of ROI {name!r} is not parallel to the image slices", path=path,
                action="Load the image the structure set was drawn on (same orientation)")
        k_index = int(np.rint(k))
        if 0 <= k_index < geometry.size[2]:
            out[k_index].append(ijk[:, :2])
    return out


def _roi_mask(
    polygons: dict[int, list[np.ndarray]], geometry: ImageGeometry
) -> tuple[np.ndarray, int]:
    """The ROI's mask and how many slices were filled from a neighbouring contoured slice."""
    nx, ny, nz = geometry.size
    mask = np.zeros((nz, ny, nx), dtype=bool)
    for k, polys in polygons.items():
        mask[k] = even_odd_fill(polys, (ny, nx))
    contoured = np.array(sorted(polygons), dtype=int)
    filled = 0
    if len(contoured) > 1:
        for k in range(contoured[0] + 1, contoured[-1]):
            if k in polygons:
                continue
            nearest = contoured[np.argmin(np.abs(contoured - k))]
            mask[k] = mask[nearest]
            filled += 1
    return mask, filled


def _color(roi) -> tuple[float, float, float] | None:
    value = roi.get("ROIDisplayColor")
    if value is None or len(value) != 3:
        return None
    return tuple(min(1.0, max(0.0, float(c) / 255.0)) for c in value)  # type: ignore[return-value]


def read_rtstruct(
    path: str | Path,
    image_geometry: ImageGeometry,
    *,
    warnings_out: list[str] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Segmentation:
    """Rasterise every ROI of an RTSTRUCT onto ``image_geometry`` as named, coloured structures.

    ROIs without closed contours on the grid become empty structures (with a warning), so the
    names the plan lists are kept.
    """
    path = Path(path)
    ds = _read(path)
    names = _roi_names(ds)
    rois = list(ds.get("ROIContourSequence", []))
    if not names and not rois:
        raise BadInputError("the structure set lists no ROI", path=path,
                            action="Give an RTSTRUCT with contours")
    warnings = warnings_out if warnings_out is not None else []
    out = Segmentation(geometry=image_geometry)
    taken: set[str] = set()
    skipped: set[str] = set()
    for n, roi in enumerate(rois):
        check(cancel)
        report(progress, n / max(1, len(rois)), "rasterising contours")
        number = int(roi.get("ReferencedROINumber", n + 1))
        name = _unique(names.get(number, f"ROI_{number}"), taken)
        polygons = _slice_polygons(roi, image_geometry, path=path, name=name, skipped=skipped)
        mask, filled = _roi_mask(polygons, image_geometry)
        if not mask.any():
            warnings.append(f"{path.name}: ROI {name!r} has no closed contour on the image grid.")
        if filled:
            warnings.append(f"{path.name}: ROI {name!r}: {filled} slice(s) between contoured "
                            "slices took the nearest contour.")
        out.add(name, mask, color=_color(roi))
    if skipped:
        warnings.append(f"{path.name}: contours of type {', '.join(sorted(skipped))} were "
                        "ignored (only CLOSED_PLANAR contours are areas).")
    report(progress, 1.0, "RTSTRUCT read")
    return out


def _unique(name: str, taken: set[str]) -> str:
    unique, k = name, 2
    while unique in taken:
        unique, k = f"{name} ({k})", k + 1
    taken.add(unique)
    return unique
