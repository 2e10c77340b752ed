"""Applying segmentation results to a twin as undoable steps (Qt-free controller for the UI).

Every voxel edit goes through :meth:`SegmentEditor.apply_region`: it computes the new label
values of the region's box in the structure's layer, records a :class:`LayerDelta` (before and
after of that box only, compressed) and writes it with ``Twin.write_layer_region``, which
updates the structure's voxel count and invalidates only its own surface and distance map.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.structures import Role, Structure
from surgiplan.segmentation.brush import disc_region, sphere_region
from surgiplan.segmentation.history import (
    CompoundStep,
    History,
    LayerDelta,
    PropertiesChanged,
    Step,
    StructureAdded,
    StructureRenamed,
    _pack,
)
from surgiplan.segmentation.region import MaskRegion
from surgiplan.twin import Twin

_PROPERTY_NAMES = ("role", "color", "margin_mm", "visible", "opacity", "description")


class SegmentEditor:
    """Undoable structure edits on one twin; ``history`` holds the deltas."""

    def __init__(self, twin: Twin, *, max_undo_bytes: int = 256 * 2**20,
                 max_undo_steps: int = 200) -> None:
        self.twin = twin
        self.history = History(max_bytes=max_undo_bytes, max_steps=max_undo_steps)
        self._group: list[Step] | None = None

    # ------------------------------------------------------------------ history
    def _record(self, step: Step) -> None:
        if self._group is not None:
            self._group.append(step)
        else:
            self.history.push(step)

    @contextmanager
    def stroke(self, label: str = "paint") -> Iterator[None]:
        """Group every edit made inside the ``with`` block into one undo step."""
        if self._group is not None:  # nested: the outer group collects everything
            yield
            return
        self._group = []
        try:
            yield
        finally:
            steps, self._group = self._group, None
            if steps:
                self.history.push(CompoundStep(tuple(steps), label))

    def undo(self) -> str | None:
        """Undo the last step; returns its label, None when there was nothing to undo."""
        return self.history.undo(self.twin)

    def redo(self) -> str | None:
        return self.history.redo(self.twin)

    @property
    def can_undo(self) -> bool:
        return self.history.can_undo

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo

    def volume_ml(self, name: str) -> float:
        """Live volume (ml) of a structure, from voxel counts kept up to date by the deltas."""
        return self.twin.volume_ml(name)

    # ------------------------------------------------------------------ structures
    def add_structure(self, name: str, mask: np.ndarray | None = None, *,
                      role: Role | str = Role.OTHER, color: Sequence[float] | None = None,
                      margin_mm: float = 0.0, description: str = "") -> Structure:
        """Add a structure (empty when ``mask`` is None) as one undoable step."""
        if mask is None:
            mask = np.zeros(self.twin.geometry.shape_zyx, dtype=bool)
        s = self.twin.add_structure(name, mask, role=role, margin_mm=margin_mm,
                                    color=None if color is None else tuple(color),
                                    description=description)
        region = MaskRegion.from_mask(np.asarray(mask, dtype=bool))
        delta = None
        if region is not None:
            after = self.twin.segmentation.layers[s.layer][region.box]
            before = np.where(after == s.label, 0, after).astype(after.dtype)
            delta = LayerDelta(s.layer, region.box, after.dtype, _pack(before), _pack(after))
        index = self.twin.structures.index(s)
        self._record(StructureAdded(copy.deepcopy(s), index, delta, label=f"add {name}"))
        return s

    def add_from_anatomy(self, name: str, mask: np.ndarray | None = None) -> Structure:
        """Add a structure named from the anatomy list, with its default role/colour/margin."""
        from surgiplan.segmentation.anatomy_names import lookup_anatomy, normalised_name

        entry = lookup_anatomy(name)
        if entry is None:
            return self.add_structure(name, mask)
        # the list's spelling for the name itself; a synonym ("tumor 2") keeps the user's name
        same = normalised_name(name) == entry.name
        return self.add_structure(entry.name if same else name.strip(), mask, role=entry.role,
                                  color=entry.color, margin_mm=entry.margin_mm)

    def remove_structure(self, name: str) -> None:
        """Remove a structure (its voxels come back on undo)."""
        s = self.twin.structure(name)
        index = self.twin.structures.index(s)
        region = MaskRegion.from_mask(self.twin.segmentation.mask(name))
        delta = None
        if region is not None:
            before = self.twin.segmentation.layers[s.layer][region.box]
            after = np.where(before == s.label, 0, before).astype(before.dtype)
            delta = LayerDelta(s.layer, region.box, before.dtype, _pack(before), _pack(after))
        record = copy.deepcopy(s)
        self.twin.remove_structure(name)
        self._record(StructureAdded(record, index, delta, removed=True, label=f"remove {name}"))

    def rename_structure(self, old: str, new: str) -> None:
        self.twin.rename_structure(old, new)
        self.twin.provenance.rename_automatic(old, new)
        self._record(StructureRenamed(old, new, label=f"rename {old} to {new}"))

    def set_properties(self, name: str, **props: Any) -> None:
        """Change role, color, margin_mm, visible, opacity or description (undoable)."""
        unknown = set(props) - set(_PROPERTY_NAMES)
        if unknown:
            raise ValueError(f"unknown structure properties {sorted(unknown)}")
        s = self.twin.structure(name)
        before = {key: getattr(s, key) for key in props}
        self.twin.set_structure_properties(name, **props)
        after = {key: getattr(s, key) for key in props}
        self._record(PropertiesChanged(name, before, after, label=f"{name} properties"))

    # ------------------------------------------------------------------ voxels
    def apply_region(self, name: str, region: MaskRegion | None, *, erase: bool = False,
                     overwrite_others: bool = True, label: str = "edit") -> bool:
        """Add (or with ``erase`` remove) the region's voxels to a structure; True if changed.

        ``overwrite_others``: painted voxels owned by another structure of the same layer
        move to this one (else they are left to it). Other layers are never touched.
        """
        if region is None:
            return False
        s = self.twin.structure(name)
        layer = self.twin.segmentation.layers[s.layer]
        old = layer[region.box]
        new = old.copy()
        if erase:
            new[region.mask & (old == s.label)] = 0
        elif overwrite_others:
            new[region.mask] = s.label
        else:
            new[region.mask & (old == 0)] = s.label
        return self._write(s, region.box, old, new, label)

    def replace_mask(self, name: str, mask: np.ndarray, *, overwrite_others: bool = True,
                     label: str = "edit") -> bool:
        """Make a structure's voxels exactly ``mask`` (full grid); stores only the changed box.

        With ``overwrite_others=False``, voxels of other structures of the same layer stay
        theirs (so the structure may end up smaller than ``mask`` there).
        """
        s = self.twin.structure(name)
        mask = self._checked_mask(mask)
        layer = self.twin.segmentation.layers[s.layer]
        current = layer == s.label
        changed = MaskRegion.from_mask(current != mask)
        if changed is None:
            return False
        old = layer[changed.box]
        new = np.where(old == s.label, 0, old).astype(old.dtype)
        take = mask[changed.box] if overwrite_others else mask[changed.box] & (new == 0)
        new[take] = s.label
        return self._write(s, changed.box, old, new, label)

    def paint(self, name: str, centre_lps: Sequence[float], radius_mm: float, *,
              axis: int | None = None, erase: bool = False,
              overwrite_others: bool = True) -> bool:
        """One brush dab: a sphere (``axis`` None) or a disc in the index plane normal to
        ``axis`` (0=i, 1=j, 2=k) through ``centre_lps``; radius in mm."""
        geometry = self.twin.geometry
        if axis is None:
            region = sphere_region(geometry, centre_lps, radius_mm)
        else:
            region = disc_region(geometry, centre_lps, radius_mm, axis=axis)
        return self.apply_region(name, region, erase=erase, overwrite_others=overwrite_others,
                                 label="erase" if erase else "paint")

    def _write(self, s: Structure, box: tuple[slice, slice, slice], old: np.ndarray,
               new: np.ndarray, label: str) -> bool:
        if np.array_equal(old, new):
            return False
        delta = LayerDelta(s.layer, box, old.dtype, _pack(old), _pack(new), label)
        self.twin.write_layer_region(s.layer, box, new, user_edit=True)
        self._record(delta)
        return True

    def _checked_mask(self, mask: np.ndarray) -> np.ndarray:
        mask = np.asarray(mask)
        if mask.shape != self.twin.geometry.shape_zyx:
            raise BadInputError(
                f"mask shape {mask.shape} does not match the image grid "
                f"{self.twin.geometry.shape_zyx}",
                action="resample the mask onto the image grid first",
            )
        return mask if mask.dtype == bool else mask != 0
