"""Undo/redo by deltas, live volumes, per-structure invalidation, anatomy names, presets."""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role
from surgiplan.model.volume import ImageVolume
from surgiplan.segmentation.anatomy_names import anatomy_names, anatomy_regions, lookup_anatomy
from surgiplan.segmentation.editor import SegmentEditor
from surgiplan.segmentation.history import LayerDelta
from surgiplan.segmentation.presets import PRESETS, apply_preset
from surgiplan.twin import Twin
from tests.conftest import real_scan

GEOM = ImageGeometry((40, 30, 20), (0.8, 0.8, 1.5), (0.0, 0.0, 0.0))


def _twin() -> Twin:
    image = ImageVolume(np.zeros(GEOM.shape_zyx, np.int16), GEOM, modality="CT")
    twin = Twin(image)
    a = np.zeros(GEOM.shape_zyx, bool)
    a[5:10, 5:15, 5:15] = True
    twin.add_structure("a", a, role="target")
    b = np.zeros(GEOM.shape_zyx, bool)
    b[5:10, 5:15, 20:30] = True
    twin.add_structure("b", b, role="critical")
    return twin


def _state(twin: Twin) -> tuple:
    return ([layer.copy() for layer in twin.segmentation.layers],
            [(s.name, s.role, s.label, s.layer, s.color, s.margin_mm) for s in twin.structures])


def _same(s1: tuple, s2: tuple) -> bool:
    return s1[1] == s2[1] and all(np.array_equal(x, y) for x, y in zip(s1[0], s2[0],
                                                                       strict=False))


def test_paint_erase_undo_redo_restore_exact_state_and_live_volume():
    twin = _twin()
    editor = SegmentEditor(twin)
    start = _state(twin)
    vox_ml = GEOM.voxel_volume_mm3 / 1000
    assert editor.volume_ml("a") == pytest.approx(500 * vox_ml)
    centre = GEOM.index_to_lps([10, 10, 7])
    with editor.stroke("paint"):
        for di in range(0, 16, 2):
            # reaches into "b": overwrites its voxels
            editor.paint("a", centre + np.array([0.8 * di, 0, 0]), 3.0)
    painted = _state(twin)
    assert editor.volume_ml("a") == pytest.approx(twin.segmentation.voxel_count("a") * vox_ml)
    assert editor.volume_ml("b") == pytest.approx(twin.segmentation.voxel_count("b") * vox_ml)
    assert twin.segmentation.voxel_count("b") < 500
    editor.paint("a", centre, 2.0, axis=2, erase=True)
    assert editor.undo() == "erase"
    assert editor.undo() == "paint"
    assert _same(_state(twin), start)
    assert editor.volume_ml("a") == pytest.approx(500 * vox_ml)
    assert editor.redo() == "paint"
    assert _same(_state(twin), painted)
    assert editor.volume_ml("b") == pytest.approx(twin.segmentation.voxel_count("b") * vox_ml)


def test_paint_without_overwrite_leaves_other_structures_alone():
    twin = _twin()
    editor = SegmentEditor(twin)
    editor.paint("a", GEOM.index_to_lps([20, 10, 7]), 4.0, overwrite_others=False)
    assert twin.segmentation.voxel_count("b") == 500


def test_edits_invalidate_only_the_edited_structure_and_report_the_box():
    twin = _twin()
    editor = SegmentEditor(twin)
    dist_b = twin.signed_distance_mm("b")
    twin.signed_distance_mm("a")
    events = []
    twin.events.connect(lambda event, **kw: events.append((event, kw)))
    assert editor.paint("a", GEOM.index_to_lps([16, 10, 7]), 2.0)
    assert twin.signed_distance_mm("b") is dist_b
    assert "a" not in twin._distance_cache
    (name, payload), = events
    assert name == "structure_changed" and payload["name"] == "a" and "box" in payload


def test_replace_mask_structure_lifecycle_and_properties_are_undoable():
    twin = _twin()
    editor = SegmentEditor(twin)
    start = _state(twin)
    new = np.zeros(GEOM.shape_zyx, bool)
    new[12:15, 2:4, 2:4] = True
    editor.replace_mask("a", new, label="threshold")
    assert np.array_equal(twin.segmentation.mask("a"), new)
    editor.add_from_anatomy("aorta", new)
    assert twin.structure("aorta").role == Role.CRITICAL
    assert twin.structure("aorta").margin_mm == 3.0
    editor.rename_structure("aorta", "vessel")
    editor.set_properties("vessel", margin_mm=5.0, role="organ")
    editor.remove_structure("b")
    assert twin.segmentation.names() == ["a", "vessel"]
    while editor.can_undo:
        editor.undo()
    assert _same(_state(twin), start)
    while editor.can_redo:
        editor.redo()
    assert twin.segmentation.names() == ["a", "vessel"]
    assert twin.structure("vessel").margin_mm == 5.0
    assert twin.volume_ml("vessel") == pytest.approx(new.sum() * GEOM.voxel_volume_mm3 / 1000)


