"""Trajectory planning in the app: plug-in list, live drag re-scoring, Monte Carlo on release,
failing plug-ins, the safest-path search with heat-map and pins, and the probe's-eye view."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPlainTextEdit

from surgiplan.model.structures import Role
from surgiplan.simulation import discover
from surgiplan.simulation.result import Level, Status
from tests.plugins_fixtures import FIXTURES, TEST_PLUGINS, install_entry_points
from tests.ui.conftest import make_twin
from tests.ui.test_main_window import pixel, send_drag, show

VESSEL_LPS = np.array([-5.0, 0.0, 0.0])
VESSEL_RADIUS_MM = 5.0
TARGET_LPS = np.array([12.0, 0.0, 0.0])  # 17 mm to the patient's left of the vessel centre
ENTRY_SAFE = np.array([12.0, -36.0, 0.0])  # anterior skin: path misses the vessel by 12 mm
ENTRY_BREACH = np.array([-33.0, 0.0, 0.0])  # right skin: path runs through the vessel


def planning_twin():
    twin = make_twin()
    geo = twin.geometry
    k, j, i = np.indices(geo.shape_zyx)
    lps = geo.index_to_lps(np.stack([i, j, k], axis=-1).astype(float))
    vessel = np.linalg.norm(lps - VESSEL_LPS, axis=-1) <= VESSEL_RADIUS_MM
    twin.add_structure("vessel", vessel, role=Role.CRITICAL, margin_mm=2.0,
                       color=(1.0, 0.0, 1.0))
    return twin


@pytest.fixture(scope="module")
def entries():
    return discover()


@pytest.fixture
def test_plugin_entries(tmp_path, monkeypatch):
    install_entry_points(tmp_path, "sp_test_plugins", TEST_PLUGINS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(FIXTURES))
    return discover()


def open_planning(qtbot, window, entries, twin=None):
    show(qtbot, window, twin or planning_twin())
    panel = window.planning_panel
    panel.set_entries(entries)
    window.planning_dock.raise_()
    qtbot.waitUntil(panel.isVisible, timeout=5000)
    qtbot.waitUntil(panel.is_prepared, timeout=30_000)
    return panel


def place(panel, entry, target) -> None:
    panel.plan.set_points(entry, target)


def wait_full(qtbot, panel, timeout=20_000):
    qtbot.waitUntil(lambda: panel._mc_job is None and panel.result is not None
                    and panel.result.provenance is not None
                    and panel.result.provenance.samples > 0, timeout=timeout)


def test_lists_plugins_and_builds_the_form_from_the_schema(qtbot, window, test_plugin_entries):
    panel = open_planning(qtbot, window, test_plugin_entries)
    combo = panel.simulator_combo
    texts = [combo.itemText(n) for n in range(combo.count())]
    disabled = [t for t in texts if "disabled" in t]
    assert any("deliberately broken" in t for t in disabled), texts
    assert any("API v99" in t for t in disabled), texts
    model = combo.model()
    for n, text in enumerate(texts):
        assert model.item(n).isEnabled() == ("disabled" not in text)
    panel.select_simulator("trajectory")
    spec = panel.entry().spec
    assert [p.key for p in panel.form.parameters] == [p.key for p in spec.parameters]
    assert panel.form.editor("default_margin_mm").suffix() == " mm"
    assert panel.form.values() == spec.defaults()


def test_drag_rescores_live_then_monte_carlo_on_release(qtbot, window, entries):
    panel = open_planning(qtbot, window, entries)
    panel.select_simulator("trajectory")
    place(panel, ENTRY_SAFE, TARGET_LPS)
    wait_full(qtbot, panel)
    safe = panel.result
    assert safe.ok and safe.level("vessel").level is Level.SAFE
    assert safe.metric("min_distance_mm", "vessel").ci95 is not None
    assert panel.levels_table.item(0, 1).text() == "safe"
    assert panel.plan.level is Level.SAFE
    # drag the entry across to the right side, through the vessel, in the axial view
    axial = window.slice_views["axial"]
    window.set_cursor(TARGET_LPS)
    panel.start_placing("entry")
    assert axial.tool is panel.tool
    live_ms = []
    panel.plan.changed.connect(lambda dragging: dragging and live_ms.append(panel.live_ms))
    send_drag(axial, Qt.MouseButton.LeftButton, axial.lps_to_screen(ENTRY_SAFE),
              axial.lps_to_screen(ENTRY_BREACH), steps=8, between=lambda: qtbot.wait(5))
    assert len(live_ms) >= 4, "moves in separate event-loop turns are each scored live"
    assert min(v for v in live_ms if v is not None) < 30.0, live_ms
    np.testing.assert_allclose(panel.plan.entry_lps[:2], ENTRY_BREACH[:2], atol=1.5)
    wait_full(qtbot, panel)
    breach = panel.result.level("vessel")
    assert breach.level is Level.BREACH and breach.breach_probability > 0.5
    assert panel.levels_table.item(0, 1).text() == "breach"
    assert panel.plan.level is Level.BREACH
    assert "Monte Carlo: 1000 samples" in panel.status_label.text()
    dialog = panel.show_provenance()
    text = dialog.findChild(QPlainTextEdit).toPlainText()
    assert '"simulator_id": "trajectory"' in text and '"samples": 1000' in text
    dialog.close()
    panel.start_placing("entry")
    panel.entry_button.setChecked(False)
    assert axial.tool is None


def test_stale_monte_carlo_results_are_dropped(qtbot, window, entries):
    panel = open_planning(qtbot, window, entries)
    panel.select_simulator("trajectory")
    place(panel, ENTRY_BREACH, TARGET_LPS)
    panel.run_full()
    first_generation = panel._generation
    place(panel, ENTRY_SAFE, TARGET_LPS)
    panel.run_full()
    assert panel._generation > first_generation
    wait_full(qtbot, panel)
    qtbot.wait(300)  # any older run finishing now must not overwrite the newer result
    assert panel.result.level("vessel").level is Level.SAFE


def test_path_is_drawn_in_slice_views_in_its_traffic_light_colour(qtbot, window, entries):
    panel = open_planning(qtbot, window, entries)
    place(panel, ENTRY_BREACH, TARGET_LPS)
    qtbot.waitUntil(lambda: panel.plan.level is Level.BREACH, timeout=10_000)
    axial = window.slice_views["axial"]
    window.set_cursor(TARGET_LPS)
    qtbot.wait(30)
    mid = (ENTRY_BREACH + np.array([-14.0, 0.0, 0.0])) / 2.0  # on the path, outside the vessel
    r, g, b = pixel(axial, axial.lps_to_screen(mid))
    assert r > 200 and g < 90 and b < 90, (r, g, b)


def test_crashing_and_hanging_plugins_give_failed_results(qtbot, window, test_plugin_entries):
    panel = open_planning(qtbot, window, test_plugin_entries)
    panel.select_simulator("test-crash")
    qtbot.waitUntil(panel.is_prepared, timeout=15_000)
    place(panel, ENTRY_SAFE, TARGET_LPS)
    assert panel.result.status is Status.FAILED
    assert "deliberate crash" in panel.status_label.text()
    assert panel.status_label.text().startswith("FAILED")
    panel.select_simulator("test-hang")
    panel.uncertainty_form.set_values({"timeout_s": 0.5})
    qtbot.waitUntil(panel.is_prepared, timeout=30_000)
    place(panel, ENTRY_BREACH, TARGET_LPS)
    assert "test-hang" in panel.live_disabled
    panel.run_full()
    qtbot.waitUntil(lambda: "did not finish" in panel.status_label.text(), timeout=15_000)
    assert panel.result.status is Status.FAILED and panel.status_label.text().startswith("FAILED")
    panel.select_simulator("trajectory")  # the app still works
    qtbot.waitUntil(panel.is_prepared, timeout=15_000)
    place(panel, ENTRY_SAFE, TARGET_LPS)
    assert panel.result.ok and panel.result.level("vessel").level is Level.SAFE


def test_search_lists_candidates_heatmap_preview_and_pin(qtbot, window, entries):
    panel = open_planning(qtbot, window, entries)
    panel.select_simulator("trajectory")
    panel.plan.set_point("target", TARGET_LPS)
    panel.search_form.set_values({"max_length_mm": 60.0, "max_angle_deg": 45.0, "top_k": 5})
    panel.start_search()
    qtbot.waitUntil(lambda: panel.search_result is not None, timeout=30_000)
    result = panel.search_result
    assert result.n_candidates > 100 and result.candidates
    assert panel.candidates_table.rowCount() == len(result.candidates)
    assert any(c.pareto for c in result.pareto)
    assert "entries evaluated" in panel.search_label.text()
    assert panel.planning3d.has_heatmap()
    assert all(c.clearance_mm >= 0 for c in result.candidates)
    panel.heatmap_box.setChecked(False)
    assert not panel.planning3d._heatmap_actor.GetVisibility()
    panel.heatmap_box.setChecked(True)
    panel.candidates_table.selectRow(1)
    second = result.candidates[1]
    np.testing.assert_allclose(panel.plan.entry_lps, second.entry_lps)
    wait_full(qtbot, panel)
    assert panel.result.level("vessel").level is not Level.BREACH
    panel.pin_selected()
    assert panel.pinned == [second]
    assert "planning:cand:pinned:0" in panel.planning3d.actor_names()
    assert "#2" in panel.pinned_label.text()
    panel.clear_pins()
    assert not panel.pinned


def test_probe_view_shows_the_structure_the_tool_crosses(qtbot, window, entries):
    panel = open_planning(qtbot, window, entries)
    place(panel, ENTRY_BREACH, TARGET_LPS)
    assert not window.probe_dock.isVisible()  # placing never opens it (it moved the views)
    panel.probe_toggle.setChecked(True)
    qtbot.waitUntil(window.probe_dock.isVisible, timeout=5_000)
    probe = panel.probe
    qtbot.wait(50)
    depth = float(np.linalg.norm(VESSEL_LPS - ENTRY_BREACH))
    probe.set_depth(depth)
    assert probe.depth_mm() == pytest.approx(depth, abs=0.1)
    assert probe.distances_here()["vessel"] < 0  # the tool is inside the vessel here
    assert "vessel" in probe.depth_label.text()
    qtbot.wait(30)
    image = probe.probe.grab().toImage()
    centre = probe.probe.mm_to_screen(3.0, 0.0)  # inside the vessel, beside the footprint
    c = image.pixelColor(round(centre.x()), round(centre.y()))
    assert c.red() > c.green() + 40 and c.blue() > c.green() + 40, c.getRgb()  # magenta tint
    probe.set_depth(3.0)  # near the skin: no vessel
    assert probe.distances_here()["vessel"] > 10
