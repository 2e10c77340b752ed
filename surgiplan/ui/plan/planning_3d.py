"""Trajectory planning in the 3D view: the path, entry/target spheres, the skin heat-map of the
safest-path search and the candidate paths (pinned ones kept), as actors on View3D's plotter.

All actors are named ``planning:*`` so they replace themselves when redrawn and never touch the
view's structure surfaces. The heat-map is the skin surface coloured per vertex (NaN, drawn
grey, where an entry was rejected or not a candidate), lifted 0.3 mm along the normals so it
does not fight with the see-through skin surface for depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from surgiplan.model.surface import SurfaceMesh
from surgiplan.simulation.path_search import PathCandidate
from surgiplan.simulation.result import DisplayScalars, Level
from surgiplan.ui.plan.trajectory_tools import LEVEL_RGB
from surgiplan.ui.views.display_meshes import vertex_normals
from surgiplan.ui.views.probe_view import path_frame

if TYPE_CHECKING:
    from surgiplan.ui.views.view3d import View3D

HEATMAP_LIFT_MM = 0.3
MIN_TUBE_RADIUS_MM = 0.75  # thinner tools are drawn this thick so they stay visible
CANDIDATE_RGB = (0.75, 0.75, 0.95)
PARETO_RGB = (0.70, 0.45, 1.00)
PINNED_RGB = (0.20, 0.90, 0.95)
# (colour map, title) per heat-map label: low risk green; large clearance green.
HEATMAP_STYLE = {"risk": ("RdYlGn_r", "path risk"), "clearance": ("RdYlGn", "clearance mm")}


def _rgb(level: Level | None) -> tuple[float, float, float]:
    return tuple(c / 255.0 for c in LEVEL_RGB[level])


def _translation(point_lps) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, 3] = np.asarray(point_lps, float)
    return matrix


def _segment_matrix(a_lps, b_lps) -> np.ndarray:
    """4x4 taking the unit segment (0, 0, 0)-(0, 0, 1) to ``a``-``b`` (LPS mm): rotation of z
    onto the direction, scaled along it by the length."""
    a, b = np.asarray(a_lps, float), np.asarray(b_lps, float)
    d = b - a
    length = float(np.linalg.norm(d))
    z = d / length
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    matrix = np.eye(4)
    matrix[:3, :3] = np.column_stack([x, y, z * length])
    matrix[:3, 3] = a
    return matrix


def heatmap_values(mesh: SurfaceMesh, scalars: DisplayScalars) -> np.ndarray:
    """Per-vertex values of the whole ``mesh``: ``scalars.values`` at ``scalars.vertex_ids``,
    NaN elsewhere (vertices that were not candidates)."""
    values = np.full(len(mesh.vertices_lps), np.nan)
    if scalars.vertex_ids is not None:
        values[np.asarray(scalars.vertex_ids, np.intp)] = scalars.values
    return values


class Planning3D:
    """Draws the planning state into a :class:`~surgiplan.ui.views.view3d.View3D`."""

    def __init__(self, view3d: View3D) -> None:
        self.view3d = view3d
        self.heatmap_visible = True
        self._heatmap_actor = None
        self._heatmap_title = ""
        self._names: set[str] = set()
        self._path_actors: dict[str, object] = {}  # the path's actors, moved by user matrix
        self._tube_radius: float | None = None

    @property
    def plotter(self):
        return self.view3d.plotter

    def _add(self, name: str, mesh, **kwargs) -> object:
        actor = self.plotter.add_mesh(mesh, name=name, reset_camera=False, render=False,
                                      **kwargs)
        self._names.add(name)
        return actor

    def _remove(self, prefix: str) -> None:
        for name in [n for n in self._names if n.startswith(prefix)]:
            self.plotter.remove_actor(name, render=False)
            self._names.discard(name)
            self._path_actors.pop(name, None)

    def _update(self) -> None:
        self.plotter.interactor.update()

    def actor_names(self) -> list[str]:
        return sorted(self._names)

    # ------------------------------------------------------------------ the planned path
    def show_path(self, entry_lps, target_lps, diameter_mm: float,
                  level: Level | None) -> None:
        """The planned tool as a tube with entry and target spheres, in its level colour. The
        meshes are made once (a unit-length tube per radius); a move only sets the actors'
        user matrices (no re-meshing)."""
        if entry_lps is None and target_lps is None:
            self._remove("planning:path")
            self._update()
            return
        color = _rgb(level)
        for label, point in (("entry", entry_lps), ("target", target_lps)):
            actor = self._path_actor(label, point is not None)
            if actor is not None:
                actor.user_matrix = _translation(point)
                actor.prop.color = color if label == "target" else (1.0, 1.0, 1.0)
        radius = max(diameter_mm / 2.0, MIN_TUBE_RADIUS_MM)
        drawn = entry_lps is not None and target_lps is not None and \
            np.linalg.norm(np.subtract(target_lps, entry_lps)) > 1e-3
        tube = self._path_actor("tool", drawn, radius=radius)
        if tube is not None:
            tube.user_matrix = _segment_matrix(entry_lps, target_lps)
            tube.prop.color = color
        self._update()

    def _path_actor(self, label: str, shown: bool, *, radius: float | None = None):
        """The path actor ``label`` (made on first use, or again for another tube radius);
        removed and None when not ``shown``."""
        import pyvista as pv

        name = f"planning:path:{label}"
        actor = self._path_actors.get(name) if name in self._names else None
        if actor is not None and not self.plotter.renderer.HasViewProp(actor):
            actor = None  # the view was cleared under us
        if not shown:
            if actor is not None:
                self._remove(name)
            return None
        if actor is not None and (radius is None or self._tube_radius == radius):
            return actor
        if radius is None:
            mesh = pv.Sphere(radius=2.5)
        else:  # unit length along +z from the origin, placed by the user matrix
            mesh = pv.Cylinder(center=(0.0, 0.0, 0.5), direction=(0.0, 0.0, 1.0),
                               radius=radius, height=1.0, resolution=12)
        actor = self._add(name, mesh)
        self._path_actors[name] = actor
        if radius is not None:
            self._tube_radius = radius
        return actor

    def look_along_path(self, entry_lps, target_lps, *, distance_mm: float = 250.0) -> None:
        """Put the 3D camera on the path's line behind the entry, looking at the target."""
        d, _, v = path_frame(entry_lps, target_lps)
        camera = self.plotter.renderer.GetActiveCamera()
        camera.SetFocalPoint(*np.asarray(target_lps, float))
        camera.SetPosition(*(np.asarray(entry_lps, float) - d * distance_mm))
        camera.SetViewUp(*(-v))
        self.plotter.renderer.ResetCameraClippingRange()
        self._update()

    # ------------------------------------------------------------------ heat-map
    def show_heatmap(self, mesh: SurfaceMesh, scalars: DisplayScalars) -> None:
        """Colour the skin ``mesh`` by a search heat-map (see :func:`heatmap_values`)."""
        import pyvista as pv

        self.clear_heatmap()
        values = heatmap_values(mesh, scalars)
        lifted = mesh.vertices_lps + HEATMAP_LIFT_MM * vertex_normals(mesh.vertices_lps,
                                                                      mesh.faces)
        faces = np.hstack([np.full((mesh.n_triangles, 1), 3, np.int64), mesh.faces]).ravel()
        poly = pv.PolyData(lifted.astype(np.float32), faces)
        poly.point_data["heat"] = values
        cmap, title = HEATMAP_STYLE.get(scalars.label, ("viridis", scalars.label))
        finite = values[np.isfinite(values)]
        clim = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if clim[1] <= clim[0]:
            clim = (clim[0], clim[0] + 1e-6)
        self._heatmap_title = title
        self._heatmap_actor = self._add(
            "planning:heatmap", poly, scalars="heat", cmap=cmap, clim=clim,
            nan_color=(0.45, 0.45, 0.45), show_scalar_bar=True,
            scalar_bar_args={"title": self._heatmap_title, "n_labels": 3, "vertical": True,
                             "position_x": 0.86, "position_y": 0.25, "height": 0.5,
                             "width": 0.08, "fmt": "%.2g"})
        self._heatmap_actor.SetVisibility(self.heatmap_visible)
        self._scalar_bar_visible(self.heatmap_visible)
        self._update()

    def clear_heatmap(self) -> None:
        if self._heatmap_actor is not None:
            if self._heatmap_title in set(self.plotter.scalar_bars.keys()):
                self.plotter.remove_scalar_bar(self._heatmap_title, render=False)
            self._remove("planning:heatmap")
            self._heatmap_actor = None
            self._update()

    def has_heatmap(self) -> bool:
        return self._heatmap_actor is not None

    def set_heatmap_visible(self, visible: bool) -> None:
        self.heatmap_visible = bool(visible)
        if self._heatmap_actor is not None:
            self._heatmap_actor.SetVisibility(self.heatmap_visible)
            self._scalar_bar_visible(self.heatmap_visible)
            self._update()

    def _scalar_bar_visible(self, visible: bool) -> None:
        bars = self.plotter.scalar_bars
        if self._heatmap_title in set(bars.keys()):
            bars[self._heatmap_title].SetVisibility(visible)

    # ------------------------------------------------------------------ candidates
    def show_candidates(self, candidates: Sequence[PathCandidate],
                        pinned: Sequence[PathCandidate] = ()) -> None:
        """Thin lines for the ranked candidates (Pareto-front members purple) with their
        rank at the entry, and tubes for the pinned ones."""
        import pyvista as pv

        self._remove("planning:cand")
        for c in candidates:
            color = PARETO_RGB if c.pareto else CANDIDATE_RGB
            self._add(f"planning:cand:{c.rank}", pv.Line(c.entry_lps, c.target_lps),
                      color=color, line_width=2)
        if candidates:
            points = np.array([c.entry_lps for c in candidates])
            actor = self.plotter.add_point_labels(
                points, [str(c.rank) for c in candidates], name="planning:cand:labels",
                font_size=12, point_size=8, point_color="white", text_color="white",
                shape_opacity=0.35, always_visible=True, reset_camera=False, render=False)
            self._names.add("planning:cand:labels")
            del actor
        for n, c in enumerate(pinned):
            tube = pv.Line(c.entry_lps, c.target_lps).tube(radius=MIN_TUBE_RADIUS_MM, n_sides=8)
            self._add(f"planning:cand:pinned:{n}", tube, color=PINNED_RGB)
        self._update()

    def clear(self) -> None:
        """Remove every planning actor (new case)."""
        self.clear_heatmap()
        self._remove("planning:")
        self._update()
