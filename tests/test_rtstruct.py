"""RTSTRUCT reading: contours around known shapes rasterise onto the grid where they should."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from surgiplan.errors import BadInputError
from surgiplan.io.rtstruct import RTSTRUCT_SOP_CLASS, even_odd_fill, read_rtstruct
from surgiplan.model.geometry import ImageGeometry

GRID = ImageGeometry((60, 50, 30), (0.8, 0.8, 2.0), (-20.0, -15.0, 40.0))
CENTRE_LPS = np.array([4.0, 5.0, 70.0])
RADIUS_MM = 14.0


def write_rtstruct(path: Path, rois: list[tuple[str, tuple[int, int, int], list[np.ndarray]]],
                   *, kind: str = "CLOSED_PLANAR") -> Path:
    """A minimal RTSTRUCT: ``rois`` = (name, RGB 0..255, contours as (n, 3) LPS mm arrays)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = RTSTRUCT_SOP_CLASS
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = RTSTRUCT_SOP_CLASS
    ds.Modality = "RTSTRUCT"
    ds.StructureSetLabel = "test"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    frame = generate_uid()
    ds.StructureSetROISequence = Sequence()
    ds.ROIContourSequence = Sequence()
    for number, (name, rgb, contours) in enumerate(rois, start=1):
        item = Dataset()
        item.ROINumber, item.ROIName, item.ReferencedFrameOfReferenceUID = number, name, frame
        ds.StructureSetROISequence.append(item)
        roi = Dataset()
        roi.ReferencedROINumber, roi.ROIDisplayColor = number, list(rgb)
        roi.ContourSequence = Sequence()
        for points in contours:
            c = Dataset()
            c.ContourGeometricType = kind
            c.NumberOfContourPoints = len(points)
            c.ContourData = [f"{v:.4f}" for v in np.asarray(points).reshape(-1)]
            roi.ContourSequence.append(c)
        ds.ROIContourSequence.append(roi)
    ds.save_as(path, enforce_file_format=True)
    return path


def _circle(centre: np.ndarray, radius: float, n: int = 180) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return centre + np.stack([radius * np.cos(t), radius * np.sin(t), 0 * t], axis=1)


def _sphere_contours(step_slices: int = 1) -> list[np.ndarray]:
    out = []
    for k in range(0, GRID.size[2], step_slices):
        z = GRID.index_to_lps([0, 0, k])[2]
        dz = z - CENTRE_LPS[2]
        if abs(dz) < RADIUS_MM:
            out.append(_circle(np.array([*CENTRE_LPS[:2], z]), np.sqrt(RADIUS_MM**2 - dz**2)))
    return out


def _distance_to_centre_in_slice() -> tuple[np.ndarray, np.ndarray]:
    """(in-slice radius of each voxel centre, that slice's contour radius or nan)."""
    k, j, i = np.indices(GRID.shape_zyx)
    lps = GRID.index_to_lps(np.stack([i, j, k], axis=-1))
    rho = np.linalg.norm(lps[..., :2] - CENTRE_LPS[:2], axis=-1)
    dz = lps[..., 2] - CENTRE_LPS[2]
    r = np.where(np.abs(dz) < RADIUS_MM, np.sqrt(np.clip(RADIUS_MM**2 - dz**2, 0, None)), np.nan)
    return rho, r


def test_sphere_contours_rasterise_within_a_voxel(tmp_path):
    path = write_rtstruct(tmp_path / "rs.dcm", [("Tumour", (255, 0, 0), _sphere_contours())])
    seg = read_rtstruct(path, GRID)
    mask = seg.mask("Tumour")
    rho, r = _distance_to_centre_in_slice()
    expected = rho < np.nan_to_num(r, nan=-1)
    wrong = mask != expected
    # only voxels at the boundary (within a voxel of the contour) may disagree
    assert np.all(np.abs(rho[wrong] - r[wrong]) < GRID.spacing_mm[0])
    assert wrong.sum() < 0.02 * expected.sum()
    assert seg.get("Tumour").color == (1.0, 0.0, 0.0)
    volume_ml = seg.volume_ml("Tumour")
    assert volume_ml == pytest.approx(4 / 3 * np.pi * RADIUS_MM**3 / 1000, rel=0.08)


