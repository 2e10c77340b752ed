"""Label maps in NRRD / NIfTI: LPS at the boundary, label names JSON, placing labels on a grid."""

from __future__ import annotations

import json

import nibabel as nib
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from surgiplan.errors import BadInputError
from surgiplan.io.labelmaps import (
    label_map_onto_image,
    read_label_map,
    read_label_names,
    read_volume_file,
    write_label_map,
)
from surgiplan.model.geometry import ImageGeometry
from tests.conftest import real_scan

# An oblique grid: image axes are rotated 20 degrees about S, spacing anisotropic.
_C, _S = np.cos(np.radians(20)), np.sin(np.radians(20))
OBLIQUE = ImageGeometry((12, 10, 6), (0.7, 0.9, 2.5), (-30.0, 12.5, 80.0),
                        np.array([[_C, -_S, 0], [_S, _C, 0], [0, 0, 1.0]]))


def _labels(geometry: ImageGeometry) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 4, geometry.shape_zyx).astype(np.uint8)


def _sitk_geometry(path) -> ImageGeometry:
    """Independent oracle: how ITK (LPS) places the same file."""
    return ImageGeometry.from_sitk(sitk.ReadImage(str(path)))


def test_real_nrrd_label_map_reads_with_lps_geometry():
    folder = real_scan("liver-ct-3slice-seg")
    labels, geometry = read_label_map(folder / "labels" / "liver_spine_seg.nrrd")
    assert labels.shape == (3, 512, 512) and geometry.size == (512, 512, 3)
    assert np.count_nonzero(labels == 1) == 107098 and np.count_nonzero(labels == 2) == 12439
    assert geometry == _sitk_geometry(folder / "labels" / "liver_spine_seg.nrrd")


@pytest.mark.parametrize("name", ["map.nrrd", "map.nii", "map.nii.gz"])
def test_write_read_round_trip_matches_itk(tmp_path, name):
    labels = _labels(OBLIQUE)
    path = write_label_map(labels, OBLIQUE, tmp_path / name)
    back, geometry = read_label_map(path)
    assert np.array_equal(back, labels)
    assert geometry == OBLIQUE
    assert _sitk_geometry(path) == OBLIQUE  # ITK agrees about where the voxels are (LPS)
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), labels)


def test_nrrd_in_ras_space_is_converted_to_lps(tmp_path):
    axes = np.diag([0.5, 0.6, 2.0])  # rows: i, j, k axis vectors in RAS
    header = {"space": "right-anterior-superior", "space directions": axes,
              "space origin": np.array([10.0, 20.0, 30.0]), "kinds": ["domain"] * 3}
    data = np.zeros((4, 5, 6), np.uint8)  # C order (nz, ny, nx)
    data[1, 2, 3] = 7
    nrrd.write(str(tmp_path / "ras.nrrd"), data, header, index_order="C")
    labels, geometry = read_label_map(tmp_path / "ras.nrrd")
    ijk = np.array([3, 2, 1])
    ras = np.array([10.0, 20.0, 30.0]) + axes.T @ ijk
    assert np.allclose(geometry.index_to_lps(ijk), ras * [-1, -1, 1])
    assert labels[1, 2, 3] == 7
    assert geometry == _sitk_geometry(tmp_path / "ras.nrrd")


def test_nifti_affine_is_converted_from_ras(tmp_path):
    affine = np.array([[-0.8, 0, 0, 50.0], [0, 0.8, 0, -60.0], [0, 0, 3.0, 10.0], [0, 0, 0, 1]])
    data = np.zeros((6, 5, 4), np.int16)  # nibabel order (i, j, k)
    data[5, 1, 2] = 3
    nib.save(nib.Nifti1Image(data, affine), str(tmp_path / "a.nii.gz"))
    labels, geometry = read_label_map(tmp_path / "a.nii.gz")
    assert labels.shape == (4, 5, 6) and labels[2, 1, 5] == 3
    ras = affine @ [5, 1, 2, 1]
    assert np.allclose(geometry.index_to_lps([5, 1, 2]), ras[:3] * [-1, -1, 1])
    assert geometry == _sitk_geometry(tmp_path / "a.nii.gz")


