"""Drag frames stay cheap (issue 15, item 11): moves of one event-loop pass are merged into one
frame (the first at once), and the planned path's 3D actors are moved by their user matrices
instead of being re-meshed."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject

from surgiplan.ui.plan.planning_panel import DragFrames
from tests.ui.conftest import make_twin
from tests.ui.test_main_window import show


def test_moves_of_one_event_loop_pass_make_at_most_two_frames(qtbot):
    frames = []
    owner = QObject()
    drag = DragFrames(owner, lambda: frames.append(len(frames)))
    for _ in range(10):  # ten moves before the event loop runs again
        drag.request()
    assert frames == [0] and drag.pending()  # the first at once, the rest merged
    qtbot.waitUntil(lambda: not drag.pending(), timeout=2000)
    assert frames == [0, 1]
    qtbot.wait(20)
    drag.request()  # a lone move in a later pass runs at once
    assert frames == [0, 1, 2] and not drag.pending()
    drag.request()
    drag.cancel()  # released: the merged frame is dropped
    qtbot.wait(20)
    assert frames == [0, 1, 2]


def test_path_actors_are_moved_not_remeshed(qtbot, window):
    show(qtbot, window, make_twin())
    planning3d = window.planning_panel.planning3d
    entry, target = np.array([-30.0, 0.0, 10.0]), np.array([5.0, 10.0, -5.0])
    planning3d.show_path(entry, target, 2.0, None)
    tube = planning3d._path_actors["planning:path:tool"]
    mesh_points = tube.mapper.dataset.n_points
    r = planning3d._tube_radius + 1e-6  # the tube's radius (at least MIN_TUBE_RADIUS_MM)

    def bounds(actor) -> np.ndarray:
        """Min and max corner of the actor's mesh as placed (LPS mm)."""
        points = np.asarray(actor.mapper.dataset.points, float)
        placed = points @ np.asarray(actor.user_matrix)[:3, :3].T + \
            np.asarray(actor.user_matrix)[:3, 3]
        return np.stack([placed.min(0), placed.max(0)])

    for shift in (np.zeros(3), np.array([0.0, 20.0, 7.0])):
        planning3d.show_path(entry + shift, target, 2.0, None)
        assert planning3d._path_actors["planning:path:tool"] is tube  # same actor, same mesh
        assert tube.mapper.dataset.n_points == mesh_points
        lo, hi = bounds(tube)
        ends = np.stack([entry + shift, target])
        assert np.all(lo >= ends.min(0) - r) and np.all(hi <= ends.max(0) + r)
        assert np.allclose(lo, ends.min(0), atol=r) and np.allclose(hi, ends.max(0), atol=r)
        sphere = planning3d._path_actors["planning:path:entry"]
        assert np.allclose(bounds(sphere).mean(0), entry + shift, atol=0.05)
    planning3d.show_path(entry, target, 6.0, None)  # another diameter: a new tube mesh
    assert planning3d._path_actors["planning:path:tool"] is not tube
    planning3d.show_path(None, None, 2.0, None)
    assert not [n for n in planning3d.actor_names() if n.startswith("planning:path")]