def test_inner_contour_is_a_hole_and_names_and_colours_are_kept(tmp_path):
    z = GRID.index_to_lps([0, 0, 10])[2]
    outer = np.array([[-10, -10, z], [10, -10, z], [10, 10, z], [-10, 10, z]]) * 1.01
    inner = np.array([[-4, -4, z], [4, -4, z], [4, 4, z], [-4, 4, z]]) * 1.025
    outer[:, 2] = inner[:, 2] = z  # half-sizes 10.1 and 4.1 mm: no voxel centre on an edge
    path = write_rtstruct(tmp_path / "rs.dcm", [("Ring", (0, 128, 255), [outer, inner]),
                                                ("Core", (10, 200, 10), [inner])])
    seg = read_rtstruct(path, GRID)
    assert seg.names() == ["Ring", "Core"]
    ring, core = seg.mask("Ring"), seg.mask("Core")
    assert not np.any(ring & core)  # the hole is exactly where the inner contour is
    k, j, i = np.indices(GRID.shape_zyx)
    lps = GRID.index_to_lps(np.stack([i, j, k], axis=-1))
    square = lambda h: (np.abs(lps[..., 0]) < h) & (np.abs(lps[..., 1]) < h) & (k == 10)  # noqa: E731
    assert np.array_equal(ring, square(10.1) & ~square(4.1))
    assert np.array_equal(core, square(4.1))
    assert seg.get("Ring").color == pytest.approx((0.0, 128 / 255, 1.0))


def test_gaps_between_contoured_slices_take_the_nearest_contour(tmp_path):
    path = write_rtstruct(tmp_path / "rs.dcm", [("Sparse", (1, 2, 3), _sphere_contours(3))])
    warnings: list[str] = []
    mask = read_rtstruct(path, GRID, warnings_out=warnings).mask("Sparse")
    filled = np.flatnonzero(mask.any(axis=(1, 2)))
    assert np.array_equal(filled, np.arange(filled[0], filled[-1] + 1))
    assert any("took the nearest contour" in w for w in warnings)


def test_empty_roi_and_point_contours_warn(tmp_path):
    path = write_rtstruct(tmp_path / "rs.dcm", [("Marker", (0, 0, 0), [np.array([[0, 0, 60]])])],
                          kind="POINT")
    warnings: list[str] = []
    seg = read_rtstruct(path, GRID, warnings_out=warnings)
    assert seg.voxel_count("Marker") == 0
    assert any("no closed contour" in w for w in warnings)
    assert any("POINT" in w for w in warnings)


def test_not_an_rtstruct_and_oblique_contours_are_refused(tmp_path):
    other = tmp_path / "ct.dcm"
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.Modality, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", "CT", "1.2.3"
    ds.save_as(other, enforce_file_format=True)
    with pytest.raises(BadInputError, match="not an RT Structure Set"):
        read_rtstruct(other, GRID)
    tilted = np.array([[0, 0, 50], [10, 0, 60], [10, 10, 60], [0, 10, 50]], dtype=float)
    path = write_rtstruct(tmp_path / "rs.dcm", [("Tilted", (0, 0, 0), [tilted])])
    with pytest.raises(BadInputError, match="not parallel"):
        read_rtstruct(path, GRID)


def test_even_odd_fill_of_a_triangle_matches_point_in_polygon():
    tri = np.array([[2.3, 1.7], [17.6, 4.2], [6.1, 14.9]])
    mask = even_odd_fill([tri], (20, 20))
    j, i = np.indices((20, 20))
    a, b, c = tri
    def side(p, q):
        return (q[0] - p[0]) * (j - p[1]) - (q[1] - p[1]) * (i - p[0])
    sides = np.stack([side(a, b), side(b, c), side(c, a)])
    inside = np.all(sides > 0, axis=0) | np.all(sides < 0, axis=0)
    assert inside.sum() > 50
    assert np.array_equal(mask, inside)
