"""The case bundle ``NAME.surgiplan``: one ZIP file holding a whole structural twin.

Entries:

* ``manifest.json`` - format, schema version, frame (LPS, mm), pseudonymous patient reference,
  image facts and geometry, structures, provenance, and the SHA-256 of every other entry;
* ``image.nrrd`` - the image volume (gzip NRRD, LPS), no patient identifiers in its header;
* ``segmentation.seg.nrrd`` - the label layers as a 3D Slicer segmentation (when there are any);
* ``series/KEY.nrrd`` (and ``series/KEY.tfm``) - further series of the patient, each with its
  transform to the reference frame in the manifest (``bundle_series.py``; version 3);
* ``meshes/<name>.vtp`` - surfaces cached in the twin (VTK XML PolyData, LPS mm), optional;
* ``plans/...`` - written by later features; entries this version does not read are kept
  byte-for-byte in ``twin.bundle_extras`` and saved again unchanged.

Saving is atomic (a crash or a full disk leaves the previous file intact). Loading validates the
manifest with pydantic, every entry's hash, and refuses unsafe entry names; nothing is ever
unpickled. By default no direct patient identifier (name, ID, birth date) is stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from surgiplan import __version__
from surgiplan.errors import BadInputError
from surgiplan.io import source_series
from surgiplan.io.atomic import atomic_write, remove_stale_temps
from surgiplan.io.bundle_guard import (
    MAX_EXTRA_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_MESH_BYTES,
    NRRD_HEADER_SLACK,
    check_declared_total,
    read_nrrd_bounded,
    read_nrrd_header,
    read_nrrd_layers,
    stream_sha256,
    strict_json,
)
from surgiplan.io.bundle_series import (
    SERIES_FOLDER,
    SeriesModel,
    add_series_entries,
    load_series,
    series_entry_cap,
)
from surgiplan.io.labelmaps import (
    geometry_from_nrrd_header,
    nrrd_bytes,
    nrrd_geometry_header,
)
from surgiplan.io.seg_nrrd import seg_nrrd_bytes, seg_nrrd_from_arrays
from surgiplan.io.source_series import SourceSeries
from surgiplan.io.versioned import document_version, upgrade, validated
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role, Segmentation, Structure
from surgiplan.model.surface import SurfaceMesh
from surgiplan.model.volume import ImageVolume, LazyImageVolume
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.twin import Provenance, Twin

FORMAT = "surgiplan.case"
# 2: the manifest may hold ``source`` (the DICOM series the case came from; see
#    source_series.py). Version 1 has none, or one written before the version was bumped.
# 3: the manifest lists further series of the patient (``series``, bundle_series.py).
SCHEMA_VERSION = 3
SUFFIX = ".surgiplan"
MANIFEST = "manifest.json"
IMAGE_ENTRY = "image.nrrd"
SEGMENTATION_ENTRY = "segmentation.seg.nrrd"
MESH_FOLDER = "meshes/"
EXTRA_FOLDERS = ("plans/", "display/")  # display/: the app's 3D display-surface cache
_SHA256 = r"^[0-9a-f]{64}$"
# The ZIP comment holds the manifest's own SHA-256, so an edited manifest is detected.
MANIFEST_HASH_PREFIX = b"surgiplan-manifest-sha256:"
MAX_MARGIN_MM = 100.0



def _v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """Version 1 -> 2: ``source`` becomes an explicit entry (None when the case has no source
    series reference; exports then say so). A ``source`` a late version-1 save wrote is kept."""
    return {**raw, "source": raw.get("source")}


# Upgrades of older manifests: MIGRATIONS[v] turns a version-v manifest dict into version v+1.
def _v2_to_v3(raw: dict[str, Any]) -> dict[str, Any]:
    """Version 2 -> 3: a case of one series has an empty ``series`` list."""
    return {**raw, "series": raw.get("series", [])}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2, 2: _v2_to_v3}


# ---------------------------------------------------------------------------- manifest model
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


_Unit = Annotated[float, Field(ge=0.0, le=1.0)]


class GeometryModel(_Strict):
    size: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_lps: tuple[float, float, float]
    direction: list[float] = Field(min_length=9, max_length=9)


class ImageModel(_Strict):
    geometry: GeometryModel
    modality: str = "OT"
    series_uid: str = ""
    description: str = ""
    units: str = ""
    window: tuple[float, float] | None = None  # (centre, width) in image units


class StructureModel(_Strict):
    name: str = Field(min_length=1)
    role: Role
    label: int = Field(ge=1, le=65535)
    layer: int = Field(ge=0)
    color: tuple[_Unit, _Unit, _Unit]
    margin_mm: float = Field(ge=0.0, le=MAX_MARGIN_MM)
    visible: bool = True
    opacity: float = Field(default=1.0, ge=0.0, le=1.0)
    description: str = ""
    mesh: str | None = None


class ProvenanceModel(_Strict):
    source_series_uids: list[str] = []
    source_files_sha256: dict[str, str] = {}
    software: str = ""
    created_utc: str = ""
    import_warnings: list[str] = []
    notes: list[str] = []
    automatic: dict[str, dict[str, str]] = {}  # structure -> method, quality flag (provenance)


class Manifest(_Strict):
    format: Literal["surgiplan.case"]
    schema_version: int
    coordinate_system: Literal["LPS"]
    units: Literal["mm"]
    created_utc: str
    software: str
    patient_ref: str = ""
    patient: dict[str, str] | None = None  # only with include_identifiers=True
    image: ImageModel
    structures: list[StructureModel] = []
    provenance: ProvenanceModel
    source: SourceSeries | None = None  # the DICOM series to reference (source_series.py)
    series: list[SeriesModel] = []  # further series of the patient (bundle_series.py)
    files: dict[str, str]


# ---------------------------------------------------------------------------- saving
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _safe_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "structure"


def mesh_to_vtp(mesh: SurfaceMesh) -> bytes:
    """A triangle mesh as VTK XML PolyData bytes (zlib-compressed, base64 inline)."""
    from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
    from vtkmodules.vtkIOXML import vtkXMLPolyDataWriter

    points = vtkPoints()
    points.SetData(numpy_to_vtk(np.ascontiguousarray(mesh.vertices_lps), deep=True))
    offsets = np.arange(0, 3 * mesh.n_triangles + 1, 3, dtype=np.int64)
    cells = vtkCellArray()
    cells.SetData(numpy_to_vtkIdTypeArray(offsets, deep=True),
                  numpy_to_vtkIdTypeArray(mesh.faces.reshape(-1).astype(np.int64), deep=True))
    polydata = vtkPolyData()
    polydata.SetPoints(points)
    polydata.SetPolys(cells)
    writer = vtkXMLPolyDataWriter()
    writer.SetInputData(polydata)
    writer.SetDataModeToBinary()
    writer.SetWriteToOutputString(True)
    writer.Write()
    return writer.GetOutputString().encode("ascii")


def vtp_to_mesh(data: bytes, *, path: str) -> SurfaceMesh:
    """Read VTK XML PolyData bytes holding only triangles."""
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkIOXML import vtkXMLPolyDataReader

    reader = vtkXMLPolyDataReader()
    reader.SetReadFromInputString(True)
    reader.SetInputString(data.decode("ascii", errors="replace"))
    reader.Update()
    polydata = reader.GetOutput()
    if polydata is None or polydata.GetPoints() is None:
        raise BadInputError("the surface mesh cannot be read", path=path,
                            action="Re-save the case (meshes are recomputed from the labels)")
    offsets = vtk_to_numpy(polydata.GetPolys().GetOffsetsArray())
    if np.any(np.diff(offsets) != 3):
        raise BadInputError("the surface mesh has non-triangle cells", path=path,
                            action="Re-save the case (meshes are recomputed from the labels)")
    faces = vtk_to_numpy(polydata.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    return SurfaceMesh(vtk_to_numpy(polydata.GetPoints().GetData()).copy(), faces.copy())


def _image_model(image: ImageVolume) -> dict[str, Any]:
    window = None
    if image.window_center is not None and image.window_width:
        window = [float(image.window_center), float(image.window_width)]
    return {
        "geometry": image.geometry.to_json(), "modality": image.modality,
        "series_uid": image.series_uid, "description": image.description,
        "units": image.units, "window": window,
    }


def _structure_model(s: Structure, mesh: str | None) -> dict[str, Any]:
    return {
        "name": s.name, "role": s.role.value, "label": int(s.label), "layer": int(s.layer),
        "color": [float(c) for c in s.color or (0.5, 0.5, 0.5)],
        "margin_mm": float(s.margin_mm), "visible": bool(s.visible),
        "opacity": float(s.opacity), "description": s.description, "mesh": mesh,
    }


def _patient_identifiers(twin: Twin) -> dict[str, str]:
    patient = twin.image.metadata.get("patient") or {}
    return {k: str(v) for k, v in patient.items() if v not in (None, "")}


def bundle_entries(twin: Twin, *, include_identifiers: bool = False) -> dict[str, bytes]:
    """Every entry of the bundle of ``twin`` (manifest last), as name -> bytes."""
    entries: dict[str, bytes] = {
        IMAGE_ENTRY: nrrd_bytes(twin.image.array, nrrd_geometry_header(twin.geometry))}
    if twin.segmentation.layers:
        entries[SEGMENTATION_ENTRY] = seg_nrrd_bytes(twin.segmentation)
    cached = set(twin.cached_surface_names())
    structures = []
    for n, s in enumerate(twin.structures):
        mesh_name = None
        if s.name in cached:
            mesh_name = f"{MESH_FOLDER}{n:03d}_{_safe_stem(s.name)}.vtp"
            entries[mesh_name] = mesh_to_vtp(twin.surface(s.name))
        structures.append(_structure_model(s, mesh_name))
    series = add_series_entries(twin, entries)
    for name, data in twin.bundle_extras.items():
        if _safe_entry_name(name) and name.startswith(EXTRA_FOLDERS):
            entries[name] = data
    ident = source_series.bundle_fields(twin, include_identifiers=include_identifiers)
    manifest = {
        "format": FORMAT, "schema_version": SCHEMA_VERSION, "coordinate_system": "LPS",
        "units": "mm", "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "software": f"SurgiPlan {__version__}", "patient_ref": twin.patient_ref,
        "image": {**_image_model(twin.image), **ident["image"]}, "structures": structures,
        "provenance": {**twin.provenance.to_json(), **ident["provenance"]}, "series": series,
        "files": {name: _sha256(data) for name, data in entries.items()},
    }
    if ident["source"] is not None:
        manifest["source"] = ident["source"]
    if include_identifiers:
        manifest["patient"] = _patient_identifiers(twin)
    entries[MANIFEST] = json.dumps(manifest, indent=1).encode("utf-8")
    return entries


# ---------------------------------------------------------------------------- lost updates
class CaseChangedError(BadInputError):
    """The case file changed on disk since this twin was loaded or last saved there (another
    SurgiPlan window or the command line wrote it); saving would silently drop that work."""

    def __init__(self, path: Path, changed: list[str]) -> None:
        what = f" ({', '.join(changed[:4])} differ)" if changed else ""
        super().__init__(
            f"the case was changed on disk by another SurgiPlan window or command since it was "
            f"opened{what}; saving now would drop those changes", path=path,
            action="Reload it, save under another name, or overwrite on purpose")
        self.case_path = path
        self.changed = changed


def file_stamp(path: str | Path) -> str | None:
    """The identity of a file's current version (device, inode, size, mtime in ns); None if
    there is no file. Every atomic save makes a new inode, so any rewrite changes it."""
    try:
        st = Path(path).stat()
    except FileNotFoundError:
        return None
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _same_file(a: Path, b: Path) -> bool:
    return Path(os.path.abspath(a)) == Path(os.path.abspath(b))


def changed_on_disk(twin: Twin, path: str | Path) -> bool:
    """True when ``path`` is the bundle ``twin`` was loaded from (or last saved to) and the
    file has been rewritten since by someone else."""
    source = twin.bundle_source
    if source is None or not _same_file(Path(source[0]), Path(path)):
        return False
    return file_stamp(path) != source[1]


def _changed_entries(twin: Twin, path: Path) -> list[str]:
    """The plans entries that differ between ``twin`` and the file at ``path`` (best effort)."""
    try:
        on_disk = read_extras(path)
    except BadInputError:
        return []
    names = set(on_disk) | set(twin.bundle_extras)
    return sorted(n for n in names if on_disk.get(n) != twin.bundle_extras.get(n))


def _check_unchanged(twin: Twin, path: Path) -> None:
    if changed_on_disk(twin, path):
        raise CaseChangedError(path, _changed_entries(twin, path))


def _write_archive(handle: Any, entries: dict[str, bytes], cancel: CancelToken | None,
                   progress: ProgressCallback | None) -> None:
    """Write the entries (manifest last) and the manifest's SHA-256 as the ZIP comment."""
    with zipfile.ZipFile(handle, "w") as archive:
        for n, (name, data) in enumerate(entries.items()):
            check(cancel)
            report(progress, 0.5 + 0.5 * n / len(entries), f"writing {name}")
            stored = name.endswith((".nrrd", ".vtp"))  # already compressed
            archive.writestr(name, data, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
        archive.comment = MANIFEST_HASH_PREFIX + _sha256(entries[MANIFEST]).encode("ascii")


def save_bundle(
    twin: Twin,
    path: str | Path,
    *,
    include_identifiers: bool = False,
    overwrite_changes: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Save ``twin`` as a case bundle, atomically; returns the path written.

    ``include_identifiers=False`` (default) stores no patient name, ID or birth date; the
    pseudonymous ``twin.patient_ref`` identifies the case. A full disk raises ``BadInputError``
    and leaves any previous file at ``path`` untouched; so does cancelling. When ``path`` is the
    file the twin came from and someone else rewrote it since, :class:`CaseChangedError` is
    raised and nothing is written, unless ``overwrite_changes``.
    """
    path = Path(path)
    if not overwrite_changes:
        _check_unchanged(twin, path)
    with atomic_write(path) as handle:
        report(progress, 0.0, "encoding the case")
        entries = bundle_entries(twin, include_identifiers=include_identifiers)
        _write_archive(handle, entries, cancel, progress)
        if not overwrite_changes:
            _check_unchanged(twin, path)  # again, just before the rename
    twin.bundle_source = (str(path), file_stamp(path))
    return path


# ---------------------------------------------------------------------------- loading
def _safe_entry_name(name: str) -> bool:
    """False for absolute paths, drive letters, backslashes, '..' or empty parts."""
    if not name or name.startswith(("/", "\\")) or "\\" in name or re.match(r"^[A-Za-z]:", name):
        return False
    parts = PurePosixPath(name).parts
    return all(p not in ("", ".", "..") for p in parts) and ":" not in name


def _upgrade(raw: Any, path: Path) -> dict[str, Any]:
    """Check format and version; bring an older manifest up to SCHEMA_VERSION."""
    version = document_version(raw, fmt=FORMAT, document=MANIFEST, what="case", path=path,
                               action="Open a .surgiplan file saved by SurgiPlan")
    return upgrade(raw, version, current=SCHEMA_VERSION, migrations=MIGRATIONS, path=path,
                   subject="this case was", what="case")


# Largest uncompressed entry we accept (a zip-bomb guard; a 1024x1024x2000 int16 volume is 4 GiB).
MAX_ENTRY_BYTES = 4 << 30


class _Reader:
    """Hash-checked access to the entries of an open bundle."""

    def __init__(self, archive: zipfile.ZipFile, manifest: Manifest, path: Path) -> None:
        self.archive, self.manifest, self.path = archive, manifest, path

    def fail(self, entry: str, problem: str) -> BadInputError:
        return BadInputError(f"entry {entry!r} {problem}", path=self.path,
                             action="The case file is damaged: open a backup copy")

    def cap(self, entry: str) -> int:
        """The most bytes ``entry`` may hold: voxel entries from the manifest's geometry."""
        if entry.startswith(MESH_FOLDER):
            return MAX_MESH_BYTES
        if entry.startswith(EXTRA_FOLDERS):
            return MAX_EXTRA_BYTES
        if entry.startswith(SERIES_FOLDER):
            return series_entry_cap(self.manifest.series, entry) or MAX_EXTRA_BYTES
        voxels = int(np.prod(self.manifest.image.geometry.size, dtype=np.int64))
        layers = max(1, len(self.manifest.structures)) if entry == SEGMENTATION_ENTRY else 1
        # gzip of incompressible data is a little larger than the data itself
        return min(MAX_ENTRY_BYTES, int(voxels * 8 * layers * 1.01) + NRRD_HEADER_SLACK)

    def verify(self, entry: str) -> None:
        """Stream ``entry`` through SHA-256 (bounded by :meth:`cap`) before it is used."""
        if entry not in self.manifest.files:
            raise self.fail(entry, f"is not listed in {MANIFEST}")
        try:
            digest = stream_sha256(self.archive, entry, cap=self.cap(entry), path=self.path)
        except KeyError:
            raise self.fail(entry, "is missing") from None
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
            raise self.fail(entry, f"cannot be read ({exc})") from exc
        if digest != self.manifest.files[entry]:
            raise self.fail(entry, "does not match its SHA-256 in the manifest")

    def open(self, entry: str) -> Any:
        """A stream of ``entry`` once its hash is verified."""
        self.verify(entry)
        return self.archive.open(entry)

    def read(self, entry: str) -> bytes:
        self.verify(entry)
        try:
            return self.archive.read(entry)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
            raise self.fail(entry, f"cannot be read ({exc})") from exc


def _open_archive(path: Path) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise BadInputError("no such case file", path=path, action="Check the path") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadInputError(f"not a readable SurgiPlan case file ({exc})", path=path,
                            action="The file is damaged or not a .surgiplan case") from exc
    names = archive.namelist()
    bad = [n for n in names if not _safe_entry_name(n)]
    if bad:
        archive.close()
        raise BadInputError(f"unsafe entry name {bad[0]!r} (absolute path, drive or '..')",
                            path=path, action="Do not open this file; it was not made by SurgiPlan")
    too_big = [i.filename for i in archive.infolist() if i.file_size > MAX_ENTRY_BYTES]
    if too_big:
        archive.close()
        raise BadInputError(f"entry {too_big[0]!r} declares more than "
                            f"{MAX_ENTRY_BYTES >> 30} GiB uncompressed", path=path,
                            action="Do not open this file; it was not made by SurgiPlan")
    if len(set(names)) != len(names):
        archive.close()
        raise BadInputError("the case file holds duplicate entries", path=path,
                            action="The case file is damaged: open a backup copy")
    try:
        check_declared_total(archive, path)
    except BadInputError:
        archive.close()
        raise
    return archive


def _manifest_bytes(archive: zipfile.ZipFile, path: Path) -> bytes:
    """The manifest's bytes, size-capped and checked against the SHA-256 in the ZIP comment."""
    digest = stream_sha256(archive, MANIFEST, cap=MAX_MANIFEST_BYTES, path=path)
    comment = archive.comment
    recorded = comment[len(MANIFEST_HASH_PREFIX):].decode("ascii", "replace")
    if comment.startswith(MANIFEST_HASH_PREFIX) and recorded != digest:
        raise BadInputError(f"entry {MANIFEST!r} was altered after saving (its SHA-256 does "
                            "not match the one recorded in the file)", path=path,
                            action="Do not trust this copy: open a backup copy")
    return archive.read(MANIFEST)


def _read_manifest(archive: zipfile.ZipFile, path: Path) -> Manifest:
    try:
        data = _manifest_bytes(archive, path)
    except KeyError:
        raise BadInputError(f"entry {MANIFEST!r} is missing", path=path,
                            action="Open a .surgiplan file saved by SurgiPlan") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as exc:
        raise BadInputError(f"entry {MANIFEST!r} cannot be read ({exc})", path=path,
                            action="The case file is damaged: open a backup copy") from exc
    raw = strict_json(data, entry=MANIFEST, path=path)
    manifest = validated(Manifest, _upgrade(raw, path), what=f"entry {MANIFEST!r}", path=path,
                         action="The case file is damaged: open a backup copy")
    bad = [n for n, h in manifest.files.items() if not re.match(_SHA256, h)]
    unlisted = set(archive.namelist()) - set(manifest.files) - {MANIFEST}
    if bad or unlisted:
        entry = bad[0] if bad else sorted(unlisted)[0]
        raise BadInputError(f"entry {entry!r} has no valid hash in {MANIFEST}", path=path,
                            action="The case file is damaged or was altered: open a backup copy")
    return manifest


def _image_geometry(reader: _Reader) -> ImageGeometry:
    try:
        return ImageGeometry.from_json(reader.manifest.image.geometry.model_dump())
    except ValueError as exc:
        raise reader.fail(MANIFEST, f"has an invalid image geometry ({exc})") from exc


def _image_facts(reader: _Reader) -> dict[str, Any]:
    info = reader.manifest.image
    centre, width = info.window if info.window else (None, None)
    return {"modality": info.modality, "description": info.description,
            "series_uid": info.series_uid, "units": info.units, "window_center": centre,
            "window_width": width,
            "warnings": list(reader.manifest.provenance.import_warnings)}


def _load_image(reader: _Reader) -> ImageVolume:
    geometry = _image_geometry(reader)
    where = f"{reader.path}!{IMAGE_ENTRY}"
    with reader.open(IMAGE_ENTRY) as handle:
        array, header = read_nrrd_bounded(handle, max_bytes=geometry.n_voxels * 8, where=where)
    stored = geometry_from_nrrd_header(header, path=where)
    if array.shape != geometry.shape_zyx or stored != geometry:
        raise reader.fail(IMAGE_ENTRY, "has a geometry different from the manifest's")
    return ImageVolume(array=array, geometry=geometry, **_image_facts(reader))


def _lazy_image(reader: _Reader) -> ImageVolume:
    """The image with its voxels read on first use: hash and header checked now; the voxels,
    when read, are refused if the file's image entry changed since (run again)."""
    geometry = _image_geometry(reader)
    where = f"{reader.path}!{IMAGE_ENTRY}"
    with reader.open(IMAGE_ENTRY) as handle:
        header, dtype = read_nrrd_header(handle, max_bytes=geometry.n_voxels * 8, where=where)
    if geometry_from_nrrd_header(header, path=where) != geometry:
        raise reader.fail(IMAGE_ENTRY, "has a geometry different from the manifest's")
    path, digest, cap = reader.path, reader.manifest.files[IMAGE_ENTRY], reader.cap(IMAGE_ENTRY)

    def load() -> np.ndarray:
        with _open_archive(path) as archive:
            try:
                same = stream_sha256(archive, IMAGE_ENTRY, cap=cap, path=path) == digest
            except KeyError:
                same = False
            if not same:
                raise BadInputError("the case file changed on disk while it was in use (its "
                                    "image differs from the one loaded)", path=path,
                                    action="Run the command again")
            stream: Any = archive.open(IMAGE_ENTRY)  # a zip member stream (has readinto)
            with stream:
                array, _ = read_nrrd_bounded(stream, max_bytes=geometry.n_voxels * 8,
                                             where=where)
        return array.reshape(geometry.shape_zyx)

    return LazyImageVolume(load, geometry, dtype.newbyteorder("="), **_image_facts(reader))


def _load_segmentation(reader: _Reader, geometry: ImageGeometry) -> Segmentation:
    models = reader.manifest.structures
    if SEGMENTATION_ENTRY not in reader.manifest.files:
        if models:
            raise reader.fail(SEGMENTATION_ENTRY, "is missing but the manifest lists structures")
        return Segmentation(geometry=geometry)
    where = f"{reader.path}!{SEGMENTATION_ENTRY}"
    with reader.open(SEGMENTATION_ENTRY) as handle:
        voxels, header = read_nrrd_layers(
            handle, max_bytes=geometry.n_voxels * 8 * max(1, len(models)), where=where)
    seg = seg_nrrd_from_arrays(voxels, header, path=where)
    if not seg.geometry.same_grid(geometry):
        raise reader.fail(SEGMENTATION_ENTRY, "is not on the image grid")
    try:
        structures = [
            Structure(name=m.name, role=m.role, label=m.label, layer=m.layer, color=m.color,
                      margin_mm=m.margin_mm, visible=m.visible, opacity=m.opacity,
                      description=m.description)
            for m in models
        ]
        return Segmentation(geometry=geometry, layers=seg.layers, structures=structures)
    except ValueError as exc:
        raise reader.fail(MANIFEST, f"has structures that do not fit the labels ({exc})") from exc


def _load_meshes(reader: _Reader) -> dict[str, SurfaceMesh]:
    return {
        m.name: vtp_to_mesh(reader.read(m.mesh), path=f"{reader.path}!{m.mesh}")
        for m in reader.manifest.structures if m.mesh
    }


def load_bundle(
    path: str | Path,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    lazy_image: bool = False,
) -> Twin:
    """Load a case bundle, checking its schema version and every entry's SHA-256.

    ``lazy_image``: the image voxels are read on first use of ``twin.image.array`` (a one-shot
    command that never reads them, a path search, does not hold them)."""
    path = Path(path)
    remove_stale_temps(path.parent, name=path.name)  # left by a save that was killed
    stamp = file_stamp(path)
    with _open_archive(path) as archive:
        manifest = _read_manifest(archive, path)
        reader = _Reader(archive, manifest, path)
        report(progress, 0.05, "reading the image")
        image = _lazy_image(reader) if lazy_image else _load_image(reader)
        check(cancel)
        report(progress, 0.6, "reading the segmentation")
        segmentation = _load_segmentation(reader, image.geometry)
        check(cancel)
        report(progress, 0.9, "reading surfaces")
        meshes = _load_meshes(reader)
        series = load_series(reader, manifest.series)
        extras = {name: reader.read(name) for name in manifest.files
                  if name.startswith(EXTRA_FOLDERS)}
        missing = [n for n in manifest.files if n not in archive.namelist()]
        if missing:
            raise reader.fail(missing[0], "is missing")
    if manifest.patient:
        image.metadata["patient"] = dict(manifest.patient)
    source_series.attach(image, manifest.source)
    twin = Twin(image, segmentation, patient_ref=manifest.patient_ref,
                provenance=Provenance.from_json(manifest.provenance.model_dump()))
    twin.set_cached_surfaces(meshes)
    twin.series = series
    twin.bundle_extras.update(extras)
    twin.bundle_source = (str(path), stamp)
    report(progress, 1.0, "case loaded")
    return twin


# ---------------------------------------------------------------------------- extras only
def read_extras(path: str | Path) -> dict[str, bytes]:
    """The ``plans/...`` entries of a bundle, hash-checked, without decoding image or labels."""
    path = Path(path)
    with _open_archive(path) as archive:
        manifest = _read_manifest(archive, path)
        reader = _Reader(archive, manifest, path)
        return {name: reader.read(name) for name in manifest.files
                if name.startswith(EXTRA_FOLDERS)}


def update_extras(path: str | Path, entries: dict[str, bytes | None]) -> Path:
    """Write (bytes) or drop (None) ``plans/...`` entries of a bundle in place, atomically.

    Every other entry is copied byte-for-byte after its SHA-256 is checked; the manifest keeps
    its content and gets the new entries' hashes. Cheaper than load + save for plan edits.
    """
    path = Path(path)
    bad = [n for n in entries if not (_safe_entry_name(n) and n.startswith(EXTRA_FOLDERS))]
    if bad:
        raise ValueError(f"not an extra entry name: {bad[0]!r}")
    stamp = file_stamp(path)
    with _open_archive(path) as archive:
        manifest = _read_manifest(archive, path)
        reader = _Reader(archive, manifest, path)
        kept = {n: reader.read(n) for n in manifest.files if n not in entries}
    kept.update({n: data for n, data in entries.items() if data is not None})
    raw = manifest.model_dump(mode="json")
    if raw.get("patient") is None:
        raw.pop("patient", None)
    raw["files"] = {name: _sha256(data) for name, data in kept.items()}
    kept[MANIFEST] = json.dumps(raw, indent=1).encode("utf-8")
    with atomic_write(path) as handle:
        _write_archive(handle, kept, None, None)
        if file_stamp(path) != stamp:  # another writer replaced it while we were copying
            raise CaseChangedError(path, sorted(entries))
    return path
