"""Further series of a twin in the case bundle (schema version 3 and later).

Each series ``KEY`` is stored as ``series/KEY.nrrd`` (gzip NRRD on its own LPS grid, no patient
identifiers) and, when its transform has a deformation, ``series/KEY.tfm`` (ITK transform text).
The manifest's ``series`` list holds, per series, its image facts and geometry, role,
acquisition date and the transform to the reference frame with its provenance (method,
software, time, settings, similarity metric and landmark error when known).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from surgiplan.io.bundle_guard import NRRD_HEADER_SLACK, read_nrrd_bounded
from surgiplan.io.labelmaps import geometry_from_nrrd_header, nrrd_bytes, nrrd_geometry_header
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.series_transform import KINDS, SeriesTransform
from surgiplan.model.volume import ImageVolume
from surgiplan.twin import SERIES_KEY, Twin, TwinSeries

SERIES_FOLDER = "series/"
MAX_TFM_BYTES = 64 << 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SeriesGeometryModel(_Strict):
    size: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_lps: tuple[float, float, float]
    direction: list[float] = Field(min_length=9, max_length=9)


class SeriesTransformModel(_Strict):
    kind: str = Field(pattern="^(" + "|".join(KINDS) + ")$")
    method: str = ""
    matrix_to_reference: list[float] = Field(min_length=16, max_length=16)
    quality: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    software: str = ""
    created_utc: str = ""


class SeriesModel(_Strict):
    key: str = Field(pattern=SERIES_KEY.pattern)
    role: str = ""
    acquired: str = ""
    modality: str = "OT"
    series_uid: str = ""
    description: str = ""
    units: str = ""
    window: tuple[float, float] | None = None
    geometry: SeriesGeometryModel
    transform: SeriesTransformModel
    image_entry: str
    deformation_entry: str | None = None


def add_series_entries(twin: Twin, entries: dict[str, bytes]) -> list[dict[str, Any]]:
    """Add every further series of ``twin`` to ``entries``; returns their manifest records."""
    records = []
    for s in twin.series:
        image_entry = f"{SERIES_FOLDER}{s.key}.nrrd"
        entries[image_entry] = nrrd_bytes(s.image.array, nrrd_geometry_header(s.image.geometry))
        deformation_entry = None
        if s.transform.deformation_tfm is not None:
            deformation_entry = f"{SERIES_FOLDER}{s.key}.tfm"
            entries[deformation_entry] = s.transform.deformation_tfm.encode("ascii")
        window = None
        if s.image.window_center is not None and s.image.window_width:
            window = [float(s.image.window_center), float(s.image.window_width)]
        records.append({
            "key": s.key, "role": s.role, "acquired": s.acquired,
            "modality": s.image.modality, "series_uid": s.image.series_uid,
            "description": s.image.description, "units": s.image.units, "window": window,
            "geometry": s.image.geometry.to_json(), "transform": s.transform.to_json(),
            "image_entry": image_entry, "deformation_entry": deformation_entry,
        })
    return records


def series_entry_cap(models: list[SeriesModel], entry: str) -> int | None:
    """Most bytes a series entry may hold (from its geometry), or None if none lists it."""
    for m in models:
        if entry == m.image_entry:
            voxels = m.geometry.size[0] * m.geometry.size[1] * m.geometry.size[2]
            return int(voxels * 8 * 1.01) + NRRD_HEADER_SLACK
        if entry == m.deformation_entry:
            return MAX_TFM_BYTES
    return None


def load_series(reader: Any, models: list[SeriesModel]) -> list[TwinSeries]:
    """The further series of a bundle (``reader`` is bundle.py's hash-checked reader)."""
    out = []
    for m in models:
        try:
            geometry = ImageGeometry.from_json(m.geometry.model_dump())
        except ValueError as exc:
            raise reader.fail(m.image_entry, f"has an invalid geometry ({exc})") from exc
        where = f"{reader.path}!{m.image_entry}"
        with reader.open(m.image_entry) as handle:
            array, header = read_nrrd_bounded(handle, max_bytes=geometry.n_voxels * 8,
                                              where=where)
        if array.shape != geometry.shape_zyx or geometry_from_nrrd_header(header,
                                                                          path=where) != geometry:
            raise reader.fail(m.image_entry, "has a geometry different from the manifest's")
        tfm = None
        if m.deformation_entry is not None:
            tfm = reader.read(m.deformation_entry).decode("ascii", errors="replace")
        try:
            transform = SeriesTransform.from_json(m.transform.model_dump(), tfm)
        except ValueError as exc:
            raise reader.fail(m.image_entry, f"has an invalid transform ({exc})") from exc
        centre, width = m.window if m.window else (None, None)
        image = ImageVolume(array=array, geometry=geometry, modality=m.modality,
                            description=m.description, series_uid=m.series_uid, units=m.units,
                            window_center=centre, window_width=width)
        out.append(TwinSeries(key=m.key, image=image, transform=transform, role=m.role,
                              acquired=m.acquired))
    return out
