"""Export a plan's planned objects: implants and ablation zones as STL (LPS mm, or RAS), and the
resection specimens and ablation zones as DICOM SEG on the case's image grid.

Implant meshes come straight from the plan (the implant mesh placed by its pose). Zones are
the simulator's nominal zone (ablation) or specimen (resection) surfaces, so those
interventions are re-run without Monte Carlo; zone masks for DICOM SEG are the voxels whose
centres lie inside the closed surface (VTK's polydata-to-stencil).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.io.mesh_export import Frame, file_stem, write_mesh
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role, Segmentation
from surgiplan.model.surface import SurfaceMesh
from surgiplan.plans.model import Intervention, Plan
from surgiplan.plans.scoring import score_intervention
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.simulation.context import SimulationContext
from surgiplan.simulation.inputs import ImplantInput
from surgiplan.simulation.spec import Kind
from surgiplan.twin import Twin


@dataclass(frozen=True)
class PlannedMesh:
    """A planned object's surface: ``name`` "INTERVENTION - PART", its kind, LPS mm."""

    name: str
    kind: Kind
    mesh: SurfaceMesh


def implant_mesh_lps(intervention: Intervention) -> SurfaceMesh:
    """The implant mesh of an implant intervention, placed by its pose (LPS mm)."""
    inputs = intervention.input_model()
    if not isinstance(inputs, ImplantInput):
        raise ValueError(f"{intervention.label!r} is a {intervention.kind} intervention, "
                         "not an implant")
    vertices = np.asarray(inputs.vertices_mm, float)
    pose = np.asarray(inputs.pose, float)
    return SurfaceMesh(vertices @ pose[:3, :3].T + pose[:3, 3],
                       np.asarray(inputs.faces, dtype=np.int64))


def _zone_meshes(context: SimulationContext, intervention: Intervention,
                 cancel: CancelToken | None) -> list[tuple[str, SurfaceMesh]]:
    nominal = intervention.model_copy(update={
        "uncertainty": {**intervention.uncertainty, "samples": 0},
        "parameters": {**intervention.parameters,
                       **({"display_meshes": True} if intervention.kind is Kind.RESECTION
                          else {})}})
    result = score_intervention(context, nominal, cancel=cancel)
    if not result.ok:
        raise BadInputError(f"{intervention.label}: the simulator failed ({result.error})",
                            action="fix the intervention and score it again")
    wanted = "specimen" if intervention.kind is Kind.RESECTION else "ablation zone"
    return [(m.label, SurfaceMesh(np.asarray(m.vertices_lps, float),
                                  np.asarray(m.faces, np.int64)))
            for m in result.geometry.meshes if m.label.startswith(wanted)]


def planned_meshes(context: SimulationContext, plan: Plan, *,
                   kinds: tuple[Kind, ...] = (Kind.IMPLANT, Kind.ABLATION, Kind.RESECTION),
                   progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None) -> list[PlannedMesh]:
    """Implants, ablation zones and resection specimens of ``plan`` (LPS mm)."""
    out = []
    items = [i for i in plan.interventions if i.kind in kinds]
    for n, item in enumerate(items):
        check(cancel)
        report(progress, n / max(1, len(items)), item.label)
        if item.kind is Kind.IMPLANT:
            out.append(PlannedMesh(f"{item.label} - implant", item.kind, implant_mesh_lps(item)))
        elif item.kind in (Kind.ABLATION, Kind.RESECTION):
            out += [PlannedMesh(f"{item.label} - {label}", item.kind, mesh)
                    for label, mesh in _zone_meshes(context, item, cancel)]
    report(progress, 1.0, "planned objects ready")
    return out


def export_stl(context: SimulationContext, plan: Plan, out_dir: str | Path, *,
               frame: Frame = "LPS", cancel: CancelToken | None = None) -> list[Path]:
    """One STL per implant and ablation zone of ``plan`` in ``out_dir`` (``frame`` mm)."""
    meshes = planned_meshes(context, plan, kinds=(Kind.IMPLANT, Kind.ABLATION), cancel=cancel)
    if not meshes:
        raise BadInputError(f"plan {plan.name!r} holds no implant or ablation zone",
                            path=out_dir, action="choose a plan with implants or probes")
    from surgiplan.io.atomic import removed_on_failure

    out = Path(out_dir)
    paths = [out / f"{file_stem(f'{plan.name} {m.name}')}.stl" for m in meshes]
    with removed_on_failure(out, *paths):  # a failed export leaves no folder, no file
        out.mkdir(parents=True, exist_ok=True)
        return [write_mesh(m.mesh, path, name=m.name, frame=frame)
                for m, path in zip(meshes, paths, strict=True)]


