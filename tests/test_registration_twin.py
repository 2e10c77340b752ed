"""A twin of several series: bundle storage and migration, structures carried between series,
longitudinal change, DICOM Spatial Registration objects and the ``surgiplan series`` commands.

Transforms here are known (no registration run), so every check is exact up to voxel size.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from surgiplan.cli.main import main
from surgiplan.errors import BadInputError
from surgiplan.io import bundle
from surgiplan.io.bundle import load_bundle, save_bundle
from surgiplan.io.labelmaps import nrrd_bytes, nrrd_geometry_header
from surgiplan.io.source_series import SourceInstance, SourceSeries
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.series_transform import SeriesTransform, deformation_to_text, rigid_matrix
from surgiplan.model.volume import ImageVolume
from surgiplan.registration.carry import (
    add_structure_from_series,
    series_image_on_reference,
    structure_on_series,
)
from surgiplan.registration.dicom_reg import (
    read_spatial_registration,
    transform_from_registration,
    write_spatial_registration,
)
from surgiplan.registration.longitudinal import structure_change
from surgiplan.twin import Twin, TwinSeries

REF = ImageGeometry((40, 44, 36), (2.0, 2.0, 2.0), (-40.0, -44.0, -30.0))
SERIES = ImageGeometry((36, 40, 40), (2.4, 2.4, 2.0), (-42.0, -48.0, -40.0))
TRUTH = SeriesTransform(rigid_matrix((4.0, -3.0, 8.0), (5.0, -4.0, 6.0), (0, 0, 0)),
                        kind="rigid", method="test: known")


def _ball(geometry: ImageGeometry, centre, radius: float) -> np.ndarray:
    kji = np.indices(geometry.shape_zyx).reshape(3, -1).T
    lps = geometry.index_to_lps(kji[:, ::-1])
    return (np.linalg.norm(lps - np.asarray(centre), axis=1) <= radius).reshape(
        geometry.shape_zyx)


def _twin() -> Twin:
    """Reference with a ball 'lesion'; a series seeing the same ball through TRUTH."""
    centre_ref = np.array([6.0, -4.0, 2.0])
    image = ImageVolume(np.where(_ball(REF, centre_ref, 12.0), 100, 0).astype(np.int16), REF,
                        modality="CT")
    twin = Twin(image)
    twin.add_structure("lesion", _ball(REF, centre_ref, 12.0), role="target")
    centre_series = TRUTH.from_reference(centre_ref)
    mr = ImageVolume(np.where(_ball(SERIES, centre_series, 12.0), 500.0, 50.0).astype(
        np.float32), SERIES, modality="MR", series_uid="2.25.77", window_center=200.0,
        window_width=600.0)
    twin.add_series(TwinSeries("mr-t1", mr, TRUTH, role="anatomy", acquired="2026-11-02"))
    return twin


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


# ---------------------------------------------------------------------------- twin + bundle
def test_series_keys_are_checked_and_events_sent():
    twin = _twin()
    seen = []
    twin.events.connect(lambda event, **kw: seen.append(kw["key"]), "series_transform_changed")
    twin.set_series_transform("mr-t1", SeriesTransform())
    assert seen == ["mr-t1"]
    with pytest.raises(ValueError, match="exists already"):
        twin.add_series(TwinSeries("mr-t1", twin.series[0].image))
    with pytest.raises(ValueError, match="must be 1-40 letters"):
        TwinSeries("../evil", twin.series[0].image)
    with pytest.raises(KeyError, match="no series 'ct2'"):
        twin.series_by_key("ct2")


def test_bundle_keeps_every_series_with_its_transform_and_deformation(tmp_path):
    twin = _twin()
    grid = sitk.Image([4, 4, 4], sitk.sitkFloat32)
    bspline = sitk.BSplineTransformInitializer(REF.to_sitk(np.zeros(REF.shape_zyx)), [2, 2, 2])
    bspline.SetParameters(tuple(np.linspace(-1, 1, bspline.GetNumberOfParameters())))
    assert grid.GetSize() == (4, 4, 4)
    deformed = SeriesTransform(TRUTH.matrix_to_reference, kind="deformable",
                               deformation_tfm=deformation_to_text(bspline), method="test")
    twin.add_series(TwinSeries("followup", twin.series[0].image, deformed, role="follow-up"))
    path = save_bundle(twin, tmp_path / "case.surgiplan")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
    assert {"series/mr-t1.nrrd", "series/followup.nrrd", "series/followup.tfm"} <= names
    assert manifest["schema_version"] == 3
    assert [s["key"] for s in manifest["series"]] == ["mr-t1", "followup"]
    back = load_bundle(path)
    mr = back.series_by_key("mr-t1")
    assert (mr.role, mr.acquired, mr.image.modality) == ("anatomy", "2026-11-02", "MR")
    assert mr.image.geometry == SERIES and mr.image.window_center == 200.0
    np.testing.assert_array_equal(mr.image.array, twin.series[0].image.array)
    np.testing.assert_allclose(mr.transform.matrix_to_reference, TRUTH.matrix_to_reference)
    fu = back.series_by_key("followup")
    p = np.array([[3.0, -7.0, 5.0]])
    np.testing.assert_allclose(fu.transform.from_reference(p), deformed.from_reference(p))


def test_a_version_2_bundle_migrates_to_no_further_series(tmp_path):
    path = save_bundle(Twin(_twin().image), tmp_path / "old.surgiplan")
    with zipfile.ZipFile(path) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    manifest = json.loads(entries["manifest.json"])
    manifest["schema_version"] = 2
    del manifest["series"]
    entries["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    assert load_bundle(path).series == []
    assert bundle.MIGRATIONS[2]({"schema_version": 2})["series"] == []


def test_a_series_entry_that_does_not_match_the_manifest_is_refused(tmp_path):
    path = save_bundle(_twin(), tmp_path / "case.surgiplan")
    with zipfile.ZipFile(path) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
        comment = archive.comment
    wrong = ImageGeometry((4, 4, 4), (1, 1, 1), (0, 0, 0))
    entries["series/mr-t1.nrrd"] = nrrd_bytes(np.zeros(wrong.shape_zyx, np.float32),
                                              nrrd_geometry_header(wrong))
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        archive.comment = comment
    with pytest.raises(BadInputError, match=r"series/mr-t1\.nrrd"):
        load_bundle(path)


# ---------------------------------------------------------------------------- carrying
def test_a_structure_is_seen_on_the_other_series_where_the_transform_puts_it():
    twin = _twin()
    on_series = structure_on_series(twin, "lesion", "mr-t1")
    truth = twin.series[0].image.array > 200
    assert on_series.shape == SERIES.shape_zyx
    assert _dice(on_series, truth) > 0.9
    wrong = SeriesTransform()  # identity: misses by the transform's ~9 mm
    twin.set_series_transform("mr-t1", wrong)
    assert _dice(structure_on_series(twin, "lesion", "mr-t1"), truth) < 0.7


def test_a_structure_drawn_on_a_series_joins_the_twin_on_the_reference_grid():
    twin = _twin()
    drawn = twin.series[0].image.array > 200  # "segmented on the MR"
    s = add_structure_from_series(twin, "mr-t1", "lesion-mr", drawn, role="target")
    assert "drawn on series 'mr-t1'" in s.description
    assert _dice(twin.segmentation.mask("lesion-mr"), twin.segmentation.mask("lesion")) > 0.9
    fused = series_image_on_reference(twin, "mr-t1")
    assert fused.shape == REF.shape_zyx
    assert fused[twin.segmentation.mask("lesion")].mean() > 400.0
    with pytest.raises(ValueError, match="is not the grid of series"):
        add_structure_from_series(twin, "mr-t1", "x", np.zeros(REF.shape_zyx, bool))


def test_growth_between_time_points_in_ml_and_mm():
    base = _ball(REF, (0, 0, 0), 10.0)
    grown = _ball(REF, (0, 0, 0), 14.0)
    change = structure_change("lesion", base, grown, REF)
    analytic = 4.0 / 3.0 * np.pi * (14.0 ** 3 - 10.0 ** 3) / 1000.0
    assert change.change_ml == pytest.approx(analytic, rel=0.1)
    assert 3.0 <= change.max_growth_mm <= 5.5 and change.max_shrink_mm == 0.0
    assert change.mean_surface_change_mm == pytest.approx(4.0, abs=1.5)
    shrunk = structure_change("lesion", grown, base, REF)
    assert shrunk.change_ml < 0 and shrunk.max_shrink_mm >= 2.0
    assert shrunk.to_json()["change_percent"] < 0


# ---------------------------------------------------------------------------- DICOM REG
def _source(uid: str, frame: str, study: str = "2.25.100") -> SourceSeries:
    return SourceSeries(
        deidentified=True, sop_class_uid="1.2.840.10008.5.1.4.1.1.4", modality="MR",
        study_uid=study, series_uid=uid, frame_of_reference_uid=frame, rows=40, columns=36,
        pixel_spacing_mm=(2.4, 2.4), orientation=(1, 0, 0, 0, 1, 0),
        instances=[SourceInstance(sop_instance_uid=f"{uid}.{n}", position_lps=(0, 0, 2.0 * n))
                   for n in range(1, 4)],
        identity={"PatientName": "Phantom^Reg", "PatientID": "SP-REG", "PatientBirthDate": "",
                  "PatientSex": "O", "StudyDate": "20261102", "StudyTime": "101010",
                  "StudyID": "1", "AccessionNumber": "", "ReferringPhysicianName": ""})


def test_spatial_registration_round_trip_and_dciodvfy(tmp_path):
    reference, series = _source("2.25.1", "2.25.11"), _source("2.25.2", "2.25.22", "2.25.200")
    path = write_spatial_registration(tmp_path / "reg.dcm", reference, series, TRUTH)
    reg = read_spatial_registration(path)
    assert reg.frame_of_reference_uid == "2.25.11"
    np.testing.assert_allclose(reg.matrix_for("2.25.11"), np.eye(4))
    back = transform_from_registration(reg, "2.25.22", path)
    assert back.kind == "rigid"
    np.testing.assert_allclose(back.matrix_to_reference, TRUTH.matrix_to_reference, atol=1e-8)
    with pytest.raises(BadInputError, match=r"no matrix for frame of reference 2\.25\.99"):
        reg.matrix_for("2.25.99")
    dciodvfy = shutil.which("dciodvfy")
    if dciodvfy is None:
        pytest.skip("dciodvfy not installed (Debian package dicom3tools)")
    run = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, timeout=60)
    errors = [x for x in (run.stdout + run.stderr).splitlines() if x.startswith("Error")]
    assert errors == []


def test_a_deformable_transform_is_not_written_as_a_matrix(tmp_path):
    bspline = sitk.BSplineTransformInitializer(REF.to_sitk(np.zeros(REF.shape_zyx)), [2, 2, 2])
    deformed = SeriesTransform(kind="deformable", deformation_tfm=deformation_to_text(bspline))
    with pytest.raises(BadInputError, match="deformable transform"):
        write_spatial_registration(tmp_path / "r.dcm", _source("2.25.1", "2.25.11"),
                                   _source("2.25.2", "2.25.22"), deformed)


def test_reading_something_else_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.dcm"
    bad.write_bytes(b"not dicom at all")
    with pytest.raises(BadInputError, match=r"x\.dcm"):
        read_spatial_registration(bad)


# ---------------------------------------------------------------------------- CLI
def _write_nrrd(path: Path, array: np.ndarray, geometry: ImageGeometry) -> Path:
    path.write_bytes(nrrd_bytes(array, nrrd_geometry_header(geometry)))
    return path


def test_cli_add_list_landmarks_structure_change(tmp_path, capsys):
    twin = _twin()
    mr = twin.series[0].image
    twin.remove_series("mr-t1")
    case = save_bundle(twin, tmp_path / "case.surgiplan")
    image = _write_nrrd(tmp_path / "mr.nrrd", mr.array, mr.geometry)
    assert main(["series", "add", str(case), str(image), "--key", "mr", "--register", "none",
                 "--role", "anatomy"]) == 0
    capsys.readouterr()
    assert main(["series", "list", str(case), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["series"][0]["transform"]["kind"] == "identity"
    assert main(["series", "add", str(case), str(image), "--key", "mr"]) == 2
    assert "has a series 'mr' already" in capsys.readouterr().err
    # landmark pairs of the true transform score the (wrong) identity honestly
    ref = np.array([[0.0, 0.0, 0.0], [20.0, 10.0, -5.0], [-15.0, 5.0, 12.0]])
    pairs = tmp_path / "pairs.json"
    pairs.write_text(json.dumps({"reference_lps": ref.tolist(),
                                 "series_lps": TRUTH.from_reference(ref).tolist()}))
    assert main(["series", "landmarks", str(case), "mr", "--pairs", str(pairs), "--json",
                 "--save"]) == 0
    assert json.loads(capsys.readouterr().out)["tre_mean_mm"] > 5.0
    # a label map drawn on the series joins the twin; then baseline vs follow-up
    labels = _write_nrrd(tmp_path / "drawn.nrrd", (mr.array > 200).astype(np.uint8), mr.geometry)
    assert main(["series", "structure", str(case), "mr", str(labels), "--name", "lesion-mr",
                 "--role", "target"]) == 0
    assert main(["series", "change", str(case), "--baseline", "lesion", "--followup",
                 "lesion-mr", "--json"]) == 0
    out = capsys.readouterr().out
    change = json.loads(out[out.index("{"):])
    assert change["baseline_ml"] > 0 and change["followup_ml"] > 0
    assert main(["series", "landmarks", str(case), "nope", "--pairs", str(pairs)]) == 2
    assert "no series 'nope'" in capsys.readouterr().err


def test_cli_registers_rigid_and_round_trips_a_dicom_registration(tmp_path, capsys):
    twin = _twin()
    mr = twin.series[0].image
    twin.remove_series("mr-t1")
    case = save_bundle(twin, tmp_path / "case.surgiplan")
    image = _write_nrrd(tmp_path / "mr.nrrd", mr.array, mr.geometry)
    assert main(["series", "add", str(case), str(image), "--key", "mr", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["transform"]
    est = SeriesTransform.from_json(found)
    centre = np.array([[6.0, -4.0, 2.0]])
    assert np.linalg.norm(est.from_reference(centre) - TRUTH.from_reference(centre)) < 2.0
    reg = write_spatial_registration(tmp_path / "reg.dcm", _source("2.25.1", "2.25.11"),
                                     _source("2.25.2", "2.25.22"), TRUTH)
    assert main(["series", "import-reg", str(case), "mr", str(reg)]) == 0
    back = load_bundle(case).series_by_key("mr").transform
    assert back.method.startswith("dicom-sro")
    np.testing.assert_allclose(back.matrix_to_reference, TRUTH.matrix_to_reference, atol=1e-8)


def test_cli_with_dicom_series_end_to_end(tmp_path, capsys):
    """CT and MR written as DICOM (one study, two frames of reference): build the twin from
    the CT, add the MR, export its alignment as a (de-identified) Spatial Registration object
    that references both series, and read it back."""
    from pydicom.uid import generate_uid

    from surgiplan.io import source_series
    from surgiplan.io.dicom_write import write_series

    twin = _twin()
    study = generate_uid()
    write_series(twin.image, tmp_path / "ct", study_uid=study, durable=False,
                 patient_name="Reg^Test", patient_id="REG-1")
    mr = twin.series[0].image
    mr = ImageVolume(np.rint(mr.array).astype(np.int16), mr.geometry, modality="MR")
    write_series(mr, tmp_path / "mr", study_uid=study, durable=False, patient_name="Reg^Test",
                 patient_id="REG-1")
    case = tmp_path / "case.surgiplan"
    assert main(["twin", "build", str(tmp_path / "ct"), "--out", str(case)]) == 0
    assert main(["series", "add", str(case), str(tmp_path / "mr"), "--key", "mr",
                 "--register", "none"]) == 0
    reg = tmp_path / "reg.dcm"
    assert main(["series", "export-reg", str(case), "mr", "--series-dicom",
                 str(tmp_path / "mr"), "--out", str(reg)]) == 0
    capsys.readouterr()
    read = read_spatial_registration(reg)
    mr_source = source_series.deidentify(source_series.from_files(
        sorted((tmp_path / "mr").iterdir()), ""))
    assert {i.frame_of_reference_uid for i in read.items} >= {mr_source.frame_of_reference_uid}
    import pydicom

    ds = pydicom.dcmread(reg)
    assert str(ds.PatientName) != "Reg^Test" and ds.Modality == "REG"  # de-identified
    assert main(["series", "import-reg", str(case), "mr", str(reg)]) == 2  # identity only
    assert "0 non-identity matrices" in capsys.readouterr().err
    # the series' original files find their de-identified frame of reference in the object
    assert main(["series", "import-reg", str(case), "mr", str(reg), "--series-dicom",
                 str(tmp_path / "mr")]) == 0
    assert load_bundle(case).series_by_key("mr").transform.method.startswith("dicom-sro")
