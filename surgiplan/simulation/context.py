"""The read-only view of a twin that a simulator receives.

A simulator sees the image(s), the structures with their roles and safety margins, signed
distances in LPS mm (the twin's cached maps, sampled trilinearly), surfaces, and label lookups.

The case data cannot be changed through it: the image is handed out as a read-only copy
(backed by immutable bytes, cached per twin version, so ``array.base`` does not lead back to
the twin and the write flag cannot be turned on again), masks are fresh arrays, and the twin
itself is private. Third-party plug-ins get a :meth:`SimulationContext.snapshot` (copies) in a
child process and never see this object at all.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.label_layer import LabelLayer
from surgiplan.model.structures import Role
from surgiplan.model.surface import SurfaceMesh
from surgiplan.model.volume import ImageVolume
from surgiplan.processing.distance import sample_volume
from surgiplan.twin import Twin


@dataclass(frozen=True)
class StructureInfo:
    """A structure as a simulator sees it: name, role, safety margin (mm), label layer/value."""

    name: str
    role: Role
    margin_mm: float
    layer: int
    label: int


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.setflags(write=False)
    return view


def frozen_copy(array: np.ndarray) -> np.ndarray:
    """A copy backed by immutable ``bytes``: read-only for good (its base is not writable)."""
    data = np.ascontiguousarray(array)
    return np.frombuffer(data.tobytes(), dtype=data.dtype).reshape(data.shape)


class SimulationContext:
    """Read-only access to a twin for simulators (thread-safe for concurrent reads)."""

    def __init__(self, twin: Twin, *, distance_maps: dict[str, np.ndarray] | None = None) -> None:
        """``distance_maps``: maps already computed elsewhere (a snapshot's), used as is."""
        self.__twin = twin
        self._shipped = dict(distance_maps or {})
        self._maps_seen: dict[str, weakref.ref] = {}  # maps handed out, while still alive
        self._lock = threading.Lock()
        self._hashes: dict[str, str] | None = None
        self._image_copy: np.ndarray | None = None
        self._token = uuid.uuid4().hex
        self._version = 0
        twin.events.connect(self._on_twin_event)

    # ------------------------------------------------------------------ what there is
    @property
    def geometry(self) -> ImageGeometry:
        return self.__twin.geometry

    @property
    def images(self) -> tuple[ImageVolume, ...]:
        """The twin's image(s); their ``array`` is a read-only copy (see the module docstring)."""
        img = self.__twin.image
        with self._lock:
            if self._image_copy is None:
                self._image_copy = frozen_copy(img.array)
            array = self._image_copy
        return (ImageVolume(array=array, geometry=img.geometry,
                            modality=img.modality, description=img.description,
                            series_uid=img.series_uid, units=img.units,
                            warnings=list(img.warnings)),)

    @property
    def structures(self) -> tuple[StructureInfo, ...]:
        return tuple(StructureInfo(s.name, s.role, float(s.margin_mm), s.layer, s.label)
                     for s in self.__twin.structures)

    def structure(self, name: str) -> StructureInfo:
        for s in self.structures:
            if s.name == name:
                return s
        raise KeyError(f"no structure named {name!r}; have {[s.name for s in self.structures]}")

    def by_role(self, role: Role | str) -> tuple[StructureInfo, ...]:
        return tuple(s for s in self.structures if s.role == Role(role))

    # ------------------------------------------------------------------ geometry access
    def distance_map(self, name: str) -> np.ndarray:
        """Signed distance map of ``name`` (float32 mm, (nz, ny, nx), + outside), read-only."""
        return _read_only(self._distance(name))

    def signed_distance_mm(self, name: str, points_lps: Any, *,
                           exact: bool = True) -> np.ndarray:
        """Signed distance (mm, + outside) of LPS points ``(..., 3)`` to ``name``'s surface.

        Trilinear in the twin's map; points off the grid get ``+inf``. Read from the
        structure's region-of-interest map (:meth:`Twin.distance_roi`, the box padded by
        ``DISTANCE_ROI_MARGIN_MM``), so no full-grid map is built for points near the
        structure. Points beyond that region: with ``exact`` (default) the full-grid map is
        computed (same values as before); with ``exact=False`` they get a conservative lower
        bound (>= the margin minus half a voxel; see ``RoiDistanceMap``), which is all a
        caller testing "within a band of B <= margin mm" needs.
        """
        full = self._shipped.get(name)
        if full is None:
            full = self.__twin.cached_full_distance(name)
        if full is not None:
            return sample_volume(full, self.geometry, points_lps, fill_value=np.inf)
        roi = self.__twin.distance_roi(name)
        pts = np.asarray(points_lps, dtype=float)
        values = roi.sample(pts)
        if exact and roi.mask_box is not None:
            flat = pts.reshape(-1, 3)
            zyx = self.geometry.lps_to_index(flat)[:, ::-1]
            shape = np.asarray(self.geometry.shape_zyx)
            on_grid = np.all((zyx >= -0.5) & (zyx <= shape - 0.5), axis=1)
            far = on_grid & ~roi.exact_at_index(zyx)
            if np.any(far):
                values = values.reshape(-1)
                values[far] = sample_volume(self._distance(name), self.geometry, flat[far],
                                            fill_value=np.inf)
                values = values.reshape(pts.shape[:-1])
        return values

    def distance_roi(self, name: str, *, covering_lps: Any = None) -> Any:
        """``name``'s signed distance map on a region of interest (a ``RoiDistanceMap``:
        float32 ``values`` on ``sub_geometry``, read-only): the structure's box padded by
        ``DISTANCE_ROI_MARGIN_MM``, grown to hold the LPS points ``covering_lps`` (``(..., 3)``)
        and any straight segment between them (their bounding box, plus two voxels). Values are
        exact on the whole region, so a consumer sampling only there gets the full map's
        values without the full-grid memory."""
        cover = None
        if covering_lps is not None:
            pts = np.asarray(covering_lps, dtype=float).reshape(-1, 3)
            zyx = self.geometry.lps_to_index(pts)[:, ::-1]
            lo = np.floor(zyx.min(axis=0)).astype(int) - 2
            hi = np.ceil(zyx.max(axis=0)).astype(int) + 3
            cover = (slice(int(lo[0]), int(hi[0])), slice(int(lo[1]), int(hi[1])),
                     slice(int(lo[2]), int(hi[2])))  # (z, y, x) voxel box
        return self.__twin.distance_roi(name, cover=cover)

    def distance_in_box(self, name: str, box: tuple[slice, slice, slice]) -> np.ndarray:
        """``distance_map(name)[box]`` (float32 mm, read-only) for a ``(z, y, x)`` voxel box
        within the grid, without the full-grid map: cut from the structure's region-of-interest
        map grown to hold the box, whose values are exact there (a map already in memory is
        used as is). An empty structure gives ``+inf``."""
        full = self._shipped.get(name)
        if full is None:
            full = self.__twin.cached_full_distance(name)
        if full is not None:
            return _read_only(full[box])
        shape = self.geometry.shape_zyx
        if any(not 0 <= b.start < b.stop <= n for b, n in zip(box, shape, strict=True)):
            raise ValueError(f"box {box} is not a non-empty box within the grid {shape}")
        roi = self.__twin.distance_roi(name, cover=box)
        if roi.mask_box is None:
            return _read_only(np.full([b.stop - b.start for b in box], np.inf, np.float32))
        local = tuple(slice(b.start - r.start, b.stop - r.start)
                      for b, r in zip(box, roi.region, strict=True))
        return _read_only(roi.values[local])

    def _distance(self, name: str) -> np.ndarray:
        shipped = self._shipped.get(name)
        if shipped is not None:
            return shipped
        dist = self.__twin.signed_distance_mm(name)
        with self._lock:
            self._maps_seen[name] = weakref.ref(dist)
        return dist

    def mask(self, name: str) -> np.ndarray:
        return _read_only(self.__twin.segmentation.mask(name))

    def mask_in_box(self, name: str, box: tuple[slice, slice, slice]) -> np.ndarray:
        """``mask(name)[box]`` for a ``(z, y, x)`` voxel box within the grid (a fresh boolean
        array the size of the box: no full-grid mask is made)."""
        shape = self.geometry.shape_zyx
        if any(not 0 <= b.start < b.stop <= n for b, n in zip(box, shape, strict=True)):
            raise ValueError(f"box {box} is not a non-empty box within the grid {shape}")
        s = self.__twin.segmentation.get(name)
        return self.__twin.segmentation.layers[s.layer][box] == s.label

    def surface(self, name: str) -> SurfaceMesh:
        return self.__twin.surface(name)

    def has_surface(self, name: str) -> bool:
        """True when ``name``'s full surface mesh is already in memory (:meth:`surface` then
        costs nothing; otherwise it is built from the whole structure)."""
        return name in self.__twin.cached_surface_names()

    def centroid_lps(self, name: str) -> np.ndarray | None:
        """Centre of mass (LPS mm) of a structure's voxels; None when it has none."""
        return self.__twin.centroid_lps(name)

    def structures_at(self, points_lps: Any) -> list[list[str]]:
        """Names of the structures whose voxel holds each LPS point (nearest voxel), in order."""
        ijk = np.rint(self.geometry.lps_to_index(np.asarray(points_lps, float).reshape(-1, 3)))
        size = np.asarray(self.geometry.size)
        inside = np.all((ijk >= 0) & (ijk < size), axis=1)
        idx = np.clip(ijk, 0, size - 1).astype(np.intp)
        by_key = {(s.layer, s.label): s.name for s in self.structures}
        names: list[list[str]] = [[] for _ in range(len(idx))]
        for n, layer in enumerate(self.__twin.segmentation.layers):
            values = layer[idx[:, 2], idx[:, 1], idx[:, 0]]
            for row in np.flatnonzero(inside & (values != 0)):
                name = by_key.get((n, int(values[row])))
                if name:
                    names[row].append(name)
        return names

    def labelled_at(self, points_lps: Any) -> np.ndarray:
        """True where an LPS point's nearest voxel is in any structure (False off the grid)."""
        ijk = np.rint(self.geometry.lps_to_index(np.asarray(points_lps, float).reshape(-1, 3)))
        size = np.asarray(self.geometry.size)
        inside = np.all((ijk >= 0) & (ijk < size), axis=1)
        idx = np.clip(ijk, 0, size - 1).astype(np.intp)
        hit = np.zeros(len(idx), dtype=bool)
        for layer in self.__twin.segmentation.layers:
            hit |= layer[idx[:, 2], idx[:, 1], idx[:, 0]] != 0
        return hit & inside

    # ------------------------------------------------------------------ provenance
    def input_hashes(self) -> dict[str, str]:
        """SHA-256 of the image voxels and of each label layer (cached until the twin changes)."""
        with self._lock:
            if self._hashes is None:
                seg = self.__twin.segmentation
                hashes = {"image": _sha(self.__twin.image.array)}
                hashes.update({f"labels[{n}]": _sha(a) for n, a in enumerate(seg.layers)})
                self._hashes = hashes
            return dict(self._hashes)

    def _on_twin_event(self, event: str, **_: Any) -> None:
        with self._lock:
            self._hashes = None
            self._image_copy = None
            self._maps_seen.clear()
            self._version += 1

    # ------------------------------------------------------------------ out-of-process copies
    def snapshot_key(self) -> tuple[str, int]:
        """Changes whenever the twin does: a child holding this key has the current case."""
        with self._lock:
            return self._token, self._version

    def snapshot(self) -> dict[str, Any]:
        """Copies of what a simulator may read (image, label layers, structures, cached
        surfaces, the distance maps handed out through this context and still in memory), for a
        child process; no patient reference, no provenance."""
        twin = self.__twin
        with self._lock:  # only maps still in memory: never computed here for a child
            alive = {name: ref() for name, ref in self._maps_seen.items()}
        img = twin.image
        image = {"array": np.array(img.array, copy=True), "geometry": img.geometry,
                 "modality": img.modality, "description": img.description,
                 "series_uid": img.series_uid, "units": img.units,
                 "warnings": list(img.warnings)}
        return {"image": image,
                "layers": [layer.copy() for layer in twin.segmentation.layers],  # crops
                "structures": [dataclasses.replace(s, tags=dict(s.tags))
                               for s in twin.structures],
                "surfaces": {name: twin.surface(name) for name in twin.cached_surface_names()},
                "distances": {n: m for n, m in alive.items() if m is not None}}


def _sha(array: Any) -> str:
    """SHA-256 of an array's C-order bytes (a label layer's full grid, made plane by plane)."""
    if isinstance(array, LabelLayer):
        return array.sha256()
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()