def mesh_mask(mesh: SurfaceMesh, geometry: ImageGeometry) -> np.ndarray:
    """Voxels ``(nz, ny, nx)`` of ``geometry`` whose centres are inside the closed ``mesh``."""
    from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray, vtk_to_numpy
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
    from vtkmodules.vtkImagingStencil import vtkImageStencilToImage, vtkPolyDataToImageStencil

    points = vtkPoints()  # in continuous voxel indices: the stencil grid is then axis-aligned
    points.SetData(numpy_to_vtk(np.ascontiguousarray(geometry.lps_to_index(mesh.vertices_lps)),
                                deep=True))
    cells = vtkCellArray()
    cells.SetData(numpy_to_vtkIdTypeArray(np.arange(0, 3 * len(mesh.faces) + 1, 3,
                                                    dtype=np.int64), deep=True),
                  numpy_to_vtkIdTypeArray(mesh.faces.reshape(-1).astype(np.int64), deep=True))
    polydata = vtkPolyData()
    polydata.SetPoints(points)
    polydata.SetPolys(cells)
    nx, ny, nz = geometry.size
    stencil = vtkPolyDataToImageStencil()
    stencil.SetInputData(polydata)
    stencil.SetOutputOrigin(0.0, 0.0, 0.0)
    stencil.SetOutputSpacing(1.0, 1.0, 1.0)
    stencil.SetOutputWholeExtent(0, nx - 1, 0, ny - 1, 0, nz - 1)
    image = vtkImageStencilToImage()
    image.SetInputConnection(stencil.GetOutputPort())
    image.SetInsideValue(1)
    image.SetOutsideValue(0)
    image.SetOutputScalarTypeToUnsignedChar()
    image.Update()
    return vtk_to_numpy(image.GetOutput().GetPointData().GetScalars()).reshape(nz, ny, nx) > 0


def zones_twin(twin: Twin, context: SimulationContext, plan: Plan, *,
               cancel: CancelToken | None = None) -> Twin:
    """A twin on ``twin``'s image holding the plan's resection specimens and ablation zones."""
    meshes = planned_meshes(context, plan, kinds=(Kind.ABLATION, Kind.RESECTION), cancel=cancel)
    if not meshes:
        raise BadInputError(f"plan {plan.name!r} holds no resection or ablation zone",
                            action="choose a plan with a resection or an ablation")
    zones = Twin(twin.image, Segmentation(geometry=twin.geometry),
                 patient_ref=twin.patient_ref)
    for m in meshes:
        colour = (1.0, 0.55, 0.1) if m.kind is Kind.ABLATION else (0.85, 0.3, 0.3)
        zones.add_structure(m.name, mesh_mask(m.mesh, twin.geometry), role=Role.TARGET,
                            color=colour, description=f"{plan.name}: planned {m.kind} zone")
    return zones


def export_zones_dicom_seg(twin: Twin, plan: Plan, path: str | Path, *,
                           include_identifiers: bool = False,
                           progress: ProgressCallback | None = None,
                           cancel: CancelToken | None = None):
    """The plan's resection and ablation zones as one DICOM SEG referencing the case's source
    series (see ``write_dicom_seg``; de-identified unless ``include_identifiers``)."""
    from surgiplan.io.atomic import removed_on_failure
    from surgiplan.io.dicom_seg import reference_series_folder, write_dicom_seg

    zones = zones_twin(twin, SimulationContext(twin), plan, cancel=cancel)
    with removed_on_failure(path, reference_series_folder(path)):  # nothing half-written
        return write_dicom_seg(zones, path, include_identifiers=include_identifiers,
                               algorithm_type="SEMIAUTOMATIC", progress=progress, cancel=cancel)

