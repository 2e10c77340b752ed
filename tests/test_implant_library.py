"""Implant library, mesh import (units), poses and the ``simulate implant`` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from surgiplan_implant.library import parse_screw_size, screw_mesh
from surgiplan_implant.mesh_import import import_implant
from surgiplan_implant.pose import parse_pose, pose_from_axis, poses_from_axes

from surgiplan.errors import BadInputError


def test_screw_mesh_has_the_labelled_diameter_and_length():
    vertices, faces = screw_mesh(6.5, 45.0)
    mesh = trimesh.Trimesh(vertices, faces)
    assert mesh.is_volume
    shank = vertices[(vertices[:, 2] > 0) & (vertices[:, 2] < 45.0 - 6.5)]
    assert np.hypot(shank[:, 0], shank[:, 1]).max() == pytest.approx(3.25, abs=1e-6)
    assert vertices[:, 2].max() == pytest.approx(45.0)  # tip at z = length
    assert vertices[:, 2].min() < 0  # the head sits at z < 0
    gaps = np.diff(np.unique(np.round(shank[:, 2], 6)))
    assert gaps.max() <= 0.5 + 1e-9  # rings every 0.5 mm: vertices sample the whole shank


def test_screw_sizes_are_diameter_first_and_swaps_are_caught():
    assert parse_screw_size("6.5x45") == (6.5, 45.0)
    with pytest.raises(BadInputError, match="swapped"):
        parse_screw_size("45x6.5")
    with pytest.raises(BadInputError, match="outside the library"):
        parse_screw_size("12x45")


@pytest.mark.parametrize(("scale", "units"), [(1.0, "mm"), (0.001, "m"), (1000.0, "um")])
def test_import_detects_units_and_never_modifies_the_file(tmp_path, scale, units):
    path = tmp_path / "cage.stl"
    trimesh.creation.box((30.0 * scale, 10.0 * scale, 12.0 * scale)).export(path)
    before = path.read_bytes()
    implant = import_implant(path)
    assert implant.units == units
    assert any("units guessed" in w for w in implant.warnings)
    assert np.ptp(implant.vertices_mm, axis=0).max() == pytest.approx(30.0)
    assert path.read_bytes() == before


def test_bad_implant_files_are_refused_in_one_line(tmp_path):
    bad = tmp_path / "x.stl"
    bad.write_bytes(b"not a mesh")
    with pytest.raises(BadInputError) as err:
        import_implant(bad)
    assert "x.stl" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(BadInputError, match="STL, OBJ or PLY"):
        import_implant(tmp_path / "x.step")


def test_poses_place_head_at_entry_and_keep_roll_under_perturbation():
    pose = pose_from_axis((1.0, 2.0, 3.0), (1.0, -38.0, 3.0))
    assert np.allclose(pose[:3, 3], (1, 2, 3))
    assert np.allclose(pose[:3, 2], (0, -1, 0))
    assert np.allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3))
    moved = poses_from_axes(np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, -38.0, 3.0]]), pose)
    assert np.allclose(moved[0], pose)
    with pytest.raises(BadInputError):
        parse_pose([1.0] * 16)


def test_cli_simulate_implant_json(tmp_path, capsys):
    from surgiplan.cli.main import main
    from surgiplan.io.bundle import save_bundle
    from surgiplan.twin import Twin
    from tests.conftest import shared_phantom

    image, seg, _ = shared_phantom("spine")
    case = tmp_path / "spine.surgiplan"
    save_bundle(Twin(image, seg), case)
    code = main(["simulate", "implant", str(case), "--screw", "7x40", "--entry", "17.3,35.8,0",
                 "--target", "10.0,-3.5,0", "--samples", "50", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    keys = {m["key"] for m in out["metrics"]}
    assert {"breach_mm", "breach_medial_mm", "breach_lateral_mm", "breach_superior_mm",
            "breach_inferior_mm", "breach_anterior_mm", "gertzbein_grade",
            "min_distance_mm"} <= keys
    assert out["details"]["gertzbein_grade"] == "A"
    assert out["provenance"]["simulator_id"] == "implant"
    assert main(["simulate", "implant", str(case), "--screw", "40x7", "--entry", "0,0,0",
                 "--target", "0,-1,0"]) == 2
    assert "swapped" in capsys.readouterr().err
