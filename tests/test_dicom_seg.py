"""DICOM SEG write/read with highdicom: identical masks, names, colours; geometry in LPS."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from scipy.spatial.transform import Rotation

from surgiplan.errors import BadInputError
from surgiplan.io.dicom_seg import anatomy_code, read_dicom_seg, write_dicom_seg
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.twin import Twin
from tests.conftest import real_scan

OBLIQUE = ImageGeometry((40, 36, 24), (0.8, 0.9, 2.0), (10.0, -20.0, 30.0),
                        Rotation.from_euler("xyz", [10, -5, 20], degrees=True).as_matrix())


def _oblique_twin() -> Twin:
    shape = OBLIQUE.shape_zyx
    k, j, i = np.indices(shape)
    liver = (k - 12) ** 2 / 40 + (j - 18) ** 2 / 120 + (i - 20) ** 2 / 150 < 1
    blob = np.zeros(shape, bool)
    blob[10:14, 15:20, 12:30] = True  # overlaps the liver: goes to a second layer
    twin = Twin(ImageVolume(np.zeros(shape, np.int16), OBLIQUE, modality="CT"))
    twin.add_structure("liver", liver, role="target", margin_mm=5.0, color=(0.7, 0.35, 0.25))
    twin.add_structure("my blob", blob, role="critical", margin_mm=2.5, color=(0.1, 0.3, 0.9))
    twin.add_structure("nothing", np.zeros(shape, bool))
    return twin


@pytest.fixture(scope="module")
def oblique(tmp_path_factory) -> tuple[Twin, Path, object]:
    twin = _oblique_twin()
    result = write_dicom_seg(twin, tmp_path_factory.mktemp("seg") / "seg.dcm",
                             algorithm_type="MANUAL")
    return twin, result.seg_path, result


def test_round_trip_gives_identical_masks_names_colours_roles(oblique):
    twin, path, _ = oblique
    back = read_dicom_seg(path, twin.geometry)
    assert back.names() == twin.segmentation.names()
    for s in twin.structures:
        b = back.get(s.name)
        assert np.array_equal(back.mask(s.name), twin.segmentation.mask(s.name)), s.name
        assert b.role == s.role and b.margin_mm == s.margin_mm
        assert b.color == pytest.approx(s.color, abs=1.5 / 255)  # CIELab <-> 8-bit RGB


def test_seg_is_standard_dicom_placed_in_lps(oblique):
    twin, path, result = oblique
    ds = pydicom.dcmread(path)
    assert ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    labels = [item.SegmentLabel for item in ds.SegmentSequence]
    assert labels == ["liver", "my blob", "nothing"]
    assert {item.SegmentAlgorithmType for item in ds.SegmentSequence} == {"MANUAL"}
    liver, blob = ds.SegmentSequence[0], ds.SegmentSequence[1]
    assert liver.SegmentedPropertyTypeCodeSequence[0].CodeValue == "10200004"  # SCT liver
    assert blob.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Tissue"
    # a frame's PlanePositionSequence is the LPS centre of its first voxel on the twin grid
    seg = hd.seg.segread(path)
    volume = seg.get_volume(segment_numbers=[1])
    ijk = twin.geometry.lps_to_index(volume.affine[:3, 3])
    assert np.allclose(ijk, np.rint(ijk), atol=1e-3)
    assert np.allclose(np.abs(volume.direction), np.abs(OBLIQUE.direction[:, [2, 1, 0]]),
                       atol=1e-5)
    # no source DICOM: the image was written as a series and the SEG references it
    assert result.written_series_dir is not None
    referenced = ds.ReferencedSeriesSequence[0].SeriesInstanceUID
    image = pydicom.dcmread(next(result.written_series_dir.iterdir()), stop_before_pixels=True)
    assert referenced == image.SeriesInstanceUID == result.referenced_series_uid
    assert ds.FrameOfReferenceUID == image.FrameOfReferenceUID


def test_read_on_own_grid_and_onto_a_coarser_grid(oblique):
    twin, path, _ = oblique
    own = read_dicom_seg(path)
    assert own.geometry.spacing_mm == pytest.approx(OBLIQUE.spacing_mm)
    assert own.voxel_count("liver") == twin.segmentation.voxel_count("liver")
    coarse = ImageGeometry((20, 18, 12), (1.6, 1.8, 4.0),
                           twin.geometry.index_to_lps([0.5, 0.5, 0.5]), OBLIQUE.direction)
    warnings: list[str] = []
    resampled = read_dicom_seg(path, coarse, warnings_out=warnings)
    assert any("resampled" in w for w in warnings)
    volume_ml = resampled.volume_ml("liver")
    assert volume_ml == pytest.approx(twin.segmentation.volume_ml("liver"), rel=0.15)


def test_real_ct_seg_references_its_source_series(tmp_path):
    from surgiplan.io.source_series import deidentified_uid
    from surgiplan.io.twin_build import build_twin

    scan = real_scan("liver-ct-3slice-seg")
    twin = build_twin(scan / "dicom", labels=[scan / "labels" / "liver_spine_seg.nrrd"])
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in (scan / "dicom").iterdir()]
    # with identifiers (explicit): the original UIDs
    result = write_dicom_seg(twin, tmp_path / "liver.seg.dcm", include_identifiers=True)
    assert result.written_series_dir is None
    assert result.referenced_series_uid == twin.image.series_uid
    ds = pydicom.dcmread(result.seg_path)
    referenced = {item.ReferencedSOPInstanceUID
                  for item in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {s.SOPInstanceUID for s in sources}
    assert ds.StudyInstanceUID == sources[0].StudyInstanceUID
    assert ds.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert ds.PatientID == sources[0].PatientID
    # default: the same references, each UID mapped as the Basic Profile maps it
    plain = pydicom.dcmread(write_dicom_seg(twin, tmp_path / "deid.dcm").seg_path)
    assert plain.ReferencedSeriesSequence[0].SeriesInstanceUID == deidentified_uid(
        twin.image.series_uid)
    assert {i.ReferencedSOPInstanceUID for i in plain.ReferencedSeriesSequence[0]
            .ReferencedInstanceSequence} == {deidentified_uid(s.SOPInstanceUID) for s in sources}
    assert plain.StudyInstanceUID == deidentified_uid(sources[0].StudyInstanceUID)
    assert plain.FrameOfReferenceUID == deidentified_uid(sources[0].FrameOfReferenceUID)
    assert plain.PatientID != sources[0].PatientID and plain.PatientIdentityRemoved == "YES"
    back = read_dicom_seg(result.seg_path, twin.geometry)
    for name in twin.segmentation.names():
        assert np.array_equal(back.mask(name), twin.segmentation.mask(name))
    assert back.voxel_count("liver_spine_seg_1") == 107098  # liver voxels (README)


def test_bad_seg_inputs_are_one_line_errors(oblique, tmp_path):
    twin, path, result = oblique
    ct = next(result.written_series_dir.iterdir())
    with pytest.raises(BadInputError, match="not a readable DICOM Segmentation"):
        read_dicom_seg(ct, twin.geometry)
    far = ImageGeometry((10, 10, 10), (1, 1, 1), (900.0, 900.0, 900.0))
    with pytest.raises(BadInputError, match="does not overlap"):
        read_dicom_seg(path, far)
    with pytest.raises(BadInputError, match="no such file"):
        read_dicom_seg(tmp_path / "missing.dcm", twin.geometry)
    with pytest.raises(BadInputError, match="no structures"):
        write_dicom_seg(Twin(twin.image), tmp_path / "x.dcm")


def test_anatomy_codes_by_name():
    assert anatomy_code("inferior_vena_cava").value == "64131007"
    assert anatomy_code("kidney_left").meaning == "Kidney"
    assert anatomy_code("rib_left_3").meaning == "Rib"
    assert anatomy_code("Contrast vessels").meaning == "Blood Vessel"
    assert anatomy_code("my blob") is None
