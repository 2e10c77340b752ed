"""The 3D view: structure surfaces, optional volume rendering and slice planes, in LPS mm.

Uses pyvistaqt's ``QtInteractor``. VTK world coordinates are LPS millimetres, so the
orientation marker is labelled L, P, S on its +x, +y, +z axes. Volume rendering picks VTK's CPU
ray caster (``fixed_point``) when the OpenGL renderer is software (Mesa llvmpipe), where the
GPU ray caster is an order of magnitude slower.

The view is a native child window: pyvistaqt's interactor is a ``QOpenGLWidget``, and a window
holding one is composed through OpenGL at every repaint of any of its widgets. With the 3D view
in its own native window only that window is composed; the main window (slice views, panels)
stays a raster window, so a slice repaint no longer redraws the whole window in OpenGL (under
Xvfb, Mesa llvmpipe: ~16 -> ~4 ms CPU per repaint of the three slice views).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
    QWidgetAction,
)

from surgiplan.model.structures import Role, Structure
from surgiplan.model.surface import SurfaceMesh
from surgiplan.model.volume import ImageVolume
from surgiplan.ui.views.display_meshes import Scene3D, mesh_to_polydata
from surgiplan.ui.views.slice_planes import Plane, PlaneMapping, plane_mapping

if TYPE_CHECKING:
    import pyvista as pv

# Camera direction (from focal point towards the camera) and view-up, in LPS.
STANDARD_VIEWS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "anterior": ((0, -1, 0), (0, 0, 1)),
    "posterior": ((0, 1, 0), (0, 0, 1)),
    "left": ((1, 0, 0), (0, 0, 1)),
    "right": ((-1, 0, 0), (0, 0, 1)),
    "superior": ((0, 0, 1), (0, -1, 0)),
    "inferior": ((0, 0, -1), (0, -1, 0)),
}

# name -> (opacity points as (fraction of [lo, hi], opacity), colour map); lo/hi per preset.
VOLUME_PRESETS = ("CT bone", "CT soft tissue", "MR")

# One light colour per preset (a flat colour reads better than a dark-to-light map).
_VOLUME_COLORS = {"CT bone": ["#f2e8d5", "#fffaf0"], "CT soft tissue": ["#c8745a", "#f5c8b4"],
                  "MR": ["#b0b0b0", "#ffffff"]}

_SOFTWARE_GL = ("llvmpipe", "softpipe", "swiftshader", "software rasterizer", "swr")

_PLANE_RGB = {Plane.AXIAL: (0.9, 0.3, 0.3), Plane.CORONAL: (0.3, 0.8, 0.3),
              Plane.SAGITTAL: (0.9, 0.8, 0.25)}


def _forget_gl_wrappers(interactor) -> None:
    """Drop pyvistaqt's Python wrappers of the widget's GL context and of Qt's internal
    offscreen surface. Qt deletes those C++ objects with the widget; a wrapper kept past that
    stays registered at a freed address, and a later Qt object allocated there came back to
    Python as a "QOffscreenSurface" (random AttributeErrors and crashes in later windows)."""
    forget = getattr(interactor, "_forget_context", None)  # pyvistaqt >= 0.12
    if forget is not None:
        forget()


def is_software_renderer(capabilities: str) -> bool:
    """True when an OpenGL renderer string names a software renderer."""
    text = capabilities.lower()
    return any(name in text for name in _SOFTWARE_GL)


# Opacity of skin structures in 3D while "see-through skin" is on (the default).
SKIN_OPACITY_3D = 0.3
# See-through anatomy: the context structures are capped so targets and critical structures
# inside them stay visible (those two roles keep their own opacity).
SEE_THROUGH_OPACITY = {Role.SKIN: SKIN_OPACITY_3D, Role.BONE: 0.4, Role.ORGAN: 0.25,
                       Role.OTHER: 0.25}

# The displayed slice of a plane: RGB uint8 (rows, cols, 3) as on screen, its mapping and index.
SliceSource = Callable[[Plane], "tuple[np.ndarray, PlaneMapping, int] | None"]


# A left press and release closer than this (px) is a click (picks), farther a rotation.
CLICK_SLOP_PX = 3.0

# Cap of the context roles' opacity while a volume is rendered (the volume must show through).
VOLUME_CONTEXT_OPACITY = 0.08


def surface_opacity(structure: Structure, *, see_through_skin: bool,
                    volume_shown: bool = False) -> float:
    """Opacity of a structure's 3D surface: its own, capped (when see-through is on) for the
    context roles (SEE_THROUGH_OPACITY), so targets and critical structures inside show; with
    a volume rendered, context surfaces drop to VOLUME_CONTEXT_OPACITY so it is not hidden."""
    opacity = float(structure.opacity)
    if volume_shown and structure.role in SEE_THROUGH_OPACITY:
        return min(opacity, VOLUME_CONTEXT_OPACITY)
    if see_through_skin and structure.role in SEE_THROUGH_OPACITY:
        return min(opacity, SEE_THROUGH_OPACITY[structure.role])
    return opacity


def textured_plane(mapping: PlaneMapping, index: int, rgb: np.ndarray) -> tuple:
    """A quad in LPS mm covering slice ``index`` of ``mapping`` and its texture ``rgb``.

    ``rgb`` rows run top to bottom of the screen; ``pv.Texture`` puts row 0 at texture
    coordinate t = 1, so the screen's top-left pixel corner gets texture coordinate (0, 1).
    """
    import pyvista as pv

    rows, cols = mapping.shape_rows_cols
    corners = [(-0.5, -0.5), (cols - 0.5, -0.5), (cols - 0.5, rows - 0.5), (-0.5, rows - 0.5)]
    points = np.array([mapping.pixel_to_lps(c, r, index) for c, r in corners])
    quad = pv.PolyData(points, faces=np.array([4, 0, 1, 2, 3]))
    quad.active_texture_coordinates = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)
    texture = pv.Texture(np.ascontiguousarray(rgb))
    return quad, texture


def volume_preset_range(volume: ImageVolume, preset: str) -> tuple[float, float]:
    """Value range (lo, hi) over which a preset's opacity ramps from 0 to its maximum."""
    if preset == "CT bone":
        return 200.0, 1500.0
    if preset == "CT soft tissue":
        return -150.0, 300.0
    sample = volume.array.reshape(-1)[:: max(1, volume.array.size // 200_000)]
    lo, hi = np.percentile(sample, [60.0, 99.5])
    return float(lo), float(max(hi, lo + 1.0))


WINDOWLESS_PLATFORMS = ("offscreen", "minimal", "minimalegl")


class View3D(QWidget):
    """3D scene of the twin with a small toolbar (standard views, volume, slice planes)."""

    maximize_requested = Signal()
    point_picked = Signal(object)  # LPS mm (ndarray (3,)) of a left click on a surface or plane
    # Set where Qt has no OpenGL widget (no display): makes the plotter instead of pyvistaqt's
    # QtInteractor (surgiplan.ui.report.offscreen.offscreen_plotter, VTK's EGL/OSMesa window).
    plotter_factory: Callable[[], object] | None = None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("view_3d")
        # its own native window: only it is composed in OpenGL (see the module docstring);
        # not on the windowless platforms (offscreen reports: nothing is composed on a screen,
        # and they print "This plugin does not support raise()" for a native child)
        if QGuiApplication.platformName() not in WINDOWLESS_PLATFORMS:
            self.setAttribute(Qt.WidgetAttribute.WA_DontCreateNativeAncestors)
            self.setAttribute(Qt.WidgetAttribute.WA_NativeWindow)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._toolbar())
        self._placeholder = QLabel("3D view starting…")
        self._placeholder.setStyleSheet("background: black; color: grey;")
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self._placeholder, 1)
        self._plotter = None
        self._surface_actors: dict[str, object] = {}
        self._plane_actors: list[object] = []
        self._volume_actor = None
        self._scan_actor = None
        self._image: ImageVolume | None = None  # subsampled display copy for ray casting
        self._geometry = None
        self._cursor_lps: np.ndarray | None = None
        self._software_gl: bool | None = None
        self._closed = False
        self._structures: dict[str, Structure] = {}
        self.slice_source: SliceSource | None = None
        self._press_at: tuple[float, float] | None = None

    @property
    def plotter(self):
        """The pyvistaqt ``QtInteractor``, created (and pyvista imported) on first use."""
        if self._plotter is None and View3D.plotter_factory is not None:
            self._plotter = View3D.plotter_factory()
        if self._plotter is None:
            from pyvistaqt import QtInteractor

            # No multi-sampling: 8x MSAA (pyvista's default) makes every frame ~5x slower on a
            # software OpenGL (llvmpipe: ~95 ms instead of ~17 ms for a CT bone surface).
            plotter = QtInteractor(self, auto_update=False, multi_samples=0)
            # Before its own GL context exists, pyvistaqt answers VTK's make-current requests
            # with a throwaway offscreen context. Its Qt wrappers could outlive their C++
            # objects when views are torn down (seen as random crashes, and as a
            # QOffscreenSurface wrapper returned for another widget's header, across many
            # windows in one process). Refuse that fallback: VTK then skips GL work until the
            # widget is initialised, and raw GL queries are never made before that (see
            # software_gl, which asks the widget's own context).
            drop_fallback = getattr(plotter.interactor, "_drop_fallback_context", None)
            if drop_fallback is not None:  # pyvistaqt >= 0.12
                drop_fallback()
            plotter.set_background("black")
            plotter.add_axes(xlabel="L", ylabel="P", zlabel="S")
            layout = self.layout()
            layout.replaceWidget(self._placeholder, plotter.interactor)
            self._placeholder.deleteLater()
            plotter.interactor.installEventFilter(self)
            self._plotter = plotter
            interactor = plotter.interactor
            interactor.destroyed.connect(lambda *_: _forget_gl_wrappers(interactor))
            self._warm_up_shaders()
        return self._plotter

    def _warm_up_shaders(self) -> None:
        """Render a tiny lit, normal-shaded mesh once so the first real scene does not pay for
        compiling the shaders on the GUI thread (slow on a software OpenGL)."""
        import pyvista as pv

        sphere = pv.Sphere(radius=1.0, theta_resolution=8, phi_resolution=8)
        mesh = sphere.compute_normals(cell_normals=False, point_normals=True)
        actors = [self._plotter.add_mesh(mesh.copy(), opacity=opacity, name=f"warm-up{opacity}",
                                         reset_camera=False, render=False)
                  for opacity in (1.0, 0.5)]
        self._plotter.render()
        for actor in actors:
            self._plotter.remove_actor(actor, render=False)

    def ensure_plotter(self) -> None:
        """Create the render window now (the main window calls this once it is shown).

        Not after close_renderer: a window closed before its 3D view was ever drawn (a
        scripted run on bad input) must not create a render window while the app exits."""
        if not self._closed:
            _ = self.plotter

    def _toolbar(self) -> QWidget:
        """Standard views and a "Display" menu (see-through, slice planes, volume preset).

        The bar may be narrower than its contents (clipped, never widening the view), so every
        layout can give the 3D view the same share as the slice views."""
        bar_widget = QWidget()
        bar_widget.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        bar = QHBoxLayout(bar_widget)
        bar.setContentsMargins(2, 2, 2, 2)
        bar.setSpacing(1)
        for name in STANDARD_VIEWS:
            button = QToolButton(text=name[0].upper())
            button.setToolTip(f"{name.capitalize()} view")
            button.clicked.connect(lambda _=False, n=name: self.set_standard_view(n))
            bar.addWidget(button)
        reset = QToolButton(text="Reset")
        reset.clicked.connect(lambda: self.set_standard_view("anterior"))
        bar.addWidget(reset)
        bar.addStretch(1)
        self.skin_box = QCheckBox("See-through anatomy")
        self.skin_box.setToolTip("In 3D, skin, bone, organs and other context structures are "
                                 "drawn translucent so targets and critical structures show")
        self.skin_box.setChecked(True)
        self.skin_box.toggled.connect(self._restyle)
        self.planes_box = QCheckBox("Slice planes")
        self.planes_box.toggled.connect(self._update_planes)
        self.volume_combo = QComboBox()
        self.volume_combo.addItems(["No volume", *VOLUME_PRESETS])
        self.volume_combo.setToolTip("Volume rendering preset")
        self.volume_combo.currentTextChanged.connect(self.set_volume_rendering)
        self.display_button = QToolButton(text="Display")
        self.display_button.setObjectName("view3d_display")
        self.display_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.display_button)
        for widget in (self.skin_box, self.planes_box, self.volume_combo):
            action = QWidgetAction(menu)
            action.setDefaultWidget(widget)
            menu.addAction(action)
        self.display_button.setMenu(menu)
        bar.addWidget(self.display_button)
        return bar_widget

    # ------------------------------------------------------------------ state
    def clear(self) -> None:
        self.plotter.clear_actors()
        self._surface_actors.clear()
        self._plane_actors.clear()
        self._volume_actor = None
        self._scan_actor = None
        self.plotter.interactor.update()

    def set_image(self, image: ImageVolume | None) -> None:
        """Show the scene of ``image`` (its grid places the camera and slice planes); clears it.

        Volume rendering waits for :meth:`set_display_volume` (a small copy made in a worker).
        """
        self.clear()
        self._image = None
        self._structures.clear()
        self._geometry = None if image is None else image.geometry
        self._cursor_lps = None if image is None else image.geometry.slice_centre_lps()
        self.volume_combo.blockSignals(True)
        self.volume_combo.setCurrentIndex(0)
        self.volume_combo.blockSignals(False)
        if image is not None:
            self._set_bounds_camera()

    def set_scene(self, scene: Scene3D, structures: list[Structure], *, modality: str) -> None:
        """Install display copies made in a worker: volume, surfaces or the scan iso-surface."""
        if scene.volume is not None:
            self.set_display_volume(scene.volume)
        if scene.surfaces:
            self.set_surfaces(scene.surfaces, structures)
        if scene.scan_surface is not None:
            self.set_scan_surface(scene.scan_surface, modality=modality)

    def set_surfaces(self, meshes: dict[str, SurfaceMesh | pv.PolyData],
                     structures: list[Structure]) -> None:
        """Show one surface per structure (replacing those of the same name).

        Meshes are display PolyData with point normals (made in a worker) or SurfaceMeshes.
        """
        by_name = {s.name: s for s in structures}
        self._structures.update(by_name)
        for name, mesh in meshes.items():
            if name in self._surface_actors:
                self.plotter.remove_actor(self._surface_actors.pop(name), render=False)
            poly = mesh_to_polydata(mesh, normals=True) if isinstance(mesh, SurfaceMesh) else mesh
            if poly.n_cells == 0 or name not in by_name:
                continue
            actor = self.plotter.add_mesh(poly, name=f"surface:{name}", scalars=None,
                                          show_scalar_bar=False, reset_camera=False,
                                          render=False)
            self._surface_actors[name] = actor
            self._style(actor, by_name[name])
        self.plotter.interactor.update()

    def set_scan_surface(self, mesh: SurfaceMesh | pv.PolyData, *, modality: str) -> None:
        """Show the iso-surface of a scan without structures (bone for CT, skin otherwise)."""
        poly = mesh_to_polydata(mesh, normals=True) if isinstance(mesh, SurfaceMesh) else mesh
        if poly.n_cells == 0:
            return
        color = (0.95, 0.92, 0.84) if modality == "CT" else (0.93, 0.78, 0.68)
        self._scan_actor = self.plotter.add_mesh(poly, name="scan-surface", color=color,
                                                 scalars=None, show_scalar_bar=False,
                                                 reset_camera=False, render=False)
        self.plotter.interactor.update()  # one repaint (paintGL renders), not two

    def remove_surface(self, name: str) -> None:
        actor = self._surface_actors.pop(name, None)
        if actor is not None:
            self.plotter.remove_actor(actor, render=True)

    def update_structure(self, structure: Structure) -> None:
        self._structures[structure.name] = structure
        actor = self._surface_actors.get(structure.name)
        if actor is not None:
            self._style(actor, structure)
            self.plotter.interactor.update()

    def surface_names(self) -> list[str]:
        return list(self._surface_actors)

    def surface_opacity_of(self, name: str) -> float:
        """The opacity the 3D surface of structure ``name`` is drawn with."""
        return float(self._surface_actors[name].GetProperty().GetOpacity())

    def _style(self, actor, structure: Structure) -> None:
        prop = actor.GetProperty()
        prop.SetColor(*structure.color)
        prop.SetOpacity(surface_opacity(structure, see_through_skin=self.skin_box.isChecked(),
                                        volume_shown=self._volume_actor is not None))
        actor.SetVisibility(bool(structure.visible))

    def _restyle(self) -> None:
        for name, actor in self._surface_actors.items():
            if name in self._structures:
                self._style(actor, self._structures[name])
        if self._plotter is not None:
            self.plotter.interactor.update()

    # ------------------------------------------------------------------ camera
    def _set_bounds_camera(self) -> None:
        self.set_standard_view("anterior")

    def set_standard_view(self, name: str) -> None:
        """Look at the scene from the patient's ``name`` side (anterior, left, superior...)."""
        if self._geometry is None:
            return
        direction, up = STANDARD_VIEWS[name]
        bounds = self._geometry.bounds_lps()
        centre = bounds.mean(axis=0)
        radius = float(np.linalg.norm(bounds[1] - bounds[0])) / 2.0
        # VTK's own camera calls: pyvista's camera helpers render synchronously on this thread.
        renderer = self.plotter.renderer
        camera = renderer.GetActiveCamera()
        camera.SetFocalPoint(*centre)
        camera.SetPosition(*(centre + np.asarray(direction, float) * radius * 4.0))
        camera.SetViewUp(*up)
        renderer.ResetCamera(*np.ravel(bounds.T))
        self.plotter.interactor.update()

    # ------------------------------------------------------------------ volume rendering
    def software_gl(self) -> bool:
        """True when OpenGL is a software renderer (Mesa llvmpipe...), read from the 3D
        widget's own GL context once it exists. Before that, assume software: the CPU ray
        caster is correct everywhere, only slower on a GPU."""
        if self._software_gl is None:
            name = self._gl_renderer_name()
            if name is None:
                return True
            self._software_gl = is_software_renderer(name)
        return self._software_gl

    def _gl_renderer_name(self) -> str | None:
        """GL_RENDERER of the widget's initialised context (None before initialisation)."""
        widget = self._plotter.interactor if self._plotter is not None else None
        context = widget.context() if widget is not None else None
        if context is None or not context.isValid():
            return None
        widget.makeCurrent()
        try:
            return str(context.functions().glGetString(0x1F01))  # GL_RENDERER
        finally:
            widget.doneCurrent()

    def set_display_volume(self, volume: ImageVolume | None) -> None:
        """Install the (subsampled) volume that the volume-rendering presets ray-cast."""
        self._image = volume
        if self.volume_combo.currentIndex() > 0:
            self.set_volume_rendering(self.volume_combo.currentText())

    def set_volume_rendering(self, preset: str) -> None:
        """Show the image as a ray-cast volume with ``preset``, or remove it ("No volume")."""
        if self._volume_actor is not None:
            self.plotter.remove_actor(self._volume_actor, render=False)
            self._volume_actor = None
        if self._image is None or preset not in VOLUME_PRESETS:
            self._restyle()
            self._set_scan_surface_opacity(1.0)
            self.plotter.interactor.update()
            return
        geo = self._image.geometry
        import pyvista as pv

        grid = pv.ImageData(dimensions=geo.size, spacing=geo.spacing_mm, origin=(0, 0, 0))
        grid.point_data["values"] = np.ascontiguousarray(self._image.array).reshape(-1)
        lo, hi = volume_preset_range(self._image, preset)
        cmap = _VOLUME_COLORS[preset]
        self._volume_actor = self.plotter.add_volume(
            grid, scalars="values", clim=(lo, hi), cmap=cmap, opacity="linear",
            mapper="fixed_point" if self.software_gl() else "gpu", show_scalar_bar=False,
            reset_camera=False, name="volume", render=False,
        )
        matrix = np.eye(4)
        matrix[:3, :3] = geo.direction
        matrix[:3, 3] = geo.origin_lps
        self._volume_actor.user_matrix = matrix
        # samples at half the finest spacing: coarser steps draw stripes across the volume
        mapper = self._volume_actor.GetMapper()
        if hasattr(mapper, "SetAutoAdjustSampleDistances"):
            mapper.SetAutoAdjustSampleDistances(False)
            mapper.SetSampleDistance(float(min(geo.spacing_mm)) / 2.0)
        self._restyle()
        self._set_scan_surface_opacity(VOLUME_CONTEXT_OPACITY)
        self.plotter.interactor.update()

    def _set_scan_surface_opacity(self, opacity: float) -> None:
        if self._scan_actor is not None:
            self._scan_actor.GetProperty().SetOpacity(opacity)

    # ------------------------------------------------------------------ slice planes
    def set_cursor(self, point_lps: np.ndarray) -> None:
        self._cursor_lps = np.asarray(point_lps, float)
        if self.planes_box.isChecked():
            self._update_planes()

    def refresh_planes(self) -> None:
        """Redraw the slice planes (their images changed: slice, window, overlays)."""
        if self.planes_box.isChecked():
            self._update_planes()

    def _update_planes(self) -> None:
        """Show each slice plane as its displayed image (textured quad) with a coloured frame."""
        for actor in self._plane_actors:
            self.plotter.remove_actor(actor, render=False)
        self._plane_actors.clear()
        if self.planes_box.isChecked() and self._geometry is not None:
            for plane in Plane:
                self._add_plane(plane)
        self.plotter.interactor.update()

    def _add_plane(self, plane: Plane) -> None:
        source = self.slice_source(plane) if self.slice_source is not None else None
        if source is not None:
            rgb, mapping, index = source
            quad, texture = textured_plane(mapping, index, rgb)
            actor = self.plotter.add_mesh(quad, texture=texture, lighting=False,
                                          name=f"plane-image:{plane.value}",
                                          reset_camera=False, render=False)
            self._plane_actors.append(actor)
        outline = self._plane_outline(plane)
        actor = self.plotter.add_mesh(outline, color=_PLANE_RGB[plane], line_width=2,
                                      name=f"plane:{plane.value}", reset_camera=False,
                                      render=False)
        self._plane_actors.append(actor)

    def _plane_outline(self, plane: Plane) -> pv.PolyData:
        mapping = plane_mapping(self._geometry, plane)
        k = mapping.slice_index_of(self._cursor_lps)
        rows, cols = mapping.shape_rows_cols
        corners = [(-0.5, -0.5), (cols - 0.5, -0.5), (cols - 0.5, rows - 0.5), (-0.5, rows - 0.5)]
        points = np.array([mapping.pixel_to_lps(c, r, k) for c, r in corners])
        import pyvista as pv

        return pv.PolyData(points, lines=np.array([5, 0, 1, 2, 3, 0]))

    # ------------------------------------------------------------------ output
    def grab_image(self) -> QImage:
        """The rendered 3D scene as a QImage."""
        self.plotter.render()
        return self.plotter.interactor.grabFramebuffer()

    def pick_at(self, x: float, y: float) -> np.ndarray | None:
        """The LPS point (mm) of the surface, scan surface or slice-plane image under widget
        pixel ``(x, y)`` (Qt: origin top-left, device-independent pixels), or None.

        A ``vtkCellPicker`` ray-casts the shown actors' cells on the CPU (no render needed);
        the nearest hit along the view ray wins."""
        if self._plotter is None:
            return None
        from vtkmodules.vtkRenderingCore import vtkCellPicker

        props = [a for a in (*self._surface_actors.values(), self._scan_actor,
                             *self._plane_actors) if a is not None and a.GetVisibility()]
        if not props:
            return None
        picker = vtkCellPicker()
        picker.SetTolerance(0.0005)
        picker.PickFromListOn()
        for actor in props:
            picker.AddPickList(actor)
        widget = self._plotter.interactor
        ratio = widget.devicePixelRatioF()
        height = self._plotter.render_window.GetSize()[1]
        if not picker.Pick(x * ratio, height - 1 - y * ratio, 0.0, self._plotter.renderer):
            return None
        return np.asarray(picker.GetPickPosition(), float)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Double-click on the render area asks to maximise the view (or restore it); a left
        click without a drag (which rotates) picks the point under the mouse
        (:attr:`point_picked`)."""
        kind = event.type()
        if kind == QEvent.Type.MouseButtonDblClick:
            self.maximize_requested.emit()
            return True
        left = getattr(event, "button", lambda: None)() == Qt.MouseButton.LeftButton
        if kind == QEvent.Type.MouseButtonPress and left:
            self._press_at = (event.position().x(), event.position().y())
        elif kind == QEvent.Type.MouseButtonRelease and left and self._press_at is not None:
            x, y = event.position().x(), event.position().y()
            moved = abs(x - self._press_at[0]) + abs(y - self._press_at[1])
            self._press_at = None
            if moved <= CLICK_SLOP_PX:
                point = self.pick_at(x, y)
                if point is not None:
                    self.point_picked.emit(point)
        return super().eventFilter(watched, event)

    def close_renderer(self) -> None:
        """Release VTK resources (call before the widget is destroyed)."""
        if self._plotter is not None:
            self._plotter.close()
            _forget_gl_wrappers(self._plotter.interactor)
        self._closed = True