def test_rejects_non_integer_and_non_3d_and_placeless_files(tmp_path):
    header = {"space": "left-posterior-superior", "space directions": np.eye(3),
              "space origin": np.zeros(3)}
    nrrd.write(str(tmp_path / "f.nrrd"), np.full((3, 3, 3), 0.5, np.float32), header)
    with pytest.raises(BadInputError, match=r"f\.nrrd: it holds non-integer values"):
        read_label_map(tmp_path / "f.nrrd")
    nrrd.write(str(tmp_path / "w.nrrd"), np.full((3, 3, 3), 2.0, np.float32), header)
    assert read_label_map(tmp_path / "w.nrrd")[0].max() == 2  # whole-number floats are labels
    nrrd.write(str(tmp_path / "2d.nrrd"), np.zeros((4, 4), np.uint8),
               {"space": "left-posterior-superior", "space directions": np.eye(2, 3),
                "space origin": np.zeros(3)})
    with pytest.raises(BadInputError, match="2 dimensions"):
        read_label_map(tmp_path / "2d.nrrd")
    nrrd.write(str(tmp_path / "nospace.nrrd"), np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(BadInputError, match="no NRRD 'space' field"):
        read_label_map(tmp_path / "nospace.nrrd")
    image = nib.Nifti1Image(np.zeros((3, 3, 3), np.uint8), np.eye(4))
    image.set_sform(np.eye(4), code=0)
    image.set_qform(np.eye(4), code=0)
    nib.save(image, str(tmp_path / "noplace.nii"))
    with pytest.raises(BadInputError, match="neither an sform nor a qform"):
        read_label_map(tmp_path / "noplace.nii")
    (tmp_path / "x.mha").write_bytes(b"")
    with pytest.raises(BadInputError, match="unknown volume file type"):
        read_volume_file(tmp_path / "x.mha")


def _names_file(tmp_path, labels) -> str:
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"schema": "surgiplan.labels/1", "labels": labels}))
    return path


def test_label_names_are_validated(tmp_path):
    good = _names_file(tmp_path, [
        {"value": 1, "name": "liver", "role": "organ", "color": [0.8, 0.4, 0.3]},
        {"value": 2, "name": "portal vein", "role": "critical", "margin_mm": 3.0,
         "description": "main trunk"}])
    names = read_label_names(good)
    assert names[1] == {"name": "liver", "role": "organ", "color": (0.8, 0.4, 0.3),
                        "margin_mm": 0.0, "description": ""}
    assert names[2]["role"] == "critical" and names[2]["margin_mm"] == 3.0

    bad_colour = _names_file(tmp_path, [{"value": 1, "name": "liver"},
                                        {"value": 2, "name": "aorta", "color": [255, 0, 0]}])
    with pytest.raises(BadInputError) as err:
        read_label_names(bad_colour)
    line = str(err.value)
    assert "labels.json" in line and "entry 2 ('aorta')" in line and "\n" not in line

    for labels, pattern in [
        ([{"value": 1, "name": "a", "role": "tumor"}], "entry 1 .* field role"),
        ([{"value": 1, "name": "a", "margin": 2}], "field margin"),
        ([{"value": 1, "name": "a"}, {"value": 1, "name": "b"}], "value 1 appears twice"),
        ([{"value": 0, "name": "a"}], "field value"),
    ]:
        with pytest.raises(BadInputError, match=pattern):
            read_label_names(_names_file(tmp_path, labels))
    (tmp_path / "labels.json").write_text('{"schema": "other/9", "labels": []}')
    with pytest.raises(BadInputError, match="unknown label list schema"):
        read_label_names(tmp_path / "labels.json")
    (tmp_path / "labels.json").write_text("{not json")
    with pytest.raises(BadInputError, match="not valid JSON"):
        read_label_names(tmp_path / "labels.json")


def test_label_map_on_same_grid_is_kept_and_disjoint_grid_refused():
    labels = _labels(OBLIQUE)
    assert label_map_onto_image(labels, OBLIQUE, OBLIQUE, path="m.nrrd") is labels
    far = ImageGeometry(OBLIQUE.size, OBLIQUE.spacing_mm, (500.0, 500.0, 500.0))
    with pytest.raises(BadInputError) as err:
        label_map_onto_image(labels, far, OBLIQUE, path="m.nrrd")
    line = str(err.value)
    assert line.startswith("m.nrrd: the label map does not overlap the image")
    assert "[499.6..508.1, 499.6..508.6, 498.8..513.8]" in line  # the label map extent
    assert "[-33.3..-22.3, 12.0..23.3, 78.8..93.8]" in line  # the image extent


