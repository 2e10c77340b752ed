"""What the app runs in its workers to open data: cases, DICOM scans, display surfaces.

Qt-free functions with the core's ``progress`` / ``cancel`` keywords; the core I/O modules are
imported lazily so the first window appears before SimpleITK and pydicom are loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.surface import SurfaceMesh
from surgiplan.model.volume import ImageVolume
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.twin import Provenance, Twin
from surgiplan.ui.views.display_meshes import (
    Scene3D,
    cached_display_meshes,
    clustered,
    display_smoothed,
    mesh_to_polydata,
)
from surgiplan.ui.views.windowing import data_range, default_window

CASE_SUFFIX = ".surgiplan"
MAX_DISPLAY_TRIANGLES = 1_000_000  # display surfaces made and cached in the bundle
# Drawn on a software OpenGL (Mesa llvmpipe): ~100 ms a frame on a loaded 2-core machine
SOFTWARE_RENDER_TRIANGLES = 90_000
MIN_RENDER_SHARE = 4_000
IMAGE_MODALITIES = ("CT", "MR", "PT", "NM", "US", "OT", "XA", "CR", "DX", "MG", "RF")


def _part(progress: ProgressCallback | None, lo: float, hi: float) -> ProgressCallback | None:
    """A callback mapping a sub-step's 0..1 onto ``lo..hi`` of ``progress``."""
    if progress is None:
        return None
    return lambda fraction, text="": progress(lo + (hi - lo) * fraction, text)


@dataclass
class OpenedTwin:
    """A twin loaded in a worker with its default display window ``(centre, width)``."""

    twin: Twin
    window: tuple[float, float]


def opened(twin: Twin) -> OpenedTwin:
    """Pair a twin with its default window. Whole-volume passes the GUI thread would make on
    showing the case are made here, in the worker, and remembered: the histogram window, the
    value range, each structure's voxel count (the Structures list's volumes)."""
    data_range(twin.image)
    for name in twin.segmentation.names():
        twin.voxel_count(name)
    return OpenedTwin(twin, default_window(twin.image))


def is_case_path(path: str | Path) -> bool:
    """True for a SurgiPlan case bundle (``*.surgiplan``)."""
    return Path(path).suffix.lower() == CASE_SUFFIX


