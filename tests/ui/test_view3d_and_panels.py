"""3D defaults (see-through skin, textured slice planes), the data browser's non-image objects
and unreadable files, and settings kept out of the user's folders during tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
from PySide6.QtGui import QImage

from tests.conftest import real_scan
from tests.ui.conftest import MARKER_LPS, wait_ready


def show(qtbot, window, twin) -> None:
    wait_ready(qtbot, window, lambda: (setattr(window, "_loading", True), window.set_twin(twin)))
    qtbot.wait(30)


def rgb_of(image: QImage) -> np.ndarray:
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    return arr[:, : img.width() * 3].reshape(img.height(), img.width(), 3).astype(int)


def yellow_pixels(view) -> int:
    rgb = rgb_of(view.grab_image())
    return int(np.count_nonzero((rgb[..., 0] > 90) & (rgb[..., 1] > 90)
                                & (rgb[..., 2] < 0.4 * rgb[..., 0])))


def test_skin_is_see_through_in_3d_by_default(qtbot, window, twin):
    show(qtbot, window, twin)
    view = window.view3d
    assert view.skin_box.isChecked()
    assert view.surface_opacity_of("body") == 0.3  # role skin
    assert view.surface_opacity_of("tumour") == 1.0
    inside = yellow_pixels(view)
    assert inside > 100, "the tumour inside the skin is not visible through it"
    view.skin_box.setChecked(False)
    assert view.surface_opacity_of("body") == 1.0
    assert yellow_pixels(view) < inside / 4, "an opaque skin must hide the tumour"
    assert twin.structure("body").opacity == 1.0 and not window.dirty  # a view setting only


def test_slice_planes_in_3d_show_the_slice_images(qtbot, window, twin):
    show(qtbot, window, twin)
    for name in ("body", "tumour"):
        twin.set_structure_properties(name, visible=False)
    window.set_cursor(MARKER_LPS)
    window.set_window_level(1000.0, 200.0)  # marker white, body and air black
    view = window.view3d
    view.planes_box.setChecked(True)
    textured = [a for a in view._plane_actors if a.texture is not None]
    assert len(textured) == 3
    view.set_standard_view("superior")  # from above: anterior up, patient left on screen left
    rgb = rgb_of(view.grab_image())
    white = (rgb.min(axis=2) > 200)
    assert white.sum() > 20, "the marker of the axial slice image is not drawn in 3D"
    rows, cols = np.nonzero(white)
    h, w = white.shape
    assert cols.mean() < w / 2 and rows.mean() < h / 2, "marker must be left-anterior seen from S"
    window.set_window_level(-2000.0, 200.0)  # everything white now
    rgb = rgb_of(view.grab_image())
    assert (rgb.min(axis=2) > 200).sum() > 50 * white.sum(), "planes did not follow the window"
    view.planes_box.setChecked(False)
    assert not view._plane_actors


def _folder_with_sr_and_junk(tmp_path: Path) -> Path:
    source = real_scan("liver-ct-3slice-seg")
    folder = tmp_path / "mixed"
    folder.mkdir()
    slices = sorted(source.rglob("*.dcm"))
    for n, f in enumerate(slices):
        shutil.copy(f, folder / f"ct{n}.dcm")
    ds = pydicom.dcmread(slices[0])
    del ds.PixelData
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.Modality = "SR"
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesDescription = "Dictated report"
    ds.save_as(folder / "report.dcm")
    (folder / "notes.txt").write_text("not a DICOM file")
    (folder / "IM_0099.dcm").write_bytes(b"\x00" * 40)  # a damaged file
    return folder


def test_data_browser_lists_non_image_objects_and_problems(qtbot, window, tmp_path):
    folder = _folder_with_sr_and_junk(tmp_path)
    wait_ready(qtbot, window, lambda: window.open_path(folder))
    panel = window.data_panel
    assert len(panel.series_items()) == 1 and window.twin is not None
    others = panel.items_of_kind("non_image")
    assert len(others) == 1
    sr = others[0]
    assert sr.text(1) == "SR" and "report" in sr.text(0).lower()
    assert sr.isDisabled()  # greyed, cannot be opened as an image
    problems = panel.items_of_kind("problem")
    assert [p.text(0) for p in problems] == ["IM_0099.dcm"]
    assert problems[0].text(3) and problems[0].isDisabled()
    assert "could not be read" in panel.status.text()
    assert [f.text(0) for f in panel.items_of_kind("other_file")] == ["notes.txt"]


def test_settings_stay_in_the_isolated_config_folder(qtbot, tmp_path):
    from surgiplan.ui.shell.autosave import Autosave
    from surgiplan.ui.shell.main_window import MainWindow
    from surgiplan.ui.shell.settings import settings_path

    config_home = os.environ["XDG_CONFIG_HOME"]  # a pytest temp folder (tests/conftest.py)
    assert str(settings_path()).startswith(config_home)
    win = MainWindow(autosave=Autosave(tmp_path / "autosave"))
    qtbot.addWidget(win)
    assert Path(win.settings.fileName()) == settings_path()
    win._add_recent(tmp_path / "case.surgiplan")
    win.settings.sync()
    assert settings_path().is_file()
    assert str(tmp_path / "case.surgiplan") in settings_path().read_text()
