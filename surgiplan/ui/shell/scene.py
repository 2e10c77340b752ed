"""The twin on screen: display surfaces built in workers, the linked cursor, windowing, overlay
style, layout and slice tools, and screenshots of views or the whole window.

Mixed into :class:`MainWindow`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QFileDialog,
    QWidget,
)

from surgiplan.twin import Twin
from surgiplan.ui.data import case_io
from surgiplan.ui.views.slice_planes import Plane

# Slice tools whose click places one point, so a click in 3D can place it too (the plan's
# entry/target); drawing tools (brush, scissors...) stay slice-only.
POINT_TOOLS_3D = frozenset({"trajectory"})


class SceneMixin:
    """Methods of :class:`MainWindow` (see the module docstring); not usable on their own."""

    def _start_scene(self, twin: Twin) -> None:
        """Build the 3D display copies (volume, surfaces with normals) in one worker job."""

        def done(scene) -> None:
            if twin is self.twin:
                self.view3d.set_scene(scene, twin.structures, modality=twin.image.modality)
                self._display_made.update(scene.made)

        self.runner.submit("Preparing 3D view",
                           partial(case_io.scene_3d, twin, render_triangles=self._render_budget()),
                           on_done=done, on_error=self.report_error)

    def _render_budget(self) -> int | None:
        return case_io.render_budget(self.view3d)

    def _start_surfaces(self, names: list[str] | None) -> None:
        twin = self.twin
        if twin is None or not len(twin.segmentation):
            return
        self.runner.submit("Building surfaces",
                           partial(case_io.scene_3d, twin, names=names, with_volume=False,
                                   render_triangles=self._render_budget()),
                           on_done=partial(self._surfaces_ready, twin),
                           on_error=self.report_error)

    def _surfaces_ready(self, twin: Twin, scene) -> None:
        if twin is self.twin:
            self.view3d.set_surfaces(scene.surfaces, twin.structures)
            self._display_made.update(scene.made)

    def queue_surfaces(self, name: str) -> None:
        """Re-mesh only structure ``name`` in a worker soon; quick successive edits coalesce."""
        self._pending_surfaces.add(name)
        self._surface_timer.start()

    def _flush_surfaces(self) -> None:
        twin = self.twin
        names = [n for n in sorted(self._pending_surfaces)
                 if twin is not None and n in twin.segmentation.names()]
        self._pending_surfaces.clear()
        if not names:
            return
        serial = max(self._surface_serials.values(), default=0) + 1
        self._surface_serials.update(dict.fromkeys(names, serial))
        self.runner.submit("Updating surfaces",
                           partial(case_io.scene_3d, twin, names=names, with_volume=False,
                                   render_triangles=self._render_budget()),
                           on_done=partial(self._edited_surfaces_ready, twin, serial),
                           on_error=self.report_error)

    def _edited_surfaces_ready(self, twin: Twin, serial: int, scene) -> None:
        """Show re-meshed surfaces unless the twin changed or a newer edit superseded them."""
        if twin is not self.twin:
            return
        fresh = {n: m for n, m in scene.surfaces.items()
                 if self._surface_serials.get(n) == serial and n in twin.segmentation.names()}
        if fresh:
            self.view3d.set_surfaces(fresh, twin.structures)
            self._display_made.update({n: m for n, m in scene.made.items() if n in fresh})

    # ------------------------------------------------------------------ view linking
    def _slice_image(self, plane: Plane):
        """The displayed image of a slice view (for the 3D slice planes), or None."""
        view = self.slice_views[plane.value]
        rgb = view.slice_rgb()
        return None if rgb is None else (rgb, view.mapping, view.slice_index)

    def set_cursor(self, point_lps: np.ndarray) -> None:
        """Move the linked crosshair in every view to an LPS point (mm)."""
        for view in self.slice_views.values():
            view.set_cursor(point_lps)
        self.view3d.set_cursor(point_lps)

    def place_from_3d(self, point_lps: np.ndarray) -> None:
        """A click on a 3D surface (LPS mm): the linked cursor moves there, and the active
        tool places its point there - a measurement tool (``place_3d``) or the plan's
        entry/target tool (as a click at that point in the axial view, now showing it)."""
        self.set_cursor(point_lps)
        view = self.slice_views["axial"]
        tool = view.tool
        place = getattr(tool, "place_3d", None)
        if place is not None:
            place(point_lps)
        elif tool is not None and getattr(tool, "name", "") in POINT_TOOLS_3D:
            tool.press(view, point_lps, None)
            tool.release(view, point_lps, None)

    def set_window_level(self, center: float, width: float) -> None:
        """Show the window ``(center, width)`` (bounded to the data) in every slice view."""
        for view in self.slice_views.values():
            if view.window != (center, width):
                view.set_window(center, width)
        self.wl_bar.show_window(*self.slice_views["axial"].window)
        self.view3d.refresh_planes()

    def apply_preset(self, number: int) -> None:
        """Apply preset ``number`` of the volume's modality (0: the default window)."""
        self.slice_views["axial"].apply_preset(number)

    def set_overlay_style(self, opacity: float, outline: bool) -> None:
        for view in self.slice_views.values():
            view.set_overlay_style(opacity=opacity, outline=outline)
        self.view3d.refresh_planes()

    def set_layout(self, name: str) -> None:
        self.view_grid.set_layout(name)
        if name in self.layout_actions:
            self.layout_actions[name].setChecked(True)

    def set_slice_tool(self, tool) -> None:  # SliceTool | None (see slice_tools.py)
        """Give left-button interaction in every slice view to ``tool`` (None: window/level)."""
        for view in self.slice_views.values():
            view.set_tool(tool)

    def reset_views(self) -> None:
        for view in self.slice_views.values():
            view.reset_view()

    def active_view(self) -> QWidget:
        focus = self.focusWidget()
        for view in [*self.slice_views.values(), self.view3d]:
            if focus is not None and (focus is view or view.isAncestorOf(focus)):
                return view
        visible = self.view_grid.visible_views()
        return self.view_grid.views[visible[0]]

    # ------------------------------------------------------------------ screenshots
    def grab_view(self, view: QWidget) -> QImage:
        if view is self.view3d:
            return self.view3d.grab_image()
        return view.grab().toImage()

    def grab_window(self) -> QImage:
        """The whole window as an image (the 3D view's OpenGL content included)."""
        self.view3d.plotter.render()
        return self.grab().toImage()

    def save_screenshot(self, path: str | Path, *, whole_window: bool = True) -> Path:
        path = Path(path)
        image = self.grab_window() if whole_window else self.grab_view(self.active_view())
        path.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(path), "PNG"):
            from surgiplan.errors import BadInputError

            raise BadInputError("cannot write the screenshot", path=path,
                                action="choose a writable folder and a .png name")
        return path

    def choose_screenshot(self, *, whole_window: bool) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "surgiplan.png",
                                              "PNG images (*.png)")
        if path:
            try:
                self.save_screenshot(path, whole_window=whole_window)
            except Exception as exc:
                self.report_error(exc)
