"""Case bundle save/load and twin building, as ratios to the bare library calls doing the same.

* save: ``save_bundle`` vs pynrrd writing the same image and label layers (gzip level 1) into a
  zip with zipfile;
* load: ``load_bundle`` vs zipfile + pynrrd reading those NRRDs back;
* build: ``build_twin`` vs ``load_dicom`` + hashlib over the same source files.

Uses the real abdomen CT (512x512x134) when ../shared/scans is present, else a synthetic volume of
the same size.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from bench.timing import best_time

SCANS = Path(__file__).resolve().parents[1].parent / "shared" / "scans"




def _twin(folder: Path):
    from surgiplan.io.labelmaps import nrrd_bytes, nrrd_geometry_header
    from surgiplan.io.twin_build import build_twin
    from surgiplan.model.geometry import ImageGeometry

    scan = SCANS / "abdomen-ct-contrast"
    if scan.is_dir():
        return build_twin(scan), scan, "abdomen-ct-contrast"
    geometry = ImageGeometry((512, 512, 134), (0.8, 0.8, 3.0), (0, 0, 0))
    z, y, x = np.ogrid[:134, :512, :512]
    image = (((x - 256) ** 2 + (y - 256) ** 2) < 200**2) * 1000 - 1000 + (z % 7)
    path = folder / "synthetic.nrrd"
    path.write_bytes(nrrd_bytes(image.astype(np.int16), nrrd_geometry_header(geometry)))
    return build_twin(path), path, "synthetic 512x512x134"


def _add_structures(twin) -> None:
    array = twin.image.array
    twin.add_structure("body", array > -300, role="skin")
    twin.add_structure("bone", array > 300, role="bone")


def run() -> list[dict]:
    import nrrd

    from surgiplan.io.bundle import load_bundle, save_bundle
    from surgiplan.io.labelmaps import NRRD_GZIP_LEVEL, nrrd_geometry_header
    from surgiplan.io.twin_build import build_twin

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        twin, source, label = _twin(folder)
        _add_structures(twin)
        target = folder / "case.surgiplan"
        array, header = twin.image.array, nrrd_geometry_header(twin.geometry)

        volumes = {"image.nrrd": array} | {
            f"layer{n}.nrrd": layer for n, layer in enumerate(twin.segmentation.layers)}

        def bare_save() -> None:
            with zipfile.ZipFile(folder / "bare.zip", "w") as archive:
                for name, data in volumes.items():
                    buffer = io.BytesIO()
                    nrrd.write(buffer, data, dict(header), compression_level=NRRD_GZIP_LEVEL,
                               index_order="C")
                    archive.writestr(name, buffer.getvalue())

        def bare_load() -> None:
            with zipfile.ZipFile(folder / "bare.zip") as archive:
                for name in volumes:
                    handle = io.BytesIO(archive.read(name))
                    nrrd.read_data(nrrd.read_header(handle), handle, index_order="C")

        t_save = best_time(lambda: save_bundle(twin, target))
        t_bare_save = best_time(bare_save)
        t_load = best_time(lambda: load_bundle(target))
        t_bare_load = best_time(bare_load)
        rows = [
            {"name": "save_bundle / (pynrrd + zipfile)", "value": t_save / t_bare_save,
             "unit": "x", "goal": 1.6,
             "detail": f"{label} + 2 structures: {t_save * 1000:.0f} ms vs "
                       f"{t_bare_save * 1000:.0f} ms, {target.stat().st_size / 1e6:.1f} MB"},
            {"name": "load_bundle / (zipfile + pynrrd)", "value": t_load / t_bare_load,
             "unit": "x", "goal": 1.6,
             "detail": f"{t_load * 1000:.0f} ms vs {t_bare_load * 1000:.0f} ms "
                       "(hash checks, segmentation, validation included)"},
        ]
        if source.is_dir():
            from surgiplan.io.dicom_load import load_dicom

            def bare_build() -> None:
                for file in load_dicom(source).metadata["files"]:
                    with open(file, "rb") as handle:
                        hashlib.file_digest(handle, "sha256")

            t_build = best_time(lambda: build_twin(source), repeats=3)
            t_bare_build = best_time(bare_build, repeats=3)
            t_dicom = best_time(lambda: load_dicom(source), repeats=3)
            rows.append({"name": "build_twin / (load_dicom + hashlib)",
                         "value": t_build / t_bare_build, "unit": "x", "goal": 1.2,
                         "detail": f"{t_build * 1000:.0f} ms vs {t_bare_build * 1000:.0f} ms; "
                                   f"load_dicom alone {t_dicom * 1000:.0f} ms"})
    return rows
