"""Segmentation import/export, as ratios to the bare library calls doing the same work.

* DICOM SEG write: ``write_dicom_seg`` vs highdicom ``Segmentation(...)`` + ``save_as`` on the
  same masks and source headers;
* DICOM SEG read: ``read_dicom_seg`` onto the image grid vs highdicom ``segread`` +
  ``get_volume`` per segment;
* RTSTRUCT rasterisation: ``even_odd_fill`` vs matplotlib ``Path.contains_points`` on the
  contour's bounding box (skipped when matplotlib is absent).

Synthetic CT grid 512x512x60 with three structures (two overlapping), written as DICOM first.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from bench.timing import best_time


def _twin(folder: Path):
    from surgiplan.io.dicom_write import write_series
    from surgiplan.model.geometry import ImageGeometry
    from surgiplan.model.volume import ImageVolume
    from surgiplan.twin import Twin

    geometry = ImageGeometry((512, 512, 60), (0.8, 0.8, 2.5), (-200.0, -200.0, 0.0))
    z, y, x = np.ogrid[:60, :512, :512]
    body = (x - 256) ** 2 + (y - 256) ** 2 < 200**2
    image = ImageVolume((body * 1040 - 1000 + 0 * z).astype(np.int16), geometry, modality="CT")
    files = write_series(image, folder / "ct")
    twin = Twin(image)
    twin.add_structure("body", np.broadcast_to(body, geometry.shape_zyx), role="skin")
    organ = (x - 300) ** 2 + (y - 220) ** 2 + 10 * (z - 30) ** 2 < 70**2
    twin.add_structure("liver", organ, role="organ")
    twin.add_structure("tumour", (x - 290) ** 2 + (y - 230) ** 2 + 10 * (z - 30) ** 2 < 25**2,
                       role="target")
    return twin, files


def _bare_write(twin, files, path: Path) -> None:
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    stack = np.stack([twin.segmentation.mask(s.name) for s in twin.structures], axis=-1)
    volume = hd.Volume(stack.astype(np.uint8), twin.geometry.index_to_lps_matrix[:, [2, 1, 0, 3]],
                       "PATIENT", frame_of_reference_uid=sources[0].FrameOfReferenceUID,
                       channels={"SegmentNumber": [1, 2, 3]})
    descriptions = [hd.seg.SegmentDescription(n, s.name, codes.SCT.Tissue, codes.SCT.Tissue,
                                              "MANUAL")
                    for n, s in enumerate(twin.structures, start=1)]
    seg = hd.seg.Segmentation(sources, volume, "BINARY", descriptions, hd.UID(), 1, hd.UID(), 1,
                              "bench", "bench", "1", "1")
    seg.save_as(path)


def _bare_read(path: Path) -> None:
    import highdicom as hd

    seg = hd.seg.segread(path)
    for number in seg.segment_numbers:
        seg.get_volume(segment_numbers=[number])


def _rasterise_rows() -> list[dict]:
    try:
        from matplotlib.path import Path as MplPath
    except ImportError:
        return []
    from surgiplan.io.rtstruct import even_odd_fill

    t = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    polygons = [np.stack([256 + r * np.cos(t), 256 + 0.8 * r * np.sin(t)], axis=1)
                for r in np.linspace(40, 200, 60)]

    def ours() -> None:
        for p in polygons:
            even_odd_fill([p], (512, 512))

    def bare() -> None:
        j, i = np.mgrid[:512, :512]
        for p in polygons:
            lo, hi = np.floor(p.min(axis=0)).astype(int), np.ceil(p.max(axis=0)).astype(int)
            box = (slice(max(lo[1], 0), hi[1] + 1), slice(max(lo[0], 0), hi[0] + 1))
            points = np.stack([i[box].ravel(), j[box].ravel()], axis=1)
            MplPath(p).contains_points(points)

    ratio = best_time(ours) / best_time(bare)
    return [{"name": "rtstruct rasterise 60 contours 512x512", "value": ratio, "unit": "x",
             "goal": 1.5, "detail": "even_odd_fill vs matplotlib Path.contains_points"}]


def run() -> list[dict]:
    from surgiplan.io.dicom_seg import read_dicom_seg, write_dicom_seg

    rows = []
    with tempfile.TemporaryDirectory(prefix="surgiplan-bench-segio-") as tmp:
        folder = Path(tmp)
        twin, files = _twin(folder)
        ours_w = best_time(
            lambda: write_dicom_seg(twin, folder / "ours.dcm", source_files=files), 2)
        bare_w = best_time(lambda: _bare_write(twin, files, folder / "bare.dcm"), 2)
        rows.append({"name": "dicom-seg write 512x512x60, 3 segments", "value": ours_w / bare_w,
                     "unit": "x", "goal": 1.3,
                     "detail": f"{ours_w:.2f} s vs highdicom {bare_w:.2f} s"})
        ours_r = best_time(lambda: read_dicom_seg(folder / "ours.dcm", twin.geometry), 2)
        bare_r = best_time(lambda: _bare_read(folder / "ours.dcm"), 2)
        rows.append({"name": "dicom-seg read onto image grid", "value": ours_r / bare_r,
                     "unit": "x", "goal": 1.5,
                     "detail": f"{ours_r:.2f} s vs highdicom {bare_r:.2f} s"})
    return rows + _rasterise_rows()
