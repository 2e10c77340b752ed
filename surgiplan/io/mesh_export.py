"""Surface meshes of structures to STL / OBJ / PLY / VTP files (VTK writers), in millimetres.

Coordinates are patient LPS mm by default (SurgiPlan's frame, the DICOM patient frame);
``frame="RAS"`` negates x and y for tools that expect RAS (3D Slicer models, many mesh
viewers). Negating two axes is a rotation, so triangles keep their outward winding. Each file
says its frame and unit: the STL header / solid name, an OBJ comment, a PLY comment, and
``coordinate_system`` / ``units`` field-data strings in a VTP.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from surgiplan.errors import BadInputError
from surgiplan.io.atomic import write_bytes_atomic
from surgiplan.model.frames import lps_to_ras
from surgiplan.model.surface import SurfaceMesh
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.twin import Twin

MESH_FORMATS = ("stl", "obj", "ply", "vtp")
Frame = Literal["LPS", "RAS"]


STATEMENT_CHARS = 79  # a binary STL header is 80 bytes; VTK keeps 79 characters and a NUL


def frame_statement(name: str, frame: Frame) -> str:
    """One ASCII line (<= 79 characters) stating frame, unit and structure, e.g.
    'coordinates LPS mm (DICOM patient LPS); SurgiPlan liver'. The frame and unit come first
    and are never cut; a long structure name is shortened (ending in '~')."""
    head = f"coordinates {frame} mm (DICOM patient {frame}); SurgiPlan "
    clean = re.sub(r"[^\x20-\x7e]", "_", name).strip() or "structure"
    room = STATEMENT_CHARS - len(head)
    return head + (clean if len(clean) <= room else clean[: room - 1] + "~")


def mesh_in_frame(mesh: SurfaceMesh, frame: Frame) -> SurfaceMesh:
    """The mesh with vertices in ``frame`` (LPS unchanged; RAS = x and y negated)."""
    if frame == "LPS":
        return mesh
    if frame != "RAS":
        raise ValueError(f"frame must be 'LPS' or 'RAS', got {frame!r}")
    return SurfaceMesh(lps_to_ras(mesh.vertices_lps), mesh.faces)


def _polydata(mesh: SurfaceMesh, statement: str, frame: Frame):
    from vtkmodules.vtkCommonCore import vtkStringArray

    from surgiplan.processing.mesh_convert import surface_to_polydata

    polydata = surface_to_polydata(mesh)
    for key, value in (("coordinate_system", frame), ("units", "mm"), ("description", statement)):
        array = vtkStringArray()
        array.SetName(key)
        array.InsertNextValue(value)
        polydata.GetFieldData().AddArray(array)
    return polydata


def _writer(fmt: str, statement: str, *, binary: bool):
    """A VTK poly-data writer for ``fmt`` (its class differs per format)."""
    if fmt == "stl":
        from vtkmodules.vtkIOGeometry import vtkSTLWriter

        stl = vtkSTLWriter()
        stl.SetHeader(statement)  # the ASCII solid name / the 80-byte binary header
        stl.SetFileType(2 if binary else 1)
        return stl
    if fmt == "obj":
        from vtkmodules.vtkIOGeometry import vtkOBJWriter

        return vtkOBJWriter()
    if fmt == "ply":
        from vtkmodules.vtkIOPLY import vtkPLYWriter

        ply = vtkPLYWriter()
        ply.AddComment(statement)
        ply.SetFileType(2 if binary else 1)
        return ply
    if fmt == "vtp":
        from vtkmodules.vtkIOXML import vtkXMLPolyDataWriter

        vtp = vtkXMLPolyDataWriter()
        if binary:
            vtp.SetDataModeToBinary()
        else:
            vtp.SetDataModeToAscii()
        return vtp
    raise BadInputError(f"unknown mesh format {fmt!r}",
                        action=f"Use one of {', '.join(MESH_FORMATS)}")


def mesh_bytes(mesh: SurfaceMesh, fmt: str, *, name: str = "", frame: Frame = "LPS",
               binary: bool = True) -> bytes:
    """The bytes of a mesh file of format ``fmt`` (stl, obj, ply, vtp) in ``frame`` mm."""
    fmt = fmt.lower().lstrip(".")
    statement = frame_statement(name, frame)
    writer = _writer(fmt, statement, binary=binary)
    writer.SetInputData(_polydata(mesh_in_frame(mesh, frame), statement, frame))
    with tempfile.TemporaryDirectory(prefix="surgiplan-mesh-") as folder:
        target = Path(folder) / f"mesh.{fmt}"
        writer.SetFileName(str(target))
        if not writer.Write() or not target.is_file():
            raise RuntimeError(f"VTK could not write the {fmt} mesh")
        data = target.read_bytes()
    if fmt == "obj":  # OBJ has no header field: state frame and unit in a leading comment
        data = f"# {statement}\n".encode("ascii") + data
    return data


def write_mesh(mesh: SurfaceMesh, path: str | Path, *, name: str = "", frame: Frame = "LPS",
               binary: bool = True) -> Path:
    """Write one mesh; the format comes from the suffix (.stl, .obj, .ply, .vtp). Atomic."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in MESH_FORMATS:
        raise BadInputError(f"unknown mesh file type {path.suffix!r}", path=path,
                            action=f"Use one of .{', .'.join(MESH_FORMATS)}")
    if mesh.is_empty():
        raise BadInputError(f"the surface of {name or 'the structure'} is empty (no voxels)",
                            path=path, action="Segment the structure before exporting it")
    return write_bytes_atomic(path, mesh_bytes(mesh, fmt, name=name, frame=frame, binary=binary))


def file_stem(name: str) -> str:
    """A file-name-safe stem for a structure name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:80] or "structure"


def export_structure_meshes(
    twin: Twin,
    folder: str | Path,
    *,
    fmt: str = "stl",
    names: Sequence[str] | None = None,
    frame: Frame = "LPS",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Path]:
    """Write one ``<structure>.<fmt>`` per structure (``names``, default all) into ``folder``.

    Structures without voxels are skipped when exporting all, refused when named. Returns
    structure name -> written path.
    """
    folder = Path(folder)
    wanted = list(names) if names else twin.segmentation.names()
    for name in wanted:
        if name not in twin.segmentation.names():
            raise BadInputError(f"the case has no structure named {name!r} (it has "
                                f"{', '.join(twin.segmentation.names()) or 'none'})",
                                action="Give one of the case's structure names")
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    stems: set[str] = set()
    for n, name in enumerate(wanted):
        check(cancel)
        report(progress, n / max(1, len(wanted)), f"surface {name}")
        mesh = twin.surface(name)
        if mesh.is_empty() and not names:
            continue
        stem, k = file_stem(name), 2
        while stem.lower() in stems:
            stem, k = f"{file_stem(name)}_{k}", k + 1
        stems.add(stem.lower())
        written[name] = write_mesh(mesh, folder / f"{stem}.{fmt}", name=name, frame=frame)
    report(progress, 1.0, "meshes written")
    return written
