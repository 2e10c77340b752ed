"""Interop: 3D Slicer .mrk.json export/import (LPS out, RAS in), implant STL, zone voxel masks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.surface import SurfaceMesh
from surgiplan.model.volume import ImageVolume
from surgiplan.plans.exports import export_stl, implant_mesh_lps, mesh_mask
from surgiplan.plans.model import Intervention, Plan
from surgiplan.plans.slicer_markups import MARKUP_TYPES, MarkupsFile, read_markups, write_markups
from surgiplan.simulation import ImplantInput, SimulationContext, TrajectoryInput
from surgiplan.twin import Twin

ENTRY, TARGET = (-53.4, -37.8, 74.4), (-28.0, 20.0, 42.0)


def _plan() -> Plan:
    return Plan(name="A", interventions=[Intervention.from_input(
        "Electrode", TrajectoryInput(entry_lps=ENTRY, target_lps=TARGET))])


def test_mrk_json_is_lps_valid_and_round_trips(tmp_path):
    path = write_markups([_plan()], tmp_path / "plan.mrk.json")
    raw = json.loads(path.read_text())
    assert raw["@schema"].endswith("markups-schema-v1.0.3.json#")
    MarkupsFile.model_validate(raw)  # Slicer schema constraints
    line, fiducials = raw["markups"]
    assert line["type"] == "Line" and line["type"] in MARKUP_TYPES
    assert line["coordinateSystem"] == "LPS" and line["coordinateUnits"] == "mm"
    assert [cp["label"] for cp in line["controlPoints"]] == ["entry", "target"]
    assert line["controlPoints"][0]["position"] == list(ENTRY)
    assert len(line["controlPoints"][0]["orientation"]) == 9
    assert fiducials["type"] == "Fiducial"
    assert fiducials["controlPoints"][0]["position"] == list(TARGET)
    back = read_markups(path)
    (name, entry, target), = back.lines
    assert name == "A: Electrode" and entry == ENTRY and target == TARGET
    assert back.points == [("A: Electrode", TARGET)] and back.notes == []


def test_slicer_style_ras_file_is_converted_to_lps(tmp_path):
    slicer = {  # as 3D Slicer 5 writes a line and a point list in RAS
        "@schema": "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/"
                   "Markups/Resources/Schema/markups-schema-v1.0.3.json#",
        "markups": [
            {"type": "Line", "coordinateSystem": "RAS", "coordinateUnits": "mm", "locked": False,
             "fixedNumberOfControlPoints": False, "labelFormat": "%N-%d",
             "lastUsedControlPointNumber": 2, "name": "L",
             "controlPoints": [
                 {"id": "1", "label": "L-1", "description": "", "associatedNodeID": "",
                  "position": [53.4, 37.8, 74.4], "orientation": [-1.0, -0.0, -0.0, -0.0, -1.0,
                                                                  -0.0, 0.0, 0.0, 1.0],
                  "selected": True, "locked": False, "visibility": True,
                  "positionStatus": "defined"},
                 {"id": "2", "label": "L-2", "position": [28.0, -20.0, 42.0],
                  "positionStatus": "defined"}],
             "measurements": [{"name": "length", "enabled": True, "value": 71.0,
                               "units": "mm", "printFormat": "%-#4.4gmm"}],
             "display": {"visibility": True, "opacity": 1.0, "color": [0.4, 1.0, 1.0],
                         "glyphType": "Sphere3D", "textScale": 3.0}},
            {"type": "Fiducial", "coordinateSystem": "RAS", "name": "F",
             "controlPoints": [{"id": "1", "label": "F-1", "position": [1.0, 2.0, 3.0]},
                               {"id": "2", "label": "unset", "position": [0.0, 0.0, 0.0],
                                "positionStatus": "undefined"}]},
            {"type": "Angle", "coordinateSystem": "LPS", "controlPoints": []},
        ]}
    path = tmp_path / "slicer.mrk.json"
    path.write_text(json.dumps(slicer))
    got = read_markups(path)
    (name, entry, target), = got.lines
    assert name == "L" and entry == pytest.approx((-53.4, -37.8, 74.4))
    assert target == pytest.approx((-28.0, 20.0, 42.0))
    assert got.points == [("F-1", pytest.approx((-1.0, -2.0, 3.0)))]
    assert any("RAS" in n for n in got.notes) and any("Angle" in n for n in got.notes)


def test_bad_markups_files_fail_in_one_line(tmp_path):
    path = tmp_path / "bad.mrk.json"
    path.write_text(json.dumps({"@schema": "x", "markups": [{"type": "Line",
                                                            "coordinateSystem": "XYZ"}]}))
    with pytest.raises(BadInputError, match=r"bad\.mrk\.json: not a valid 3D Slicer markups") as e:
        read_markups(path)
    assert "\n" not in str(e.value)
    with pytest.raises(BadInputError, match=r"ends in \.mrk\.json"):
        write_markups([_plan()], tmp_path / "plan.json")


def _tiny_twin() -> Twin:
    geometry = ImageGeometry((40, 40, 40), (1.0, 1.0, 1.0), (-20.0, -20.0, 20.0),
                             np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]))
    return Twin(ImageVolume(array=np.zeros(geometry.shape_zyx, np.int16), geometry=geometry))


def test_zone_mask_of_a_closed_mesh_matches_its_volume():
    twin = _tiny_twin()
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=10.0)
    centre = np.array([3.0, -2.0, 1.5])
    mask = mesh_mask(SurfaceMesh(sphere.vertices + centre, sphere.faces), twin.geometry)
    assert mask.shape == twin.geometry.shape_zyx
    assert mask.sum() == pytest.approx(4 / 3 * np.pi * 1000, rel=0.03)
    centre_ijk = np.rint(twin.geometry.lps_to_index(centre)).astype(int)
    assert mask[centre_ijk[2], centre_ijk[1], centre_ijk[0]]
    got = twin.geometry.index_to_lps(np.argwhere(mask)[:, ::-1]).mean(axis=0)
    assert got == pytest.approx(centre, abs=0.2)  # oblique direction handled


def test_implant_stl_is_the_posed_mesh(tmp_path):
    box = trimesh.creation.box(extents=(2.0, 4.0, 6.0))
    pose = np.eye(4)
    pose[:3, :3] = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    pose[:3, 3] = (5.0, 6.0, 7.0)
    item = Intervention(label="Cage", kind="implant", simulator_id="implant",
                        inputs=ImplantInput(implant_id="box", vertices_mm=box.vertices.tolist(),
                                            faces=box.faces.tolist(),
                                            pose=pose.tolist()).model_dump(mode="json"))
    mesh = implant_mesh_lps(item)
    assert mesh.vertices_lps.min(axis=0) == pytest.approx((3.0, 5.0, 4.0))
    (path,) = export_stl(SimulationContext(_tiny_twin()), Plan(name="P", interventions=[item]),
                         tmp_path)
    back = trimesh.load(path)
    assert path.suffix == ".stl" and back.is_watertight
    assert back.volume == pytest.approx(48.0) and back.bounds[0] == pytest.approx((3, 5, 4))
