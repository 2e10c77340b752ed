"""The PACS dock and the DICOM database browser against the test Orthanc: search, retrieve in a
worker into the local database, see it in the browser, and load it in the viewer.
Needs an X display (xvfb-run)."""

from __future__ import annotations

import os

import pytest

from tests.ui.conftest import fail_on_leaked_windows, wait_ready, window  # noqa: F401

pytestmark = pytest.mark.skipif(not os.environ.get("DISPLAY"),
                                reason="no display: run under xvfb-run")


def _series_items(tree) -> list:
    out = []
    for i in range(tree.topLevelItemCount()):
        for study in (tree.topLevelItem(i).child(j) for j in range(tree.topLevelItem(i)
                                                                    .childCount())):
            out += [study.child(k) for k in range(study.childCount())]
    return out


def test_search_retrieve_browse_and_load(pacs, orthanc, window, qtbot):  # noqa: F811
    titles = [a.text() for a in window.menuBar().actions()]
    assert "P&ACS" in titles
    panel, browser = window.pacs_panel, window.db_browser
    panel.reload_servers()
    assert panel.server_box.currentText() == "orthanc"
    panel.patient_id.setText("99000")
    panel.search()
    qtbot.waitUntil(lambda: panel.results.topLevelItemCount() == 1, timeout=60_000)
    (item,) = _series_items(panel.results)
    assert item.text(1) == "3"
    panel.results.setCurrentItem(item)
    wait_ready(qtbot, window, panel.retrieve_selected, timeout=120_000)
    (stored,) = _series_items(browser.tree)
    assert stored.text(1) == "3" and stored.text(2) == "get:orthanc"
    assert window.twin.image.geometry.size[2] == 3
    from surgiplan.ui.data.pacs_panel import UID_ROLE

    assert window.twin.image.series_uid == item.data(0, UID_ROLE)[1]