def test_label_map_on_other_grid_is_resampled_with_a_warning():
    pytest.importorskip("surgiplan.processing.resample")
    image = ImageGeometry((20, 20, 10), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    coarse = ImageGeometry((10, 10, 5), (2.0, 2.0, 4.0), (0.5, 0.5, 1.0))
    labels = np.zeros(coarse.shape_zyx, np.uint8)
    labels[1:4, 2:6, 2:6] = 5
    warnings: list[str] = []
    out = label_map_onto_image(labels, coarse, image, path="c.nrrd", warnings_out=warnings)
    assert out.shape == image.shape_zyx and set(np.unique(out)) == {0, 5}
    # The same physical block: coarse k 1..3, j 2..5, i 2..5 -> fine k 2..7, j 4..11, i 4..11.
    kz, jy, ix = np.nonzero(out)
    assert [(a.min(), a.max()) for a in (kz, jy, ix)] == [(2, 7), (4, 11), (4, 11)]
    assert len(warnings) == 1 and "resampled onto the image grid" in warnings[0]


def _nifti_with_forms(path, qform, sform) -> None:
    image = nib.Nifti1Image(np.zeros((6, 5, 4), np.uint8), None)
    image.set_qform(qform, code=1)
    image.set_sform(sform, code=2)
    nib.save(image, str(path))


def test_nifti_whose_qform_and_sform_disagree_is_refused(tmp_path):
    """Issue 11: a mirrored sform would put the tumour in the other hemisphere."""
    from surgiplan.io.twin_build import add_label_input
    from surgiplan.model.structures import Segmentation

    ras = np.array([[1.0, 0, 0, -3.0], [0, 1.0, 0, -2.5], [0, 0, 2.0, 10.0], [0, 0, 0, 1]])
    mirrored = ras.copy()
    mirrored[0, 0], mirrored[0, 3] = -1.0, 3.0
    _nifti_with_forms(tmp_path / "bad.nii.gz", ras, mirrored)
    with pytest.raises(BadInputError, match=r"bad\.nii\.gz: its qform and sform disagree "
                       r"\(the qform says the axes point RAS, the sform LAS"):
        read_label_map(tmp_path / "bad.nii.gz")
    shifted = ras.copy()
    shifted[2, 3] += 4.0  # same axes, 4 mm apart
    _nifti_with_forms(tmp_path / "shift.nii", ras, shifted)
    with pytest.raises(BadInputError, match=r"both say RAS; a corner voxel lands up to 4\.0 mm"):
        read_label_map(tmp_path / "shift.nii")
    with pytest.raises(BadInputError, match="disagree"):  # also when given to a case
        add_label_input(Segmentation(geometry=ImageGeometry((6, 5, 4), (1, 1, 2), (0, 0, 0))),
                        tmp_path / "bad.nii.gz", label_names=None, warnings=[])
    # agreement up to float32 rounding of the quaternion is fine, and so is one form alone
    tiny = ras.copy()
    tiny[0, 3] += 1e-4
    _nifti_with_forms(tmp_path / "ok.nii.gz", ras, tiny)
    assert read_label_map(tmp_path / "ok.nii.gz")[1].size == (6, 5, 4)
    only_sform = nib.Nifti1Image(np.zeros((6, 5, 4), np.uint8), mirrored)
    only_sform.set_qform(None, code=0)
    nib.save(only_sform, str(tmp_path / "sform.nii.gz"))
    geometry = read_label_map(tmp_path / "sform.nii.gz")[1]
    assert np.allclose(geometry.origin_lps, [-3.0, 2.5, 10.0])


def test_written_nifti_declares_millimetres(tmp_path):
    write_label_map(_labels(OBLIQUE), OBLIQUE, tmp_path / "l.nii.gz")
    header = nib.load(str(tmp_path / "l.nii.gz")).header
    assert header.get_xyzt_units() == ("mm", "sec")
    assert int(header["qform_code"]) == int(header["sform_code"]) == 1


def test_resampling_warning_says_what_differs():
    pytest.importorskip("surgiplan.processing.resample")
    image = ImageGeometry((20, 20, 10), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    flipped = ImageGeometry((20, 20, 10), (1.0, 1.0, 2.0), (19.0, 0.0, 0.0),
                            np.diag([-1.0, 1.0, 1.0]))  # same size, spacing: only axes differ
    warnings: list[str] = []
    label_map_onto_image(np.ones(flipped.shape_zyx, np.uint8), flipped, image, path="f.nii",
                         warnings_out=warnings)
    assert "size" not in warnings[0] and "spacing" not in warnings[0]
    assert "origin (LPS (19.0, 0.0, 0.0) vs (0.0, 0.0, 0.0) mm)" in warnings[0]
    assert "axis directions (LPS (-1.00, 0.00, 0.00) (0.00, 1.00, 0.00)" in warnings[0]
