"""The structural twin: image + segmented anatomy + derived surfaces and distance maps.

Derived data (surfaces, signed distance maps) is computed lazily, cached per structure, and
invalidated only for the structure that changed. Changes emit events on ``twin.events``:

* ``"structure_added"`` / ``"structure_removed"`` / ``"structure_changed"`` (``name=``)
* ``"structure_properties_changed"`` (``name=``, ``fields=``)
* ``"image_changed"``
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from surgiplan import __version__
from surgiplan.model.events import EventEmitter
from surgiplan.model.structures import Role, Segmentation, Structure
from surgiplan.model.surface import SurfaceMesh
from surgiplan.model.volume import ImageVolume


@dataclass
class Provenance:
    """Where a twin came from: enough to reproduce it and to check its inputs were unchanged."""

    source_series_uids: list[str] = field(default_factory=list)
    source_files_sha256: dict[str, str] = field(default_factory=dict)
    software: str = f"SurgiPlan {__version__}"
    created_utc: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds")
    )
    import_warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "source_series_uids": list(self.source_series_uids),
            "source_files_sha256": dict(self.source_files_sha256),
            "software": self.software,
            "created_utc": self.created_utc,
            "import_warnings": list(self.import_warnings),
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Provenance:
        return cls(
            source_series_uids=list(data.get("source_series_uids", [])),
            source_files_sha256=dict(data.get("source_files_sha256", {})),
            software=str(data.get("software", "")),
            created_utc=str(data.get("created_utc", "")),
            import_warnings=list(data.get("import_warnings", [])),
            notes=list(data.get("notes", [])),
        )


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
        self.events = EventEmitter()
        self._lock = threading.RLock()
        self._distance_cache: dict[str, np.ndarray] = {}
        self._surface_cache: dict[str, SurfaceMesh] = {}

    @property
    def geometry(self):
        return self.image.geometry

    @property
    def structures(self) -> list[Structure]:
        return self.segmentation.structures

    def structure(self, name: str) -> Structure:
        return self.segmentation.get(name)

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
        for key, value in props.items():
            setattr(s, key, Role(value) if key == "role" else value)
        self.events.emit("structure_properties_changed", name=name, fields=sorted(props))

    def _invalidate(self, name: str) -> None:
        self._distance_cache.pop(name, None)
        self._surface_cache.pop(name, None)

    # ------------------------------------------------------------------ derived data
    def signed_distance_mm(self, name: str) -> np.ndarray:
        """Signed distance map (float32, ``(nz, ny, nx)``, mm): positive outside, negative inside.

        Computed once per structure and cached until that structure is edited.
        """
        with self._lock:
            cached = self._distance_cache.get(name)
        if cached is not None:
            return cached
        from surgiplan.processing.distance import signed_distance_map

        dist = signed_distance_map(self.segmentation.mask(name), self.geometry)
        dist.setflags(write=False)
        with self._lock:
            self._distance_cache[name] = dist
        return dist

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

    def cached_surface_names(self) -> list[str]:
        with self._lock:
            return list(self._surface_cache)