def check_exists(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise BadInputError("does not exist", path=path,
                            action="check the path, or open a DICOM folder, file or case")
    return path


def load_case(path: str | Path, *, progress: ProgressCallback | None = None,
              cancel: CancelToken | None = None) -> Twin:
    """Load a case bundle into a twin."""
    from surgiplan.io.bundle import load_bundle

    path = check_exists(path)
    report(progress, 0.05, "reading case")
    check(cancel)
    twin = load_bundle(path)
    report(progress, 1.0, "case loaded")
    return twin


def scan_folder(path: str | Path, *, progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> Any:
    """Header scan of a DICOM folder, file or DICOMDIR (a ``ScanResult``)."""
    from surgiplan.io.dicom_scan import scan_dicom

    return scan_dicom(check_exists(path), progress=progress, cancel=cancel)


def choose_series(scan: Any, *, path: str | Path | None = None) -> Any:
    """The series to open by default: the image series (CT/MR first) with the most files."""
    candidates = [s for s in scan.series if s.modality in IMAGE_MODALITIES and s.n_files > 0]
    if not candidates:
        raise BadInputError("holds no image series that SurgiPlan can show", path=path,
                            action="open a folder with CT or MR DICOM images")
    preferred = [s for s in candidates if s.modality in ("CT", "MR")] or candidates
    return max(preferred, key=lambda s: s.n_files)


def open_case(path: str | Path, *, progress: ProgressCallback | None = None,
              cancel: CancelToken | None = None) -> OpenedTwin:
    """Worker job: a case bundle as an :class:`OpenedTwin`."""
    return opened(load_case(path, progress=progress, cancel=cancel))


def open_series(series: Any, *, volume: int | None = None,
                progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> OpenedTwin:
    """Worker job: one series of a scan (volume ``volume`` of a multi-volume series, 1-based)
    as an :class:`OpenedTwin` without structures."""
    return opened(twin_from_series(series, volume=volume, progress=progress, cancel=cancel))


def series_volumes(series: Any) -> list[Any]:
    """The volumes a series holds at the same slice positions (``VolumeChoice``: index,
    label, slice count); one or none for an ordinary series. Headers only."""
    from surgiplan.io.dicom_load import plan_series_volumes

    try:
        return list(plan_series_volumes(series).volumes)
    except Exception:  # a series that cannot be planned is refused by the load itself
        return []


def warm_up(*, progress: ProgressCallback | None = None,
            cancel: CancelToken | None = None) -> None:
    """Import the I/O, meshing and 3D modules (run once in a worker after the first window).

    The first import of pydicom/SimpleITK/pyvista takes hundreds of ms, much of it holding the
    GIL; done while the user picks a file, it no longer stalls the GUI during an import.
    """
    import importlib

    modules = ("pydicom", "surgiplan.io.dicom_scan", "surgiplan.io.dicom_load",
               "surgiplan.io.bundle", "surgiplan.processing.surfaces", "pyvista",
               "vtkmodules.vtkFiltersCore",
               "surgiplan.segmentation.editor")  # the Segment panel's, on showing a case
    for n, name in enumerate(modules):
        check(cancel)
        importlib.import_module(name)
        report(progress, (n + 1) / len(modules), name)


def render_budget(view3d: Any) -> int | None:
    """Triangles a 3D view is given in all: capped on a software OpenGL, where each frame of the
    GUI thread costs ~1 ms per 10k triangles; none on a GPU. ``view3d``: a ``View3D``."""
    return SOFTWARE_RENDER_TRIANGLES if view3d.software_gl() else None


def scene_3d(twin: Twin, *, names: list[str] | None = None, with_volume: bool = True,
             render_triangles: int | None = None,
             progress: ProgressCallback | None = None,
             cancel: CancelToken | None = None) -> Scene3D:
    """Worker job: the display copies of the 3D view (volume, surfaces with normals).

    With structures: their decimated surfaces (``names`` or all; cached and made at up to
    MAX_DISPLAY_TRIANGLES in total). ``render_triangles``: what the renderer gets, at most
    this many triangles over all the twin's structures (an equal share each, reduced by
    :func:`clustered`; None: no cap) - a software OpenGL draws ~1M triangles per second, and
    every frame is drawn on the GUI thread. Without structures: the volume's iso-surface
    (bone for CT, skin otherwise) from the subsampled volume.
    """
    scene = Scene3D()
    if with_volume:
        scene.volume = display_volume(twin.image, progress=_part(progress, 0.0, 0.2),
                                      cancel=cancel)
    if len(twin.segmentation):
        shown = cached_display_meshes(twin, names)  # from the bundle, still valid
        todo = [n for n in (twin.segmentation.names() if names is None else names)
                if n not in shown]
        made = display_surfaces(twin, names=todo, progress=_part(progress, 0.2, 0.8),
                                cancel=cancel) if todo else {}
        made = {name: display_smoothed(mesh) for name, mesh in made.items()}
        shown.update(made)
        share = (None if render_triangles is None
                 else max(MIN_RENDER_SHARE, render_triangles // len(twin.segmentation)))
        for n, (name, mesh) in enumerate(shown.items()):
            check(cancel)
            if share is not None:
                mesh = clustered(mesh, max_triangles=share)
            scene.surfaces[name] = mesh_to_polydata(mesh, normals=True)
            report(progress, 0.8 + 0.2 * (n + 1) / len(shown), "3D surfaces")
        scene.made = made
    elif scene.volume is not None:
        mesh = scan_surface(scene.volume, progress=_part(progress, 0.2, 0.9), cancel=cancel)
        check(cancel)
        if not mesh.is_empty():  # smoothed: the raw iso-surface looks faceted when lit
            scene.scan_surface = mesh_to_polydata(display_smoothed(mesh), normals=True)
    report(progress, 1.0, "3D view ready")
    return scene


def twin_from_series(series: Any, *, volume: int | None = None,
                     progress: ProgressCallback | None = None,
                     cancel: CancelToken | None = None) -> Twin:
    """Load one series (from a scan; ``volume`` of a multi-volume one) as a twin without
    structures."""
    from surgiplan.io.dicom_load import load_series

    volume = load_series(series, volume=volume, progress=progress, cancel=cancel)
    provenance = Provenance(source_series_uids=[volume.series_uid or series.series_uid],
                            import_warnings=list(volume.warnings))
    return Twin(volume, provenance=provenance)


def display_surfaces(twin: Twin, *, names: list[str] | None = None,
                     max_triangles: int = MAX_DISPLAY_TRIANGLES,
                     progress: ProgressCallback | None = None,
                     cancel: CancelToken | None = None) -> dict[str, SurfaceMesh]:
    """Surfaces to display (LPS mm), at most ``max_triangles`` in total.

    Cached twin surfaces are used when they fit the per-structure budget; missing ones are
    computed (and cached on the twin) with the core's mesher, which decimates to the budget.
    """
    from surgiplan.processing.surfaces import structure_surfaces

    names = list(twin.segmentation.names() if names is None else names)
    if not names:
        return {}
    per_structure = max(1000, max_triangles // len(names))
    cached = set(twin.cached_surface_names())
    meshes = {n: twin.surface(n) for n in names if n in cached}
    meshes = {n: m for n, m in meshes.items() if m.n_triangles <= per_structure}
    missing = [n for n in names if n not in meshes]
    if missing:
        made = structure_surfaces(twin.segmentation, names=missing, max_triangles=per_structure,
                                  progress=progress, cancel=cancel)
        meshes.update(made)
    report(progress, 1.0, "surfaces ready")
    return meshes


def display_volume(image: ImageVolume, *, max_dim: int = 160,
                   progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None) -> ImageVolume:
    """A subsampled copy for 3D volume rendering: at most ``max_dim`` voxels along each axis.

    Strided subsampling from voxel 0, so voxel centres stay on the original grid (same origin,
    spacing times the stride).
    """
    steps = [max(1, -(-n // max_dim)) for n in image.geometry.size]  # ceil(n / max_dim)
    check(cancel)
    array = np.ascontiguousarray(image.array[:: steps[2], :: steps[1], :: steps[0]])
    geo = image.geometry
    geometry = ImageGeometry(
        (array.shape[2], array.shape[1], array.shape[0]),
        tuple(s * f for s, f in zip(geo.spacing_mm, steps, strict=True)),
        geo.origin_lps, geo.direction)
    report(progress, 1.0, "3D volume ready")
    return ImageVolume(array, geometry, modality=image.modality, units=image.units,
                       description=image.description, series_uid=image.series_uid)


def scan_surface_level(volume: ImageVolume) -> float:
    """Iso-value of the default 3D surface of a scan without structures: bone for CT (300 HU),
    else 15 % of the 99th-percentile intensity (the skin of an MR head)."""
    if volume.modality == "CT":
        return 300.0
    sample = volume.array.reshape(-1)[:: max(1, volume.array.size // 200_000)]
    return float(0.15 * np.percentile(sample, 99.0))


def scan_surface(volume: ImageVolume, *, max_triangles: int = 50_000,
                 progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> SurfaceMesh:
    """Iso-surface (LPS mm) of a (subsampled) scan at :func:`scan_surface_level`, decimated."""
    from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkFiltersCore import vtkFlyingEdges3D

    from surgiplan.processing.surfaces import decimated
    from surgiplan.processing.vtk_threads import VTK_PIPELINE_LOCK

    geo = volume.geometry
    image = vtkImageData()
    image.SetDimensions(*geo.size)
    image.SetSpacing(*geo.spacing_mm)
    scalars = numpy_to_vtk(np.ascontiguousarray(volume.array, dtype=np.float32).reshape(-1),
                           deep=True)
    image.GetPointData().SetScalars(scalars)
    check(cancel)
    iso = vtkFlyingEdges3D()
    iso.SetInputData(image)
    iso.SetValue(0, scan_surface_level(volume))
    iso.ComputeNormalsOff()
    with VTK_PIPELINE_LOCK:
        iso.Update()
    out = iso.GetOutput()
    check(cancel)
    if out.GetNumberOfPolys() == 0:
        return SurfaceMesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64))
    points = vtk_to_numpy(out.GetPoints().GetData()).astype(np.float64)
    faces = vtk_to_numpy(out.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    # index-aligned mm -> LPS: rotate by the direction, then shift to the origin
    mesh = SurfaceMesh(points @ geo.direction.T + np.asarray(geo.origin_lps), faces)
    report(progress, 0.7, "simplifying 3D surface")
    if mesh.n_triangles > max_triangles:
        mesh = decimated(mesh, max_triangles=max_triangles)
    report(progress, 1.0, "3D surface ready")
    return mesh
