"""Distance maps and surfaces on a realistic 512x512x300 label map, against the bare library calls.

Figures (ratios measured in the same run):

* ``distance_map_vs_maurer``: our ``signed_distance_map`` over one bare
  ``sitk.SignedMaurerDistanceMap`` call (numpy in, numpy out) on the same mask;
* ``distance_roi30_vs_full``: the 30 mm region-of-interest map over the full one;
* ``distance_peak_memory``: peak resident memory added while computing the map, in units of
  the float32 map's size (the bare call's figure is in the detail);
* ``surfaces_vs_surfacenets``: ``structure_surfaces`` for every structure (16 smoothing
  iterations) over one bare ``vtkSurfaceNets3D`` pass with its built-in 16-iteration smoothing
  on each whole label-map layer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import surgiplan  # noqa: F401  (selects VTK's threaded SMP backend before VTK loads)
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Segmentation

SIZE = (512, 512, 300)
SPACING = (0.7, 0.7, 1.0)


def _label_map() -> Segmentation:
    """Ellipsoids (organ, tumour) and tubes (vessels) on a 512x512x300 grid."""
    geometry = ImageGeometry(SIZE, SPACING, (-179.0, -179.0, -150.0))
    seg = Segmentation(geometry=geometry, layers=[np.zeros(geometry.shape_zyx, np.uint8)])
    z, y, x = (np.arange(n, dtype=np.float32)[:, None, None] for n in geometry.shape_zyx)
    y, x = y.reshape(1, -1, 1), x.reshape(1, 1, -1)
    shapes = {
        "liver": ((150, 230, 170), (70, 110, 90)),
        "tumour": ((150, 260, 190), (18, 25, 25)),
        "kidney": ((140, 300, 360), (45, 35, 30)),
    }
    for name, ((cz, cy, cx), (rz, ry, rx)) in shapes.items():
        inside = ((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1
        seg.add(name, inside)
    aorta = ((y - 330) ** 2 + (x - 250) ** 2 <= 14**2) & (z >= 0)
    seg.add("aorta", np.broadcast_to(aorta, geometry.shape_zyx).copy())
    portal = ((z - 150) ** 2 + (y - 200) ** 2 <= 6**2) & (x >= 120) & (x <= 300)
    seg.add("portal_vein", np.broadcast_to(portal, geometry.shape_zyx).copy())
    return seg


def _timed(fn: Callable[[], object], repeats: int = 2) -> tuple[float, object]:
    """Best wall time of ``repeats`` runs (the machine is shared and noisy) and a result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _peak_rss_added(fn: Callable[[], object]) -> float:
    """Peak resident bytes added while ``fn`` runs (Linux: resets VmHWM via clear_refs)."""
    status = Path("/proc/self/status")
    clear = Path("/proc/self/clear_refs")

    def field(name: str) -> float:
        for line in status.read_text().splitlines():
            if line.startswith(name):
                return float(line.split()[1]) * 1024
        return float("nan")

    try:
        clear.write_text("5")
    except OSError:
        return float("nan")
    before = field("VmRSS:")
    result = fn()
    peak = field("VmHWM:")
    del result
    return peak - before


def _bare_maurer(mask: np.ndarray) -> np.ndarray:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(mask.view(np.uint8))
    image.SetSpacing(SPACING)
    dist = sitk.SignedMaurerDistanceMap(
        image, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
    )
    return sitk.GetArrayFromImage(dist)


def _bare_surface_nets(labels: np.ndarray, values: list[int]):
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkFiltersCore import vtkSurfaceNets3D

    image = vtkImageData()
    image.SetDimensions(*SIZE)
    image.SetSpacing(*SPACING)
    image.GetPointData().SetScalars(numpy_to_vtk(labels.reshape(-1), deep=False))
    nets = vtkSurfaceNets3D()
    nets.SetInputData(image)
    for i, v in enumerate(values):
        nets.SetValue(i, v)
    nets.SetOutputMeshTypeToTriangles()
    nets.SetSmoothing(True)
    nets.SetNumberOfIterations(16)
    nets.Update()
    return nets.GetOutput().GetNumberOfCells()


def run() -> list[dict]:
    from surgiplan.processing.distance import signed_distance_map
    from surgiplan.processing.surfaces import structure_surfaces

    seg = _label_map()
    geometry = seg.geometry
    mask = seg.mask("tumour")
    map_mb = geometry.n_voxels * 4 / 1e6
    _bare_maurer(mask)  # warm-up: ITK thread pool, first page faults
    t_bare, _ = _timed(lambda: _bare_maurer(mask))
    t_ours, _ = _timed(lambda: signed_distance_map(mask, geometry))
    t_roi, _ = _timed(lambda: signed_distance_map(mask, geometry, roi_margin_mm=30.0))
    mem_bare = _peak_rss_added(lambda: _bare_maurer(mask)) / (map_mb * 1e6)
    mem_ours = _peak_rss_added(lambda: signed_distance_map(mask, geometry)) / (map_mb * 1e6)
    def bare_all_layers() -> int:
        return sum(
            _bare_surface_nets(layer, [s.label for s in seg.structures if s.layer == n])
            for n, layer in enumerate(seg.layers)
        )

    t_nets, n_bare = _timed(bare_all_layers)
    t_surf, meshes = _timed(lambda: structure_surfaces(seg))
    n_ours = sum(m.n_triangles for m in meshes.values())
    grid = f"{SIZE[0]}x{SIZE[1]}x{SIZE[2]}"
    return [
        {"name": "distance_map_vs_maurer", "value": t_ours / t_bare, "unit": "x", "goal": 1.2,
         "detail": f"tumour on {grid}: ours {t_ours:.2f} s, bare Maurer {t_bare:.2f} s"},
        {"name": "distance_roi30_vs_full", "value": t_roi / t_ours, "unit": "x", "goal": 0.5,
         "detail": f"30 mm ROI {t_roi:.2f} s vs full {t_ours:.2f} s"},
        {"name": "distance_peak_memory", "value": mem_ours, "unit": "x map", "goal": 4.0,
         "detail": f"peak RSS added / float32 map ({map_mb:.0f} MB); bare call {mem_bare:.2f}x"},
        {"name": "surfaces_vs_surfacenets", "value": t_surf / t_nets, "unit": "x", "goal": 1.2,
         "detail": f"{len(meshes)} structures in {len(seg.layers)} layers: ours {t_surf:.2f} s "
                   f"({n_ours} triangles), "
                   f"bare SurfaceNets {t_nets:.2f} s ({n_bare} triangles, shared faces once)"},
    ]
