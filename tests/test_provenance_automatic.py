"""Automatic structures carry their method and a quality flag in the twin's provenance (issue 16
item 5): a preset records them unreviewed, a user's voxel edit flags them edited, an explicit
review flags them reviewed, a rename follows, and the case bundle keeps it all."""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.provenance import EDITED, REVIEWED, UNREVIEWED, Provenance
from surgiplan.model.structures import Segmentation
from surgiplan.model.volume import ImageVolume
from surgiplan.segmentation.brush import sphere_region
from surgiplan.segmentation.editor import SegmentEditor
from surgiplan.segmentation.presets import apply_preset
from surgiplan.twin import Twin


def _small_ct_twin() -> Twin:
    """A 40 mm block: a soft-tissue ball (40 HU) in air with an 800 HU skull shell and a
    contrast vessel (300 HU) inside, with the real CT preset's structures on it."""
    geometry = ImageGeometry((40, 40, 40), (1.0, 1.0, 1.0), (-20.0, -20.0, -20.0))
    r = np.linalg.norm(np.indices(geometry.shape_zyx) - 19.5, axis=0)
    image = np.where(r < 18, 40, -1000).astype(np.int16)
    image[(r >= 14) & (r < 17)] = 800
    image[12:28, 18:23, 18:23] = 300
    volume = ImageVolume(image, geometry, modality="CT")
    twin = Twin(volume, Segmentation(geometry=geometry))
    apply_preset(twin, "ct-bone-skin-vessels")
    return twin


def test_preset_records_method_and_unreviewed_flag() -> None:
    twin = _small_ct_twin()
    auto = twin.provenance.automatic
    assert set(auto) == set(twin.segmentation.names()) == {"skin", "bone", "vessels"}
    for entry in auto.values():
        assert entry.quality == UNREVIEWED
        assert entry.method.startswith("preset ct-bone-skin-vessels")
    assert set(twin.provenance.unreviewed()) == set(auto)


def test_edit_review_rename_and_bundle_round_trip(tmp_path) -> None:
    from surgiplan.io.bundle import load_bundle, save_bundle

    twin = _small_ct_twin()
    editor = SegmentEditor(twin)
    in_shell = np.array([15.5, 0.0, 0.0])  # LPS mm: a point of the skull shell
    assert editor.apply_region("bone", sphere_region(twin.geometry, in_shell, 3.0), erase=True)
    assert twin.provenance.automatic["bone"].quality == EDITED
    assert twin.provenance.automatic["skin"].quality == UNREVIEWED
    twin.provenance.mark_reviewed("skin", by="Dr Test")
    assert twin.provenance.automatic["skin"].quality == REVIEWED
    assert "skin" not in twin.provenance.unreviewed()
    editor.rename_structure("vessels", "contrast vessels")
    assert "contrast vessels" in twin.provenance.automatic
    with pytest.raises(KeyError):
        twin.provenance.mark_reviewed("not automatic")
    path = tmp_path / "case.surgiplan"
    save_bundle(twin, path)
    back = load_bundle(path).provenance.automatic
    assert {n: a.quality for n, a in back.items()} == {
        "skin": REVIEWED, "bone": EDITED, "contrast vessels": UNREVIEWED}
    assert back["skin"].reviewed_by == "Dr Test"
    assert Provenance.from_json({}).automatic == {}  # bundles written before: none recorded


def test_cli_marks_reviewed_and_refuses_unknown_names(tmp_path, capsys) -> None:
    from surgiplan.cli.main import main
    from surgiplan.io.bundle import load_bundle, save_bundle

    path = tmp_path / "case.surgiplan"
    save_bundle(_small_ct_twin(), path)
    assert main(["twin", "review", str(path), "--structure", "bone", "--by", "AB"]) == 0
    assert "still unreviewed: skin, vessels" in capsys.readouterr().out
    assert load_bundle(path).provenance.automatic["bone"].quality == REVIEWED
    assert main(["twin", "review", str(path), "--structure", "liver", "--by", "AB"]) == 2
    assert "not an automatic structure" in capsys.readouterr().err
    assert main(["twin", "review", str(path), "--all", "--by", "AB"]) == 0
    assert load_bundle(path).provenance.unreviewed() == {}
