"""Marks drawn on a main window's slice and 3D views: planned placements (two-point lines with
entry and target), simulator meshes (implants, ablation zones) and numbered feedback markers,
all in LPS mm. Used by the report (to render a plan) and by training mode (to show feedback on
the anatomy). ``clear()`` removes everything this object added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen

from surgiplan.simulation.result import DisplayMesh, Level
from surgiplan.ui.plan.trajectory_tools import PathDecoration, TrajectoryPlan

if TYPE_CHECKING:
    from surgiplan.ui.shell.main_window import MainWindow

SEVERITY_RGB = {"good": (40, 180, 80), "warning": (240, 170, 0), "problem": (230, 40, 40),
                "info": (90, 160, 255), "reference": (0, 200, 255)}
ON_SLICE_MM = 3.0  # a marker within this distance of the slice is drawn filled


@dataclass(frozen=True)
class Marker:
    """A numbered point to show (LPS mm) with its severity colour and a short label."""

    point_lps: tuple[float, float, float]
    label: str
    severity: str = "info"

    @property
    def color(self) -> QColor:
        return QColor(*SEVERITY_RGB.get(self.severity, SEVERITY_RGB["info"]))


class PlanMarks:
    """What a report or an exercise draws on ``window``'s views."""

    def __init__(self, window: MainWindow, prefix: str = "marks") -> None:
        self.window = window
        self.prefix = prefix
        self.paths: list[tuple[TrajectoryPlan, PathDecoration]] = []
        self.markers: list[Marker] = []
        self._actors: list[str] = []
        self._decorating = False
        self.outline = None
        self._outline_meshes: list[DisplayMesh] = []

    # ------------------------------------------------------------------ adding
    def add_path(self, entry_lps, target_lps, *, diameter_mm: float = 1.0,
                 level: Level | None = None, color_rgb: tuple[float, float, float] | None = None,
                 name: str = "") -> None:
        """A two-point placement: a line with E/T markers in slices, a tube in 3D."""
        plan = TrajectoryPlan()
        plan.set_points(entry_lps, target_lps)
        plan.diameter_mm = diameter_mm
        plan.level = level
        decoration = PathDecoration(plan)
        self.paths.append((plan, decoration))
        for view in self.window.slice_views.values():
            view.add_decoration(decoration)
        import pyvista as pv

        key = f"{self.prefix}:path{len(self.paths)}{name}"
        tube = pv.Line(entry_lps, target_lps).tube(radius=max(diameter_mm / 2.0, 0.6),
                                                   n_sides=12)
        rgb = color_rgb or _level_rgb(level)
        self._add_actor(key, tube, color=rgb)
        self._add_actor(key + ":entry", pv.Sphere(radius=2.0, center=entry_lps),
                        color=(1.0, 1.0, 1.0))
        self._add_actor(key + ":target", pv.Sphere(radius=2.0, center=target_lps), color=rgb)

    def add_mesh(self, mesh: DisplayMesh) -> None:
        """A simulator display mesh (LPS mm) in the 3D view."""
        import pyvista as pv

        faces = np.hstack([np.full((len(mesh.faces), 1), 3), np.asarray(mesh.faces)]).ravel()
        poly = pv.PolyData(np.asarray(mesh.vertices_lps, float), faces)
        self._add_actor(f"{self.prefix}:mesh{len(self._actors)}", poly,
                        color=mesh.color or (1.0, 0.55, 0.1), opacity=max(mesh.opacity, 0.35))
        if self.outline is None:  # and its outline on the 2D slices (ablation zone, cut)
            from surgiplan.ui.rehearse.rehearsal_tools import MeshOutlineDecoration

            self.outline = MeshOutlineDecoration()
            for view in self.window.slice_views.values():
                view.add_decoration(self.outline)
        self._outline_meshes.append(mesh)
        self.outline.set_meshes(self._outline_meshes)

    def set_markers(self, markers: list[Marker]) -> None:
        """Numbered markers (1, 2, ...) in slices and 3D; replaces earlier markers."""
        import pyvista as pv

        self._remove_actors(f"{self.prefix}:marker")
        self.markers = list(markers)
        for n, m in enumerate(self.markers, start=1):
            c = m.color
            self._add_actor(f"{self.prefix}:marker{n}", pv.Sphere(radius=2.2, center=m.point_lps),
                            color=(c.redF(), c.greenF(), c.blueF()))
        if not self._decorating:
            self._decorating = True
            for view in self.window.slice_views.values():
                view.add_decoration(self._paint_markers)
        self._refresh()

    # ------------------------------------------------------------------ removing
    def clear(self) -> None:
        for _plan, decoration in self.paths:
            for view in self.window.slice_views.values():
                view.remove_decoration(decoration)
        self.paths = []
        self.markers = []
        if self.outline is not None:
            for view in self.window.slice_views.values():
                view.remove_decoration(self.outline)
            self.outline, self._outline_meshes = None, []
        if self._decorating:
            for view in self.window.slice_views.values():
                view.remove_decoration(self._paint_markers)
            self._decorating = False
        self._remove_actors(self.prefix)
        self._refresh()

    # ------------------------------------------------------------------ drawing
    def _plotter(self):
        return self.window.view3d.plotter

    def _add_actor(self, name: str, mesh, **kwargs) -> None:
        plotter = self._plotter()
        plotter.add_mesh(mesh, name=name, reset_camera=False, render=False, **kwargs)
        if name not in self._actors:
            self._actors.append(name)

    def _remove_actors(self, prefix: str) -> None:
        plotter = self._plotter()
        for name in [n for n in self._actors if n.startswith(prefix)]:
            plotter.remove_actor(name, render=False)
            self._actors.remove(name)

    def _refresh(self) -> None:
        for view in self.window.slice_views.values():
            view.update()
        self._plotter().interactor.update()

    def _paint_markers(self, view, p: QPainter) -> None:
        if view.mapping is None:
            return
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        font = QFont(view.font())
        font.setBold(True)
        p.setFont(font)
        for n, m in enumerate(self.markers, start=1):
            at = view.lps_to_screen(np.asarray(m.point_lps, float))
            off_mm = _off_slice_mm(view, np.asarray(m.point_lps, float))
            near = off_mm <= ON_SLICE_MM
            p.setPen(QPen(QColor(0, 0, 0), 1.0))
            p.setBrush(m.color if near else Qt.BrushStyle.NoBrush)
            if not near:
                p.setPen(QPen(m.color, 2.0, Qt.PenStyle.DashLine))
            radius = 9.0 if near else 7.0
            p.drawEllipse(at, radius, radius)
            p.setPen(QColor(0, 0, 0) if near else m.color)
            text = str(n)
            p.drawText(at + QPointF(-4.0 * len(text), 5.0), text)
        p.restore()


def _off_slice_mm(view, point_lps: np.ndarray) -> float:
    """Distance (mm) of a point from a slice view's current slice."""
    _, _, k = view.mapping.lps_to_pixel(point_lps)
    return abs(k - view.slice_index) * view.mapping.slice_spacing_mm


def _level_rgb(level: Level | None) -> tuple[float, float, float]:
    from surgiplan.ui.plan.trajectory_tools import LEVEL_RGB

    return tuple(v / 255.0 for v in LEVEL_RGB[None if level is None else Level(level)])