def test_deltas_are_small_and_history_has_a_memory_cap():
    big = ImageGeometry((256, 256, 100), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    twin = Twin(ImageVolume(np.zeros(big.shape_zyx, np.int16), big))
    twin.add_structure("s", np.zeros(big.shape_zyx, bool))
    editor = SegmentEditor(twin, max_undo_bytes=10_000)
    for n in range(30):
        editor.paint("s", big.index_to_lps([20 + 6 * n, 128, 50]), 6.0)
    assert editor.history.nbytes <= 10_000
    assert 5 < len(editor.history._done) < 30  # the oldest were dropped
    delta = editor.history._done[-1]
    assert isinstance(delta, LayerDelta) and delta.nbytes < 2_000  # vs 6.5 MB for a copy


def test_anatomy_names_cover_regions_with_roles():
    assert anatomy_regions() == ["head", "spine", "abdomen"]
    assert {a.name for a in anatomy_names("liver")} >= {"liver", "portal vein", "liver tumour"}
    assert lookup_anatomy("Spinal Cord").role == Role.CRITICAL
    assert lookup_anatomy("nonsense") is None
    with pytest.raises(ValueError):
        anatomy_names("knee")


def test_apply_preset_is_one_undo_step_and_a_second_run_keeps_edits():
    r = np.linalg.norm(np.indices(GEOM.shape_zyx).T - np.array([10, 15, 20]), axis=-1).T
    ct = np.where(r < 9, 40, -1000).astype(np.int16)
    ct[r < 5] = 900
    twin = Twin(ImageVolume(ct, GEOM, modality="CT"))
    editor = SegmentEditor(twin)
    assert set(PRESETS) == {"ct-bone-skin-vessels", "ct-spine", "ct-liver", "mr-head",
                            "mr-head-planning"}
    assert apply_preset(twin, "ct-bone-skin-vessels", editor=editor) == ["skin", "bone",
                                                                         "vessels"]
    assert np.array_equal(twin.segmentation.mask("bone"), r < 5)
    editor.paint("bone", (16.0, 12.0, 15.0), 2.0, erase=True)  # a person edits the bone
    edited = twin.segmentation.mask("bone").copy()
    assert edited.sum() < (r < 5).sum()
    # run again: the untouched automatic structures are updated, the edited bone kept
    assert apply_preset(twin, "ct-bone-skin-vessels", editor=editor) == ["skin", "vessels"]
    assert twin.segmentation.names() == ["skin", "bone", "vessels"], "no 'skin 2'"
    assert np.array_equal(twin.segmentation.mask("bone"), edited)
    # the second run proposed the same voxels: it changed nothing and made no undo step
    editor.undo()  # the edit
    assert np.array_equal(twin.segmentation.mask("bone"), r < 5)
    editor.undo()  # the first run, one step
    assert twin.segmentation.names() == []


# ------------------------------------------------------------------ real scans
def _real_twin(name: str) -> Twin:
    from surgiplan.io.twin_build import load_image

    return Twin(load_image(real_scan(name)))


@pytest.mark.realdata
def test_ct_preset_on_real_abdomen_finds_vertebrae_and_aorta():
    twin = _real_twin("abdomen-ct-contrast")
    names = apply_preset(twin, "ct-bone-skin-vessels")
    assert names == ["skin", "bone", "vessels"]
    bone, vessels = twin.segmentation.mask("bone"), twin.segmentation.mask("vessels")
    # (k, j, i) voxels read off the scan: lumbar/lower thoracic vertebral bodies, then the aorta
    # (bright round structure anterior-left of the vertebral bodies).
    for k, j, i in [(20, 260, 260), (45, 275, 260), (60, 280, 262), (70, 285, 265),
                    (90, 290, 262)]:
        assert bone[k, j, i] and not vessels[k, j, i]
    for k, j, i in [(70, 262, 283), (90, 265, 283)]:
        assert vessels[k, j, i] and not bone[k, j, i]
    assert 800 < twin.volume_ml("bone") < 3000
    assert twin.segmentation.mask("skin")[bone].all()


@pytest.mark.realdata
def test_mr_head_preset_on_real_t1_gives_plausible_brain():
    twin = _real_twin("head-mr-t1-mprage")
    assert apply_preset(twin, "mr-head") == ["head", "brain"]
    head, brain = twin.segmentation.mask("head"), twin.segmentation.mask("brain")
    assert head[brain].all()
    assert 1000 < twin.volume_ml("brain") < 1600  # ml
    assert twin.volume_ml("head") > 2.5 * twin.volume_ml("brain")
