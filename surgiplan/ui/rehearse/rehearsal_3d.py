"""Rehearsal actors in the 3D view: implants with a move/rotate handle, ablation zones and
probes, the resection cut plane with a plane handle, the cut surface coloured by margin,
specimen and remnant.

Actors are named ``rehearsal:<kind>:*`` on View3D's plotter so they replace themselves and
never touch the view's structure surfaces or the trajectory planning actors.

* The implant mesh stays in its own frame (mm) and its actor's ``user_matrix`` is the 4x4 pose
  (implant -> LPS); pyvista's affine transform widget (arrows move, rings rotate about the
  screw head) changes that matrix, reported through ``on_move(pose)`` while dragging and
  ``on_release(pose)`` at the end.
* The cut plane handle is pyvista's plane widget (vtkImplicitPlaneWidget): ``on_move(point,
  normal)`` while dragging, ``on_release(point, normal)`` at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from surgiplan.simulation.result import DisplayGeometry, DisplayScalars

if TYPE_CHECKING:
    from surgiplan.ui.views.view3d import View3D

PoseCallback = Callable[[np.ndarray], None]
PlaneCallback = Callable[[np.ndarray, np.ndarray], None]
LINE_MIN_RADIUS_MM = 0.75
POINT_RADIUS_MM = 1.5
MARGIN_CMAP = "RdYlGn"  # red: cut close to (or through) the target; green: wide margin
MARGIN_RANGE_MM = (0.0, 20.0)


def poly_of(vertices: np.ndarray, faces: np.ndarray):
    """A pyvista triangle mesh from (n, 3) vertices and (m, 3) faces."""
    import pyvista as pv

    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    cells = np.hstack([np.full((len(faces), 1), 3, np.int64), faces]).ravel()
    return pv.PolyData(np.asarray(vertices, np.float64), cells)


class Rehearsal3D:
    """Draws one rehearsal's state (``kind``: implant, ablation, resection) into a View3D."""

    def __init__(self, view3d: View3D, kind: str) -> None:
        self.view3d = view3d
        self.prefix = f"rehearsal:{kind}:"
        self._names: set[str] = set()
        self.implant_actor = None
        self.affine_widget = None
        self.plane_widget = None
        self._plane_cb: tuple[PlaneCallback, PlaneCallback] | None = None
        self._dragging_plane = False
        self._plane_bounds: tuple[float, ...] | None = None
        self._scalar_bar: str | None = None

    @property
    def plotter(self):
        return self.view3d.plotter

    def _add(self, name: str, mesh, **kwargs):
        actor = self.plotter.add_mesh(mesh, name=self.prefix + name, reset_camera=False,
                                      render=False, **kwargs)
        self._names.add(self.prefix + name)
        return actor

    def remove(self, part: str = "") -> None:
        """Remove this rehearsal's actors whose name starts with ``part`` (all by default)."""
        for name in [n for n in self._names if n.startswith(self.prefix + part)]:
            self.plotter.remove_actor(name, render=False)
            self._names.discard(name)
        if part in ("", "scalars") and self._scalar_bar is not None:
            if self._scalar_bar in set(self.plotter.scalar_bars.keys()):
                self.plotter.remove_scalar_bar(self._scalar_bar, render=False)
            self._scalar_bar = None
        self.update()

    def update(self) -> None:
        self.plotter.interactor.update()

    def actor_names(self) -> list[str]:
        return sorted(n[len(self.prefix):] for n in self._names)

    # ------------------------------------------------------------------ camera
    def bounds_lps(self) -> np.ndarray | None:
        """The (2, 3) LPS box (mm) around this rehearsal's visible actors (the implant at its
        pose), or None when nothing is drawn."""
        actors = self.plotter.renderer.actors
        boxes = [np.reshape(actors[n].GetBounds(), (3, 2)).T for n in self._names
                 if n in actors and actors[n].GetVisibility()]
        boxes = [b for b in boxes if np.all(np.isfinite(b)) and np.all(b[1] >= b[0])]
        if not boxes:
            return None
        return np.array([np.min([b[0] for b in boxes], axis=0),
                         np.max([b[1] for b in boxes], axis=0)])

    def focus(self, *, pad_mm: float = 25.0) -> bool:
        """Frame the 3D camera on this rehearsal's object (implant, zone, cut) padded by
        ``pad_mm``, keeping the viewing direction. False when there is nothing to frame."""
        bounds = self.bounds_lps()
        if bounds is None:
            return False
        lo, hi = bounds[0] - pad_mm, bounds[1] + pad_mm
        renderer = self.plotter.renderer
        renderer.GetActiveCamera().SetFocalPoint(*((lo + hi) / 2.0))
        renderer.ResetCamera(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
        self.update()
        return True

    # ------------------------------------------------------------------ any result geometry
    def show_geometry(self, geometry: DisplayGeometry, *, part: str = "result",
                      skip_meshes: tuple[str, ...] = ()) -> None:
        """Meshes (their colour and opacity; per-vertex scalars coloured), lines as tubes and
        points as small spheres, replacing the previous ``part``."""
        import pyvista as pv

        self.remove(part)
        scalars = {s.structure: s for s in geometry.scalars}
        for n, mesh in enumerate(geometry.meshes):
            if mesh.label in skip_meshes or len(mesh.faces) == 0:
                continue
            poly = poly_of(mesh.vertices_lps, mesh.faces)
            if mesh.label in scalars:
                self._add_scalars(f"{part}:mesh{n}", poly, scalars[mesh.label])
            else:
                self._add(f"{part}:mesh{n}", poly, color=mesh.color or (0.8, 0.8, 0.8),
                          opacity=mesh.opacity, smooth_shading=True)
        for n, line in enumerate(geometry.lines):
            a, b = (np.asarray(p, float) for p in line.points_lps[:2])
            if np.linalg.norm(b - a) > 1e-3:
                radius = max(float(line.radius_mm or 0.0), LINE_MIN_RADIUS_MM)
                self._add(f"{part}:line{n}", pv.Line(a, b).tube(radius=radius, n_sides=12),
                          color=(0.9, 0.9, 0.95))
        for n, point in enumerate(geometry.points):
            self._add(f"{part}:point{n}", pv.Sphere(radius=POINT_RADIUS_MM,
                                                    center=point.point_lps),
                      color=(1.0, 1.0, 1.0))
        self.update()

    def _add_scalars(self, name: str, poly, scalars: DisplayScalars) -> None:
        values = np.full(poly.n_points, np.nan)
        if scalars.vertex_ids is not None:
            values[np.asarray(scalars.vertex_ids, np.intp)] = scalars.values
        else:
            values[: len(scalars.values)] = scalars.values
        poly.point_data[scalars.label] = values
        title = f"{scalars.label} {scalars.unit}".strip()
        self._add(name, poly, scalars=scalars.label, cmap=MARGIN_CMAP, clim=MARGIN_RANGE_MM,
                  nan_color=(0.5, 0.5, 0.5), show_scalar_bar=True,
                  scalar_bar_args={"title": title, "n_labels": 3, "vertical": True,
                                   "position_x": 0.86, "position_y": 0.25, "height": 0.5,
                                   "width": 0.08, "fmt": "%.0f"})
        self._scalar_bar = title

    # ------------------------------------------------------------------ implant + handle
    def show_implant(self, vertices_mm: np.ndarray, faces: np.ndarray, pose: np.ndarray,
                     color, *, on_move: PoseCallback | None = None,
                     on_release: PoseCallback | None = None, handle: bool = True) -> None:
        """The implant mesh (implant frame) placed by ``pose``; a new mesh gets a new handle."""
        poly = poly_of(vertices_mm, faces)
        same = (self.implant_actor is not None and
                self.implant_actor.mapper.dataset.n_points == poly.n_points and
                np.allclose(self.implant_actor.mapper.dataset.points, poly.points))
        if not same:
            self.remove_implant()
            self.implant_actor = self._add("implant", poly, color=color, smooth_shading=True)
            self.implant_actor.user_matrix = np.asarray(pose, float)
            if handle:
                self._add_affine(pose, on_move, on_release)
        else:
            self.set_pose(pose)
            self.implant_actor.prop.color = color
        self.update()

    def _add_affine(self, pose: np.ndarray, on_move, on_release) -> None:
        from PySide6.QtCore import QTimer

        def moved(_stale_matrix) -> None:
            # pyvista reports the matrix before applying the move: read it after this event
            if on_move is not None:
                QTimer.singleShot(0, lambda: self.implant_actor is not None and
                                  on_move(np.array(self.implant_actor.user_matrix)))

        def released(matrix) -> None:
            if self.affine_widget is not None:
                self.affine_widget.origin = np.asarray(matrix)[:3, 3]
            if on_release is not None:
                on_release(np.array(matrix))

        self.affine_widget = self.plotter.add_affine_transform_widget(
            self.implant_actor, origin=tuple(float(v) for v in np.asarray(pose)[:3, 3]), scale=0.6,
            interact_callback=moved, release_callback=released)

    def set_pose(self, pose: np.ndarray) -> None:
        """Move the implant (and its handle) to ``pose`` without reporting it."""
        if self.implant_actor is None:
            return
        pose = np.asarray(pose, float)
        self.implant_actor.user_matrix = pose
        if self.affine_widget is not None:
            self.affine_widget._cached_matrix = pose.copy()  # the widget's drag start
            self.affine_widget.origin = pose[:3, 3]
        self.update()

    def implant_pose(self) -> np.ndarray | None:
        return None if self.implant_actor is None else np.array(self.implant_actor.user_matrix)

    def remove_implant(self) -> None:
        if self.affine_widget is not None:
            self.affine_widget.remove()
            self.affine_widget = None
        self.implant_actor = None
        self.remove("implant")

    # ------------------------------------------------------------------ cut plane + handle
    def show_plane(self, point_lps, normal_lps, bounds_lps: np.ndarray, *,
                   on_move: PlaneCallback | None = None,
                   on_release: PlaneCallback | None = None) -> None:
        """The cut plane handle over ``bounds_lps`` ((2, 3) LPS box: its plane is drawn clipped
        to the box), or moved to the plane (and placed over a new box)."""
        b = np.asarray(bounds_lps, float)
        vtk_bounds = (b[0, 0], b[1, 0], b[0, 1], b[1, 1], b[0, 2], b[1, 2])
        if self.plane_widget is not None:
            if not self._dragging_plane:
                if self._plane_bounds != vtk_bounds:  # another organ: its box
                    self.plane_widget.PlaceWidget(*vtk_bounds)
                    self._plane_bounds = vtk_bounds
                self.plane_widget.SetOrigin(*np.asarray(point_lps, float))
                self.plane_widget.SetNormal(*np.asarray(normal_lps, float))
                self.update()
            return
        self._plane_cb = (on_move, on_release)
        self._plane_bounds = vtk_bounds

        def moved(normal, origin) -> None:
            self._dragging_plane = True
            if self._plane_cb[0] is not None:
                self._plane_cb[0](np.asarray(origin, float), np.asarray(normal, float))

        self.plane_widget = self.plotter.add_plane_widget(
            moved, normal=tuple(np.asarray(normal_lps, float)), origin=tuple(point_lps),
            bounds=vtk_bounds, factor=1.0,
            color=(0.3, 0.8, 1.0), outline_translation=False, interaction_event="always",
            pass_widget=False, test_callback=False)
        self.plane_widget.AddObserver("EndInteractionEvent", self._plane_released)
        self.update()

    def _plane_released(self, widget, _event) -> None:
        self._dragging_plane = False
        if self._plane_cb is not None and self._plane_cb[1] is not None:
            self._plane_cb[1](np.array(widget.GetOrigin()), np.array(widget.GetNormal()))

    def set_plane_handle_enabled(self, enabled: bool) -> None:
        """Show or hide the plane handle. VTK widgets need an interactor to be switched: the
        handle is (re)attached to the 3D view's interactor first, and left alone once the
        view's renderer is closed (the window is going away)."""
        widget = self.plane_widget
        if widget is None or self.view3d._plotter is None or self.view3d._closed:
            return
        iren = getattr(self.plotter, "iren", None)
        interactor = None if iren is None else iren.interactor
        if widget.GetInteractor() is None:
            if interactor is None:
                return
            widget.SetInteractor(interactor)
        widget.SetEnabled(int(enabled))
        self.update()

    def set_scalar_bar_visible(self, visible: bool) -> None:
        """Show or hide this rehearsal's colour bar (e.g. the margin map's)."""
        if self._scalar_bar is None or self.view3d._plotter is None:
            return
        bars = self.plotter.scalar_bars
        if self._scalar_bar in set(bars.keys()):
            bars[self._scalar_bar].SetVisibility(int(visible))
            self.update()

    def remove_plane(self) -> None:
        if self.plane_widget is not None:
            self.set_plane_handle_enabled(False)
            widgets = self.plotter.plane_widgets
            if self.plane_widget in widgets:
                widgets.remove(self.plane_widget)
            self.plane_widget = None
            self.update()

    def clear(self) -> None:
        """Every actor and handle of this rehearsal (new case)."""
        self.remove_implant()
        self.remove_plane()
        self.remove()
