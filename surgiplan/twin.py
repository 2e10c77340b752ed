"""The structural twin: image + segmented anatomy + derived surfaces and distance maps.

Derived data (surfaces, signed distance maps) is computed lazily, cached per structure, and
invalidated only for the structure that changed. Changes emit events on ``twin.events``:

* ``"structure_added"`` / ``"structure_removed"`` / ``"structure_changed"`` (``name=``;
  region edits add ``box=``, the changed ``(z, y, x)`` slices)
* ``"structure_renamed"`` (``name=`` the new name, ``old_name=``)
* ``"structure_properties_changed"`` (``name=``, ``fields=``)
* ``"structure_reviewed"`` (``name=``, ``by=``): a person checked an automatic structure
* ``"image_changed"``
* ``"series_added"`` / ``"series_removed"`` / ``"series_transform_changed"`` (``key=``)

A twin holds one reference image (``twin.image``: its grid is the grid of the structures) and
any number of further series of the same patient (``twin.series``), each on its own grid in
its own scanner LPS frame, placed in the reference frame by its :class:`SeriesTransform`.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surgiplan.model.events import EventEmitter
from surgiplan.model.provenance import Provenance
from surgiplan.model.series_transform import SeriesTransform
from surgiplan.model.structures import Segmentation, Structure, checked_property
from surgiplan.model.surface import SurfaceMesh
from surgiplan.model.volume import ImageVolume

# Distance-map cache budget: at least DISTANCE_CACHE_MAPS full-grid float32 maps, and at least
# DISTANCE_CACHE_MIN_BYTES, so that every critical structure of an ordinary case stays cached
# (live re-scoring samples them all on every drag) while a huge CT keeps only a couple.
DISTANCE_CACHE_MAPS = 2
DISTANCE_CACHE_MIN_BYTES = 1536 * 1024 * 1024
# Region-of-interest maps (distance_roi) kept at most this many times the image's bytes
# (least recently used first out; the newest always stays): two full-grid float32 maps of an
# int16 image. A case with 100 critical structures does not keep 100 maps, while the three
# head-wide vessel maps of the head phantom stay (live re-scoring samples them all on every
# drag: at 1x the image they were recomputed on every run, 1.6 s instead of milliseconds).
ROI_CACHE_IMAGE_FACTOR = 4.0
# Region-of-interest distance maps (see distance_roi): the structure's box padded by this much.
# Sampling within it is exact; beyond it a caller gets a conservative lower bound or, when it
# asks for exact values there, the full-grid map.
DISTANCE_ROI_MARGIN_MM = 30.0
SERIES_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
REFERENCE_KEY = "reference"


@dataclass
class TwinSeries:
    """One more scan of the twin's patient: its own image (grid and LPS frame of its scanner)
    and the transform that places it in the twin's reference frame. ``role``: what it is for
    ("anatomy", "vessels", "follow-up"...); ``acquired``: its acquisition date (ISO) or ""."""

    key: str
    image: ImageVolume
    transform: SeriesTransform = field(default_factory=SeriesTransform)
    role: str = ""
    acquired: str = ""

    def __post_init__(self) -> None:
        if not SERIES_KEY.match(self.key) or self.key == REFERENCE_KEY:
            raise ValueError(f"series key {self.key!r} must be 1-40 letters, digits, '.', '_' "
                             f"or '-' and not {REFERENCE_KEY!r}")


class Twin:
    """A patient's structural twin in LPS mm. ``patient_ref`` is pseudonymous, never a name/ID."""

    def __init__(
        self,
        image: ImageVolume,
        segmentation: Segmentation | None = None,
        *,
        provenance: Provenance | None = None,
        patient_ref: str = "",
    ) -> None:
        if segmentation is None:
            segmentation = Segmentation(geometry=image.geometry)
        if not segmentation.geometry.same_grid(image.geometry):
            raise ValueError("segmentation grid differs from the image grid")
        self.image = image
        self.segmentation = segmentation
        self.provenance = provenance or Provenance()
        self.patient_ref = patient_ref
        # Case-bundle entries this version does not interpret (e.g. "plans/..."), kept
        # byte-for-byte so that loading and saving a bundle loses nothing.
        self.bundle_extras: dict[str, bytes] = {}
        # (path, file stamp) of the bundle this twin was loaded from or last saved to: a save
        # to that path refuses to overwrite a version someone else wrote since (lost update).
        self.bundle_source: tuple[str, str | None] | None = None
        self.series: list[TwinSeries] = []  # further scans, each placed by its transform
        self.events = EventEmitter()
        self._lock = threading.RLock()
        self._distance_cache: dict[str, np.ndarray] = {}
        self._roi_cache: dict[str, Any] = {}  # name -> RoiDistanceMap
        self._surface_cache: dict[str, SurfaceMesh] = {}
        self._count_cache: dict[str, int] = {}

    @property
    def geometry(self):
        return self.image.geometry

    @property
    def structures(self) -> list[Structure]:
        return self.segmentation.structures

    def structure(self, name: str) -> Structure:
        return self.segmentation.get(name)

    # ------------------------------------------------------------------ further series
    def series_by_key(self, key: str) -> TwinSeries:
        for entry in self.series:
            if entry.key == key:
                return entry
        known = ", ".join(e.key for e in self.series) or "none"
        raise KeyError(f"no series {key!r} in this twin (series: {known})")

    def add_series(self, entry: TwinSeries) -> TwinSeries:
        """Add a further series (its key must be new)."""
        with self._lock:
            if any(e.key == entry.key for e in self.series):
                raise ValueError(f"a series with key {entry.key!r} exists already")
            self.series.append(entry)
        self.events.emit("series_added", key=entry.key)
        return entry

    def set_series_transform(self, key: str, transform: SeriesTransform) -> None:
        """Replace the transform that places series ``key`` in the reference frame."""
        with self._lock:
            self.series_by_key(key).transform = transform
        self.events.emit("series_transform_changed", key=key)

    def remove_series(self, key: str) -> TwinSeries:
        with self._lock:
            entry = self.series_by_key(key)
            self.series.remove(entry)
        self.events.emit("series_removed", key=key)
        return entry

    # ------------------------------------------------------------------ editing
    def add_structure(self, name: str, mask: np.ndarray, **props: Any) -> Structure:
        """Add a structure from a boolean mask; ``props``: role, color, margin_mm, description."""
        with self._lock:
            s = self.segmentation.add(name, mask, **props)
        self.events.emit("structure_added", name=name)
        return s

    def set_structure_mask(self, name: str, mask: np.ndarray) -> None:
        """Replace a structure's voxels and drop only its own derived data."""
        with self._lock:
            self.segmentation.set_mask(name, mask)
            self._invalidate(name)
        self.events.emit("structure_changed", name=name)

    def remove_structure(self, name: str) -> Structure:
        with self._lock:
            s = self.segmentation.remove(name)
            self._invalidate(name)
        self.events.emit("structure_removed", name=name)
        return s

    def set_structure_properties(self, name: str, **props: Any) -> None:
        """Change name-independent display/clinical properties (role, color, margin_mm, ...)."""
        s = self.segmentation.get(name)
        allowed = {"role", "color", "margin_mm", "visible", "opacity", "description"}
        unknown = set(props) - allowed
        if unknown:
            raise ValueError(f"unknown structure properties {sorted(unknown)}")
        checked = {key: checked_property(key, value) for key, value in props.items()}
        for key, value in checked.items():  # all checked before any is applied
            setattr(s, key, value)
        self.events.emit("structure_properties_changed", name=name, fields=sorted(props))

    def mark_reviewed(self, name: str, *, by: str = "") -> None:
        """A person (``by``) checked automatic structure ``name``: its quality flag becomes
        reviewed. Raises KeyError for a structure no automatic method made."""
        self.provenance.mark_reviewed(name, by=by)
        self.events.emit("structure_reviewed", name=name, by=by)

    def _invalidate(self, name: str, *, keep_count: bool = False) -> None:
        self._distance_cache.pop(name, None)
        self._roi_cache.pop(name, None)
        self._surface_cache.pop(name, None)
        if not keep_count:
            self._count_cache.pop(name, None)

    # ------------------------------------------------------------------ region edits
    def write_layer_region(self, layer: int, box: tuple[slice, slice, slice],
                           values: np.ndarray, *, user_edit: bool = False) -> list[str]:
        """Write label ``values`` into ``layers[layer][box]``; returns the structures changed.

        Only the structures whose voxels changed lose their derived data; their voxel counts
        are updated from the change (no full-grid count). With ``user_edit``, automatic
        structures that changed are flagged edited in provenance (before the events go out).
        Emits ``"structure_changed"`` with ``name=`` and ``box=`` for each.
        """
        with self._lock:
            target = self.segmentation.layers[layer][box]  # a copy: the layer is a crop
            if values.shape != target.shape:
                raise ValueError(f"values shape {values.shape} != region {target.shape}")
            diff = target != values
            old, new = target[diff], values[diff]
            changed = [s for s in self.structures if s.layer == layer
                       and (np.any(old == s.label) or np.any(new == s.label))]
            for s in changed:
                if s.name in self._count_cache:
                    self._count_cache[s.name] += int(np.count_nonzero(new == s.label)
                                                     - np.count_nonzero(old == s.label))
                self._invalidate(s.name, keep_count=True)
            self.segmentation.layers[layer].write_region(box, values)
            if user_edit:
                for s in changed:
                    self.provenance.mark_edited(s.name)
        for s in changed:
            self.events.emit("structure_changed", name=s.name, box=box)
        return [s.name for s in changed]

    def voxel_count(self, name: str) -> int:
        """Voxels in a structure; counted once, then kept up to date by region edits."""
        with self._lock:
            count = self._count_cache.get(name)
            if count is None:
                count = self._count_cache[name] = self.segmentation.voxel_count(name)
        return count

    def volume_ml(self, name: str) -> float:
        """Structure volume in millilitres (cheap: from :meth:`voxel_count`)."""
        return self.voxel_count(name) * self.geometry.voxel_volume_mm3 / 1000.0

    def centroid_lps(self, name: str) -> np.ndarray | None:
        """Centre of mass (LPS mm) of a structure's voxels; None when it has none."""
        s = self.segmentation.get(name)
        layer = self.segmentation.layers[s.layer]  # the crop only: no full-grid mask
        kji = np.argwhere(layer.data == s.label) + np.asarray(layer.offset)
        if kji.size == 0:
            return None
        return self.geometry.index_to_lps(kji[:, ::-1].mean(axis=0)[None])[0]

    def rename_structure(self, old: str, new: str) -> None:
        """Rename a structure (its voxels and derived data stay)."""
        with self._lock:
            s = self.segmentation.get(old)
            if not new or not new.strip():
                raise ValueError("a structure needs a name")
            if new != old and new in self.segmentation.names():
                raise ValueError(f"a structure named {new!r} exists already")
            s.name = new
            caches: tuple[dict[str, Any], ...] = (self._distance_cache, self._roi_cache,
                                                  self._surface_cache, self._count_cache)
            for cache in caches:
                if old in cache:
                    cache[new] = cache.pop(old)
        self.events.emit("structure_renamed", name=new, old_name=old)

    def insert_structure(self, structure: Structure, *, index: int | None = None) -> None:
        """Register a structure record on an existing layer (its voxels are written apart).

        Used to undo a removal: the record comes back first, then its voxels by
        :meth:`write_layer_region`.
        """
        with self._lock:
            if structure.name in self.segmentation.names():
                raise ValueError(f"a structure named {structure.name!r} exists already")
            if structure.layer >= len(self.segmentation.layers):
                raise ValueError(f"structure {structure.name!r} refers to a missing layer")
            at = len(self.structures) if index is None else index
            self.structures.insert(at, structure)
            self._invalidate(structure.name)
        self.events.emit("structure_added", name=structure.name)

    # ------------------------------------------------------------------ derived data
    def signed_distance_mm(self, name: str) -> np.ndarray:
        """Signed distance map (float32, ``(nz, ny, nx)``, mm): positive outside, negative inside.

        Computed on demand and cached until that structure is edited. The cache holds at most
        :attr:`distance_cache_bytes` (least recently used maps go first), so a case with 100
        structures does not keep 100 full-grid maps; a map still used by a caller stays alive
        through that caller.
        """
        with self._lock:
            cached = self._distance_cache.pop(name, None)
            if cached is not None:
                self._distance_cache[name] = cached  # most recently used last
        if cached is not None:
            return cached
        from surgiplan.processing.distance import signed_distance_map

        dist = signed_distance_map(self.segmentation.mask(name), self.geometry)
        dist.setflags(write=False)
        with self._lock:
            self._distance_cache[name] = dist
            self._trim_distance_cache()
        return dist

    def distance_roi(self, name: str, *, margin_mm: float = DISTANCE_ROI_MARGIN_MM,
                     cover: tuple[slice, slice, slice] | None = None) -> Any:
        """Signed distance map of ``name`` in a region of interest only (a
        :class:`~surgiplan.processing.distance.RoiDistanceMap`: float32 values on the
        structure's bounding box padded by at least ``margin_mm`` and holding ``cover``, full
        grid ``(z, y, x)`` slices; exact there, a conservative lower bound beyond). Cached
        until the structure is edited (the cache holds at most :attr:`roi_cache_bytes`); a
        cached map with a margin at least as large that holds ``cover`` is reused. Memory ~ the
        region, not the grid: read from the structure's label layer, no full-grid mask.
        """
        with self._lock:
            cached = self._roi_cache.get(name)
        if (cached is not None and cached.margin_mm >= margin_mm
                and (cover is None or _holds(cached.region, cover, self.geometry.shape_zyx))):
            return cached
        from surgiplan.processing.distance import signed_distance_roi_map

        s = self.segmentation.get(name)  # read from its layer: no full-grid boolean mask
        roi = signed_distance_roi_map(self.segmentation.layers[s.layer], self.geometry,
                                      margin_mm=margin_mm, cover=cover, label=s.label)
        with self._lock:
            self._roi_cache.pop(name, None)
            self._roi_cache[name] = roi  # most recently made last
            total = sum(r.nbytes for r in self._roi_cache.values())
            while total > self.roi_cache_bytes and len(self._roi_cache) > 1:
                total -= self._roi_cache.pop(next(iter(self._roi_cache))).nbytes
        return roi

    @property
    def roi_cache_bytes(self) -> int:
        """Budget of the region-of-interest map cache: ROI_CACHE_IMAGE_FACTOR x the image's
        bytes (the newest map always stays, whatever its size)."""
        return int(ROI_CACHE_IMAGE_FACTOR * self.image.nbytes)  # voxels not read for it

    def cached_full_distance(self, name: str) -> np.ndarray | None:
        """The full-grid map of ``name`` if it is cached (never computes it)."""
        with self._lock:
            return self._distance_cache.get(name)

    @property
    def distance_cache_bytes(self) -> int:
        """Budget of the distance-map cache: DISTANCE_CACHE_MAPS full-grid float32 maps, and at
        least DISTANCE_CACHE_MIN_BYTES."""
        return max(DISTANCE_CACHE_MAPS * 4 * self.geometry.n_voxels, DISTANCE_CACHE_MIN_BYTES)

    def _trim_distance_cache(self) -> None:
        """Drop least recently used maps beyond the budget (the newest map always stays)."""
        total = sum(m.nbytes for m in self._distance_cache.values())
        while total > self.distance_cache_bytes and len(self._distance_cache) > 1:
            oldest = next(iter(self._distance_cache))
            total -= self._distance_cache.pop(oldest).nbytes

    def surface(self, name: str) -> SurfaceMesh:
        """Surface mesh (LPS mm) of one structure, cached until that structure is edited."""
        with self._lock:
            cached = self._surface_cache.get(name)
        if cached is not None:
            return cached
        from surgiplan.processing.surfaces import structure_surfaces

        meshes = structure_surfaces(self.segmentation, names=[name])
        with self._lock:
            self._surface_cache.update(meshes)
        return meshes[name]

    def set_cached_surfaces(self, meshes: dict[str, SurfaceMesh]) -> None:
        """Install surfaces computed elsewhere (a worker, or loaded from a case bundle)."""
        with self._lock:
            self._surface_cache.update(meshes)

    def drop_cached_surfaces(self) -> None:
        """Forget every cached surface mesh (recomputed on demand): for a one-shot run that
        needs none of those a case bundle brought along."""
        with self._lock:
            self._surface_cache.clear()

    def cached_surface_names(self) -> list[str]:
        with self._lock:
            return list(self._surface_cache)


def _holds(region: tuple[slice, ...], box: tuple[slice, ...], shape_zyx: tuple[int, ...]) -> bool:
    """True if ``region`` holds ``box`` clipped to the grid ``shape_zyx``."""
    return all(r.start <= max(b.start, 0) and r.stop >= min(b.stop, n)
               for r, b, n in zip(region, box, shape_zyx, strict=True))
