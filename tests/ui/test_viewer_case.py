"""The case in the window: replacing it with unsaved edits asks Save / Discard / Cancel on every
path; model events reach the 3D view and every structure list; import warnings show."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from surgiplan.io.bundle import save_bundle
from surgiplan.model.structures import Role, Segmentation
from tests.ui.conftest import TUMOUR_LPS, make_twin, wait_ready


def show(qtbot, window, twin) -> None:
    def action():
        window._loading = True
        window.set_twin(twin)

    wait_ready(qtbot, window, action)


def answer_unsaved(qtbot, button: QMessageBox.StandardButton, seen: list[str]) -> None:
    """Click ``button`` of the unsaved-changes question as soon as it is shown."""

    def click() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.objectName() == "unsaved_changes":
            seen.append(box.text())
            box.button(button).click()
        else:
            QTimer.singleShot(20, click)

    QTimer.singleShot(20, click)


def test_replacing_an_edited_case_asks_first(qtbot, window, tmp_path):
    other = tmp_path / "other.surgiplan"
    save_bundle(make_twin(size=(20, 18, 16)), other)
    first = make_twin()
    show(qtbot, window, first)
    window.mark_dirty()
    seen: list[str] = []
    answer_unsaved(qtbot, QMessageBox.StandardButton.Cancel, seen)
    window.open_path(other)
    assert seen and "unsaved changes" in seen[0]
    assert window.twin is first and window.dirty and window.runner.is_idle()
    answer_unsaved(qtbot, QMessageBox.StandardButton.Cancel, seen)
    window.recover(tmp_path / "no-session")
    assert len(seen) == 2 and window.twin is first
    answer_unsaved(qtbot, QMessageBox.StandardButton.Cancel, seen)
    window.load_series(object())
    assert len(seen) == 3 and window.twin is first
    answer_unsaved(qtbot, QMessageBox.StandardButton.Discard, seen)
    wait_ready(qtbot, window, lambda: window.open_path(other))
    assert len(seen) == 4 and window.twin is not first
    assert window.twin.geometry.size == (20, 18, 16) and not window.dirty


def test_save_answer_saves_then_opens(qtbot, window, tmp_path):
    other = tmp_path / "other.surgiplan"
    save_bundle(make_twin(size=(20, 18, 16)), other)
    mine = tmp_path / "mine.surgiplan"
    first = make_twin()
    save_bundle(first, mine)
    show(qtbot, window, first)
    window.case_path = mine
    first.set_structure_properties("tumour", margin_mm=7.0)
    assert window.dirty
    seen: list[str] = []
    answer_unsaved(qtbot, QMessageBox.StandardButton.Save, seen)
    wait_ready(qtbot, window, lambda: window.open_path(other))
    from surgiplan.io.bundle import load_bundle

    assert load_bundle(mine).structure("tumour").margin_mm == 7.0
    assert window.twin.geometry.size == (20, 18, 16)


def test_model_events_reach_3d_and_every_list(qtbot, window):
    twin = make_twin()
    show(qtbot, window, twin)
    qtbot.waitUntil(lambda: set(window.view3d.surface_names()) == {"tumour", "body"},
                    timeout=30_000)
    k, j, i = np.indices(twin.geometry.shape_zyx)
    lps = twin.geometry.index_to_lps(np.stack([i, j, k], axis=-1).astype(float))
    ball = np.linalg.norm(lps - (TUMOUR_LPS + [30, 0, 20]), axis=-1) <= 6.0
    seg = Segmentation(geometry=twin.geometry)
    seg.add("second tumour", ball, role=Role.TARGET)
    seg.add("liver", np.linalg.norm(lps, axis=-1) <= 12.0, role=Role.ORGAN)
    window.segment_panel.add_segmentation(seg, "preset test")  # the path presets take

    def lists() -> dict[str, list[str]]:
        combo = window.segment_panel.structure_combo
        return {
            "3d": window.view3d.surface_names(),
            "structures": list(window.structures_panel._names),
            "segment": [combo.itemText(n) for n in range(combo.count())],
            "ablation": _items(window.ablation_panel.target_combo),
            "resection organ": _items(window.resection_panel.organ_combo),
            "resection target": _items(window.resection_panel.target_combo),
        }

    qtbot.waitUntil(lambda: "second tumour" in window.view3d.surface_names()
                    and "liver" in window.view3d.surface_names(), timeout=30_000)
    now = lists()
    for where, names in now.items():
        if where in ("ablation", "resection target", "3d", "structures", "segment"):
            assert "second tumour" in names, (where, names)
    assert "liver" in now["resection organ"]
    twin.rename_structure("second tumour", "tumour 2")
    twin.remove_structure("liver")
    qtbot.waitUntil(lambda: "tumour 2" in window.view3d.surface_names(), timeout=30_000)
    now = lists()
    for where, names in now.items():
        assert "second tumour" not in names and "liver" not in names, (where, names)
    assert "tumour 2" in now["ablation"] and "tumour 2" in now["structures"]


def _items(combo) -> list[str]:
    return [combo.itemText(n) for n in range(combo.count())]


def test_import_warnings_show_in_a_banner_until_dismissed(qtbot, window):
    twin = make_twin()
    twin.image.warnings.append("gantry tilt 12.0 deg: resampled onto a regular grid")
    show(qtbot, window, twin)
    banner = window.warning_banner
    assert banner.isVisible() and "gantry tilt" in banner.label.text()
    banner.close_button.click()
    assert not banner.isVisible()
    show(qtbot, window, make_twin())
    assert not banner.isVisible()


def test_undo_goes_to_the_segmentation_not_the_number_field(qtbot, window):
    from PySide6.QtCore import Qt

    twin = make_twin()
    show(qtbot, window, twin)
    seg = Segmentation(geometry=twin.geometry)
    seg.add("extra", np.ones(twin.geometry.shape_zyx, bool), role=Role.OTHER)
    window.segment_panel.add_segmentation(seg, "add extra")
    assert "extra" in twin.segmentation.names()
    spin = window.wl_bar.width_spin
    window.activateWindow()
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=3000)
    qtbot.keyClicks(spin.lineEdit(), "5")  # the field has text to undo too
    qtbot.keyClick(spin, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert "extra" not in twin.segmentation.names()


def test_keyboard_returns_to_the_view_after_a_menu(qtbot, window):
    show(qtbot, window, make_twin())
    window.activateWindow()
    axial = window.slice_views["axial"]
    axial.setFocus()
    view_menu = next(a.menu() for a in window.menuBar().actions()
                     if a.text().replace("&", "") == "View")
    view_menu.popup(window.mapToGlobal(window.rect().center()))
    qtbot.waitUntil(view_menu.isVisible, timeout=3000)
    window.menuBar().setFocus()
    view_menu.hide()
    qtbot.waitUntil(lambda: window.focusWidget() is axial, timeout=3000)


def test_imported_segments_get_terminology_roles_and_distinct_colours(qtbot, window):
    twin = make_twin()
    show(qtbot, window, twin)
    seg = Segmentation(geometry=twin.geometry)
    shape = twin.geometry.shape_zyx
    names = ["tumor", "Liver_Tumour", "kidney_left", "thing a", "thing b"]
    for n, name in enumerate(names):
        mask = np.zeros(shape, bool)
        mask[n + 1, 2:5, 2:5] = True
        seg.add(name, mask)  # as a plain label map import: role other, no colour
    window.segment_panel.add_segmentation(seg, "import labels")
    roles = {s.name: s.role for s in twin.structures}
    assert roles["tumor"] is Role.TARGET and roles["Liver_Tumour"] is Role.TARGET
    assert roles["kidney_left"] is Role.ORGAN and roles["thing a"] is Role.OTHER
    colours = [twin.structure(n).color for n in names]
    assert len(set(colours)) >= 4  # the two tumours share the tumour colour at most
    assert twin.structure("thing a").color != twin.structure("thing b").color


def test_volume_rendering_is_not_hidden_by_the_skin(qtbot, window):
    from surgiplan.ui.views.view3d import SKIN_OPACITY_3D, VOLUME_CONTEXT_OPACITY

    show(qtbot, window, make_twin())
    view = window.view3d
    qtbot.waitUntil(lambda: "body" in view.surface_names() and view._image is not None,
                    timeout=30_000)
    assert view.surface_opacity_of("body") == SKIN_OPACITY_3D
    view.volume_combo.setCurrentText("CT bone")
    assert view.surface_opacity_of("body") <= VOLUME_CONTEXT_OPACITY
    assert view.surface_opacity_of("tumour") == 1.0  # the target stays opaque
    mapper = view._volume_actor.GetMapper()
    assert mapper.GetSampleDistance() <= min(view._image.geometry.spacing_mm) / 2 + 1e-6
    view.volume_combo.setCurrentText("No volume")
    assert view.surface_opacity_of("body") == SKIN_OPACITY_3D


def test_3d_display_surfaces_are_cached_in_the_bundle_and_checked(tmp_path):
    from surgiplan.io.bundle import load_bundle
    from surgiplan.ui.data.case_io import scene_3d
    from surgiplan.ui.views.display_meshes import display_cache_entries

    twin = make_twin()
    first = scene_3d(twin, with_volume=False)
    assert set(first.made) == {"tumour", "body"}
    twin.bundle_extras.update(display_cache_entries(twin, first.made))
    reopened = load_bundle(save_bundle(twin, tmp_path / "c.surgiplan"))
    again = scene_3d(reopened, with_volume=False)
    assert again.made == {} and set(again.surfaces) == {"tumour", "body"}  # no meshing
    assert again.surfaces["tumour"].n_points == first.surfaces["tumour"].n_points
    mask = reopened.segmentation.mask("tumour")
    mask[:, :, : mask.shape[2] // 2] = False  # an edit: its cached surface no longer fits
    reopened.set_structure_mask("tumour", mask)
    assert set(scene_3d(reopened, with_volume=False).made) == {"tumour"}


def test_import_warnings_reach_the_report():
    from surgiplan.plans.model import Plan
    from surgiplan.plans.planset import PlanSet
    from surgiplan.ui.report.content import build_content

    twin = make_twin()
    twin.image.warnings.append("gantry tilt 12.0 deg: resampled onto a regular grid")
    content = build_content(twin, PlanSet([Plan(name="empty")]))
    assert any("gantry tilt" in w and w.startswith("Import") for w in content.warnings)
