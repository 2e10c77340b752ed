"""Segmentation tools (Qt-free): masks from images, edits of structures, undo by deltas.

Every tool is a plain function on numpy arrays ``(nz, ny, nx)`` + an
:class:`~surgiplan.model.geometry.ImageGeometry` (LPS mm). Sizes are in mm, never voxels.
Tools return a boolean mask on the whole grid, or a :class:`MaskRegion` (a sub-mask placed in
the grid by a box) when the result is local (brushes, region-grow previews). The
:class:`SegmentEditor` applies results to a :class:`~surgiplan.twin.Twin` as undoable
steps that store only the changed bounding box (compressed), never full copies.

Public API (module: signatures)
-------------------------------
region.py
    ``MaskRegion(box, mask)``; ``MaskRegion.from_mask(mask) -> MaskRegion | None``;
    ``region.to_full(shape_zyx) -> ndarray``
threshold.py
    ``THRESHOLD_PRESETS: dict[str, ThresholdPreset]`` ("ct-bone", "ct-vessels", "ct-body",
    "mr-head") with ``ThresholdPreset(name, lower, upper, description)``;
    ``threshold_mask(image, *, lower=None, upper=None, within=None, box=None) -> ndarray``;
    ``body_mask(image, geometry, *, lower=-300.0) -> ndarray`` (largest component, holes filled);
    ``otsu_threshold(image, *, within=None) -> float``;
    ``mr_head_mask(image, geometry) -> ndarray``;
    ``threshold_preset(name, image, geometry, *, within=None, box=None) -> ndarray``
region_grow.py
    ``region_grow(image, geometry, seeds_lps, *, method="connected"|"confidence", lower=None,
    upper=None, multiplier=2.5, neighbourhood_mm=2.0, iterations=3, roi_radius_mm=None,
    within=None, progress=None, cancel=None) -> MaskRegion``;
    ``RegionGrowPreview(image, geometry, *, budget_s=0.4)`` with
    ``.update(seeds_lps, **same options) -> GrowPreviewResult(region, complete, seconds)``
    and ``.commit(seeds_lps, **options) -> MaskRegion`` (full resolution, whole grid)
brush.py
    ``sphere_region(geometry, centre_lps, radius_mm) -> MaskRegion | None``;
    ``disc_region(geometry, centre_lps, radius_mm, *, axis) -> MaskRegion | None``
    (axis = index axis normal to the slice: 0=i, 1=j, 2=k); ``stroke_regions(geometry,
    points_lps, radius_mm, *, axis=None) -> list[MaskRegion]``
islands.py
    ``keep_largest_island(mask) -> ndarray``; ``keep_island_at(mask, geometry, point_lps)``;
    ``remove_small_islands(mask, geometry, *, min_volume_mm3) -> ndarray``
morphology.py
    ``fill_holes(mask, *, per_slice_axis=None) -> ndarray``;
    ``grow_mask(mask, geometry, margin_mm)``; ``shrink_mask(mask, geometry, margin_mm)``
    (isotropic in mm, exact Euclidean distances between voxel centres);
    ``smooth_mask(mask, geometry, *, method="median"|"opening"|"closing", radius_mm)``
logical.py
    ``combine_masks(a, b, op: "union"|"intersect"|"subtract") -> ndarray``
scissors.py
    ``polygon_prism_mask(geometry, polygon_lps, normal_lps, *, depth_mm=None) -> ndarray``;
    ``cut_with_polygon(mask, geometry, polygon_lps, normal_lps, *, remove="inside"|"outside",
    depth_mm=None) -> ndarray``
anatomy_names.py
    ``AnatomyName(name, role, color, margin_mm, region)``; ``anatomy_names(region=None) ->
    list[AnatomyName]``; ``anatomy_regions() -> list[str]`` ("head", "spine", "abdomen");
    ``lookup_anatomy(name) -> AnatomyName | None``
presets.py
    ``PRESETS: dict[str, Preset]`` ("ct-bone-skin-vessels", "mr-head");
    ``preset_masks(image_volume, name, *, progress=None, cancel=None) -> list[PresetStructure]``;
    ``apply_preset(twin, name, *, editor=None, progress=None, cancel=None) -> list[str]``
history.py
    ``LayerDelta.capture(layer_array, layer, box, new_values)``; ``History(max_bytes=...,
    max_steps=...)`` with ``push``, ``undo(twin)``, ``redo(twin)``, ``can_undo``,
    ``can_redo``, ``undo_label``, ``redo_label``, ``nbytes``, ``clear()``
editor.py
    ``SegmentEditor(twin, *, max_undo_bytes=256 MiB, max_undo_steps=200)``:
    ``add_structure(name, mask=None, *, role, color, margin_mm, description) -> Structure``,
    ``add_from_anatomy(name, mask=None)``, ``remove_structure(name)``,
    ``rename_structure(old, new)``, ``set_properties(name, **props)``,
    ``apply_region(name, region, *, erase=False, overwrite_others=True, label="edit")``,
    ``replace_mask(name, mask, *, overwrite_others=True, label="edit")``,
    ``paint(name, centre_lps, radius_mm, *, axis=None, erase=False, overwrite_others=True)``
    (axis None = sphere),
    ``stroke(label)`` (context manager grouping dabs into one undo step),
    ``undo() -> str | None``, ``redo() -> str | None``, ``can_undo``, ``can_redo``,
    ``volume_ml(name)`` (live, from voxel counts kept up to date by the deltas)

Structures edited in one layer overwrite (``overwrite_others=True``) or leave alone
(``False``) the voxels of other structures *in the same layer*; structures in other layers
(overlapping by design) are never touched.
"""

from surgiplan.segmentation.region import MaskRegion

__all__ = ["MaskRegion"]
