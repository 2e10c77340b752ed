"""TotalSegmentator outputs mapped by class name and version (v1 and v2 ids differ)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from surgiplan.errors import BadInputError
from surgiplan.io.labelmaps import nifti_bytes, read_label_names
from surgiplan.io.totalsegmentator import (
    KEYWORDS,
    class_names,
    embedded_label_names,
    label_names,
    properties,
)
from surgiplan.io.twin_build import build_twin
from surgiplan.model.geometry import ImageGeometry

GRID = ImageGeometry((30, 28, 20), (1.5, 1.5, 2.0), (-20.0, -25.0, -10.0))


def test_class_tables_are_the_published_v1_and_v2_ids():
    v1, v2 = class_names("totalsegmentator-v1"), class_names("totalsegmentator-v2")
    mr = class_names("totalsegmentator-v2-mr")
    assert (len(v1), len(v2), len(mr)) == (104, 117, 50)
    assert sorted(v1) == list(range(1, 105)) and sorted(v2) == list(range(1, 118))
    assert (v1[7], v2[52], v2[7]) == ("aorta", "aorta", "pancreas")
    assert (v1[8], v2[63]) == ("inferior_vena_cava", "inferior_vena_cava")
    assert (v1[18], v2[27]) == ("vertebrae_L5", "vertebrae_L5")
    assert (v1[104], v2[117], mr[50]) == ("urinary_bladder", "costal_cartilages", "brain")
    for table in (v1, v2, mr):
        assert len(set(table.values())) == len(table)


def test_every_class_gets_a_role_colour_and_margin():
    assert properties("aorta")["role"] == "critical" and properties("aorta")["margin_mm"] > 0
    assert properties("vertebrae_L3")["role"] == "bone"
    assert properties("rib_left_11")["role"] == "bone"
    assert properties("liver")["role"] == "organ"
    assert properties("portal_vein_and_splenic_vein")["role"] == "critical"
    assert properties("kidney_cyst_left")["role"] == "other"
    assert properties("gluteus_maximus_left")["role"] == "other"
    for keyword in KEYWORDS:
        for info in label_names(keyword).values():
            assert info["role"] in {"target", "critical", "bone", "organ", "skin", "other"}


def _write_image(folder: Path) -> Path:
    i = np.indices(GRID.shape_zyx)[2]
    path = folder / "ct.nii.gz"
    path.write_bytes(nifti_bytes((i * 10).astype(np.int16), GRID, gzipped=True))
    return path


def _multilabel(values: dict[int, slice]) -> np.ndarray:
    labels = np.zeros(GRID.shape_zyx, np.uint8)
    for value, rows in values.items():
        labels[4:12, rows, 5:20] = value
    return labels


def test_same_file_reads_by_version(tmp_path):
    image = _write_image(tmp_path)
    seg = tmp_path / "seg.nii.gz"
    seg.write_bytes(nifti_bytes(_multilabel({7: slice(2, 8), 52: slice(10, 16)}), GRID,
                                gzipped=True))
    v1 = build_twin(image, labels=[seg], label_names="totalsegmentator-v1")
    v2 = build_twin(image, labels=[seg], label_names="totalsegmentator-v2")
    assert v1.segmentation.names() == ["aorta", "iliac_artery_right"]  # same ids, v1 names
    assert v2.segmentation.names() == ["pancreas", "aorta"]
    aorta_v1, aorta_v2 = v1.segmentation.mask("aorta"), v2.segmentation.mask("aorta")
    assert aorta_v1[:, 2:8].any() and not aorta_v1[:, 10:16].any()
    assert aorta_v2[:, 10:16].any() and not aorta_v2[:, 2:8].any()
    assert v2.structure("aorta").role == "critical"
    assert v2.structure("pancreas").role == "organ"


def test_mapping_file_and_bad_keyword(tmp_path):
    mapping = tmp_path / "ts.json"
    mapping.write_text(json.dumps({"schema": "surgiplan.totalsegmentator/1", "version": "v1",
                                   "task": "total"}))
    assert read_label_names(mapping)[7]["name"] == "aorta"
    mapping.write_text(json.dumps({"schema": "surgiplan.totalsegmentator/1", "version": "v9"}))
    with pytest.raises(BadInputError, match="unknown TotalSegmentator version"):
        read_label_names(mapping)
    with pytest.raises(BadInputError, match="totalsegmentator-v3"):
        build_twin(_write_image(tmp_path), label_names="totalsegmentator-v3")


def test_embedded_names_of_a_v2_multilabel_file_win(tmp_path):
    image = _write_image(tmp_path)
    labels = _multilabel({1: slice(2, 8), 2: slice(10, 16)})
    affine_ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ GRID.index_to_lps_matrix
    nifti = nib.Nifti1Image(labels.transpose(2, 1, 0), affine_ras)
    nifti.set_sform(affine_ras, code=1)
    xml = ('<?xml version="1.0" encoding="UTF-8"?> <CaretExtension> <VolumeInformation '
           'Index="0"> <LabelTable><Label Key="1" Red="1" Green="0" Blue="0" Alpha="1">'
           '<![CDATA[liver]]></Label>\n<Label Key="2" Red="0" Green="1" Blue="0" Alpha="1">'
           '<![CDATA[spinal_cord]]></Label>\n</LabelTable></VolumeInformation></CaretExtension>')
    nifti.header.extensions.append(nib.nifti1.Nifti1Extension(0, xml.encode()))
    path = tmp_path / "total.nii.gz"
    nib.save(nifti, path)
    assert embedded_label_names(path)[2]["name"] == "spinal_cord"
    twin = build_twin(image, labels=[path])
    assert twin.segmentation.names() == ["liver", "spinal_cord"]
    assert twin.structure("spinal_cord").role == "critical"


def test_per_structure_mask_folder(tmp_path):
    image = _write_image(tmp_path)
    folder = tmp_path / "segmentations"
    folder.mkdir()
    fine = ImageGeometry((60, 56, 40), (0.75, 0.75, 1.0), GRID.index_to_lps([-0.25, -0.25, -0.25]))
    for name, rows in (("aorta", slice(4, 16)), ("vertebrae_L1", slice(20, 32)),
                       ("spleen", None)):
        mask = np.zeros(fine.shape_zyx, np.uint8)
        if rows is not None:
            mask[8:24, rows, 10:40] = 1
        (folder / f"{name}.nii.gz").write_bytes(nifti_bytes(mask, fine, gzipped=True))
    twin = build_twin(image, labels=[folder])
    assert twin.segmentation.names() == ["aorta", "vertebrae_L1"]
    assert twin.structure("vertebrae_L1").role == "bone"
    warnings = twin.provenance.import_warnings
    assert any("resampled" in w for w in warnings)
    assert any("1 empty mask file(s) skipped (spleen)" in w for w in warnings)
    assert twin.segmentation.volume_ml("aorta") == pytest.approx(16 * 12 * 30 * 0.5625 / 1000,
                                                                  rel=0.1)
