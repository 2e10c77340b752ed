"""Write paths of ``surgiplan plans --export-stl DIR`` and ``--export-seg FILE``: what is written
is valid (trimesh reads the STL in LPS mm where the implant was posed; pydicom and highdicom
read the SEG, whose frames cover the ablation zone), and a read-only, full or blocked target
exits 2 with one line and leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import trimesh

from surgiplan.cli.main import main
from surgiplan.plans.model import Intervention, Plan
from surgiplan.plans.store import read_plans, write_plans
from surgiplan.simulation import AblationInput, ImplantInput
from tests.reliability.savecase import small_case
from tests.reliability.test_saves_write_paths import (  # noqa: F401 (fixtures)
    _listing,
    _rc2_one_line,
    full_dir,
    readonly_dir,
)

BOX_EXTENTS_MM = (2.0, 4.0, 6.0)
BOX_CENTRE_LPS = (5.0, 6.0, 4.0)
ZONE_CENTRE_LPS = (0.0, 0.0, 0.0)  # the small case's tumour
ZONE_LONG_SHORT_MM = (10.0, 8.0)


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    """The reliability tests' small case with one plan: a posed box implant (rotated 90
    degrees about z) and a 10x8 mm ablation zone on the tumour, probe along +z."""
    path = small_case(tmp_path_factory.mktemp("plans-export"))
    box = trimesh.creation.box(extents=BOX_EXTENTS_MM)
    pose = np.eye(4)
    pose[:3, :3] = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    pose[:3, 3] = BOX_CENTRE_LPS
    implant = ImplantInput(implant_id="box", vertices_mm=box.vertices.tolist(),
                           faces=box.faces.tolist(), pose=pose.tolist())
    long_mm, short_mm = ZONE_LONG_SHORT_MM
    probe = AblationInput(device_id="custom", tip_lps=ZONE_CENTRE_LPS, shaft_lps=(0.0, 0.0, 9.0),
                          settings={"long_mm": long_mm, "short_mm": short_mm,
                                    "tip_offset_mm": 0.0}, target_structure="tumour")
    plans = read_plans(path)
    plans.add(Plan(name="P", interventions=[
        Intervention(label="Cage", kind="implant", simulator_id="implant",
                     inputs=implant.model_dump(mode="json")),
        Intervention.from_input("Probe", probe)]))
    write_plans(path, plans)
    return path


def _stl(case: Path, out: Path) -> list[str]:
    return ["plans", str(case), "--plan", "P", "--export-stl", str(out)]


def _seg(case: Path, out: Path) -> list[str]:
    return ["plans", str(case), "--plan", "P", "--export-seg", str(out)]


def test_stl_export_is_in_lps_mm(case, tmp_path, capsys):
    out = tmp_path / "stl"
    assert main(_stl(case, out)) == 0
    written = [Path(line) for line in capsys.readouterr().out.split()]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)
    assert len(written) == 2 and all(p.suffix == ".stl" for p in written)
    cage = trimesh.load(next(p for p in written if "Cage" in p.name))
    assert cage.is_watertight and cage.volume == pytest.approx(np.prod(BOX_EXTENTS_MM))
    # rotated 90 degrees about z: the 2 mm side lies along y, the 4 mm side along x (LPS mm)
    assert cage.bounds[0] == pytest.approx(np.subtract(BOX_CENTRE_LPS, (2.0, 1.0, 3.0)))
    assert cage.bounds[1] == pytest.approx(np.add(BOX_CENTRE_LPS, (2.0, 1.0, 3.0)))
    zone = trimesh.load(next(p for p in written if "Probe" in p.name))
    long_mm, short_mm = ZONE_LONG_SHORT_MM
    assert zone.is_watertight
    assert zone.extents == pytest.approx((short_mm, short_mm, long_mm), rel=0.05)
    assert zone.centroid == pytest.approx(ZONE_CENTRE_LPS, abs=0.2)
    assert zone.volume == pytest.approx(np.pi / 6 * long_mm * short_mm ** 2, rel=0.05)


def test_seg_export_is_read_by_pydicom_and_highdicom(case, tmp_path, capsys):
    import highdicom as hd
    import pydicom

    out = tmp_path / "zones.dcm"
    assert main(_seg(case, out)) == 0
    assert str(out) in capsys.readouterr().out
    ds = pydicom.dcmread(out)
    assert ds.Modality == "SEG" and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    seg = hd.seg.Segmentation.from_dataset(ds)
    (number,) = seg.get_segment_numbers()
    assert "Probe" in seg.get_segment_description(number).segment_label
    frames = np.asarray(ds.pixel_array).reshape(-1, ds.Rows, ds.Columns)
    voxel_mm3 = 1.0 * 1.0 * 1.5  # the small case's grid
    long_mm, short_mm = ZONE_LONG_SHORT_MM
    assert frames.sum() * voxel_mm3 == pytest.approx(np.pi / 6 * long_mm * short_mm ** 2,
                                                      rel=0.15)
    assert oct(os.stat(out).st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("export", [_stl, _seg], ids=["stl", "seg"])
def test_read_only_target_exits_2_in_one_line(case, readonly_dir, export, capsys):  # noqa: F811
    target = readonly_dir / ("stl" if export is _stl else "zones.dcm")
    line = _rc2_one_line(capsys, export(case, target))
    assert "cannot write" in line or "read-only" in line.lower(), line
    assert _listing(readonly_dir) == []


@pytest.mark.parametrize("export", [_stl, _seg], ids=["stl", "seg"])
def test_full_disk_exits_2_in_one_line(case, full_dir, export, capsys):  # noqa: F811
    target = full_dir / ("stl" if export is _stl else "zones.dcm")
    line = _rc2_one_line(capsys, export(case, target))
    assert "disk is full" in line, line
    assert _listing(full_dir) == ["filler"]


@pytest.mark.parametrize("export", [_stl, _seg], ids=["stl", "seg"])
def test_parent_that_is_a_file_exits_2_in_one_line(case, tmp_path, export, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("keep me")
    line = _rc2_one_line(capsys, export(case, blocker / "out"))
    assert "not-a-folder" in line, line
    assert blocker.read_text() == "keep me"
    assert _listing(tmp_path) == ["not-a-folder"]
