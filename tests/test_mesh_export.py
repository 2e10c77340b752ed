"""Structure surfaces to STL / OBJ / PLY / VTP: LPS mm (or RAS on request), frame stated."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from surgiplan.errors import BadInputError
from surgiplan.io.mesh_export import MESH_FORMATS, export_structure_meshes, write_mesh
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.twin import Twin

CENTRE_LPS = np.array([30.0, -40.0, 100.0])
RADIUS_MM = 9.0


@pytest.fixture(scope="module")
def twin() -> Twin:
    geometry = ImageGeometry((48, 44, 40), (0.7, 0.75, 0.8), (10.0, -57.0, 84.0))
    k, j, i = np.indices(geometry.shape_zyx)
    lps = geometry.index_to_lps(np.stack([i, j, k], axis=-1))
    ball = np.linalg.norm(lps - CENTRE_LPS, axis=-1) < RADIUS_MM
    t = Twin(ImageVolume(np.zeros(geometry.shape_zyx, np.int16), geometry, modality="CT"))
    t.add_structure("Tumour (left lobe)", ball, role="target")
    t.add_structure("empty", np.zeros(geometry.shape_zyx, bool))
    return t


def _read_vtp(path):
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkIOXML import vtkXMLPolyDataReader

    reader = vtkXMLPolyDataReader()
    reader.SetFileName(str(path))
    reader.Update()
    out = reader.GetOutput()
    frame = out.GetFieldData().GetAbstractArray("coordinate_system").GetValue(0)
    units = out.GetFieldData().GetAbstractArray("units").GetValue(0)
    faces = vtk_to_numpy(out.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    return trimesh.Trimesh(vtk_to_numpy(out.GetPoints().GetData()), faces, process=False), \
        frame, units


def _load(path):
    if path.suffix == ".vtp":
        return _read_vtp(path)[0]
    return trimesh.load(path, force="mesh", process=True)


@pytest.mark.parametrize("fmt", MESH_FORMATS)
def test_each_format_holds_the_sphere_in_lps_mm(twin, tmp_path, fmt):
    written = export_structure_meshes(twin, tmp_path, fmt=fmt)
    assert list(written) == ["Tumour (left lobe)"]  # the empty structure is skipped
    path = written["Tumour (left lobe)"]
    assert path.name == f"Tumour_left_lobe.{fmt}"
    mesh = _load(path)
    assert np.allclose(mesh.bounds.mean(axis=0), CENTRE_LPS, atol=0.5)
    assert np.allclose(mesh.extents, 2 * RADIUS_MM, atol=1.5)
    # outward winding: positive enclosed volume close to the ball's
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * RADIUS_MM**3, rel=0.1)


def test_stl_states_lps_millimetres_and_ras_variant_flips_x_and_y(twin, tmp_path):
    mesh = twin.surface("Tumour (left lobe)")
    lps = write_mesh(mesh, tmp_path / "lps.stl", name="Tumour")
    ras = write_mesh(mesh, tmp_path / "ras.stl", name="Tumour", frame="RAS")
    header = lps.read_bytes()[:80].decode("ascii")
    assert "LPS mm" in header and not header.startswith("solid")
    assert "RAS mm" in ras.read_bytes()[:80].decode("ascii")
    a, b = trimesh.load(lps), trimesh.load(ras)
    assert np.allclose(b.bounds.mean(axis=0), CENTRE_LPS * [-1, -1, 1], atol=0.5)
    assert b.volume == pytest.approx(a.volume, rel=1e-6)  # still outward
    ascii_stl = tmp_path / "ascii.stl"
    from surgiplan.io.mesh_export import mesh_bytes

    ascii_stl.write_bytes(mesh_bytes(mesh, "stl", name="Tumour", binary=False))
    assert ascii_stl.read_text().startswith(
        "solid coordinates LPS mm (DICOM patient LPS); SurgiPlan Tumour")


def test_a_long_name_never_cuts_the_frame_statement(twin, tmp_path):
    name = "Tumour of the left hepatic lobe, segment VIII, second lesion near the IVC"
    path = write_mesh(twin.surface("Tumour (left lobe)"), tmp_path / "long.stl", name=name)
    header = path.read_bytes()[:80].rstrip(b"\0 ").decode("ascii")
    assert header.startswith("coordinates LPS mm (DICOM patient LPS); SurgiPlan Tumour of")
    assert len(header) <= 79 and header.endswith("~")


def test_obj_ply_vtp_state_the_frame(twin, tmp_path):
    written = {fmt: export_structure_meshes(twin, tmp_path / fmt, fmt=fmt, frame="RAS")
               ["Tumour (left lobe)"] for fmt in ("obj", "ply", "vtp")}
    assert written["obj"].read_text().startswith(
        "# coordinates RAS mm (DICOM patient RAS); SurgiPlan Tumour (left lobe)")
    ply = written["ply"].read_bytes()
    assert b"comment coordinates RAS mm (DICOM patient RAS); SurgiPlan Tumour (left lobe)" in ply
    _, frame, units = _read_vtp(written["vtp"])
    assert (frame, units) == ("RAS", "mm")


def test_bad_requests_are_one_line_errors(twin, tmp_path):
    with pytest.raises(BadInputError, match="no structure named 'liver'"):
        export_structure_meshes(twin, tmp_path, names=["liver"])
    with pytest.raises(BadInputError, match="is empty"):
        export_structure_meshes(twin, tmp_path, names=["empty"])
    with pytest.raises(BadInputError, match="unknown mesh file type"):
        write_mesh(twin.surface("Tumour (left lobe)"), tmp_path / "x.fbx")
