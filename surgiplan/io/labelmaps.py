"""Label maps and volumes in NRRD / NIfTI files, label-name JSON, and putting labels on a grid.

Every array returned here is ``(nz, ny, nx)`` with an :class:`ImageGeometry` in LPS mm. The
files' own frames are converted at this boundary: NRRD ``space`` LPS is kept, RAS (and LAS) are
turned into LPS by negating the flipped axes; NIfTI's world frame is always RAS, so its
sform/qform affine is multiplied by ``diag(-1, -1, 1, 1)``.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from surgiplan.errors import BadInputError
from surgiplan.io.atomic import write_bytes_atomic
from surgiplan.model.frames import RAS_FROM_LPS
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role

NRRD_SUFFIXES = (".nrrd", ".nhdr")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
LPS_SPACE = "left-posterior-superior"
# NRRD space name -> sign flips that take its x, y, z to L, P, S.
_NRRD_SPACES = {
    "left-posterior-superior": (1.0, 1.0, 1.0),
    "lps": (1.0, 1.0, 1.0),
    "right-anterior-superior": (-1.0, -1.0, 1.0),
    "ras": (-1.0, -1.0, 1.0),
    "left-anterior-superior": (1.0, -1.0, 1.0),
    "las": (1.0, -1.0, 1.0),
}
# NRRD gzip level for everything SurgiPlan writes: 1 is ~5x faster than 9 for ~10 % more bytes.
NRRD_GZIP_LEVEL = 1


def file_kind(path: str | Path) -> Literal["nrrd", "nifti"] | None:
    """The file type from its name: "nrrd" (``.seg.nrrd`` too), "nifti", or None."""
    name = Path(path).name.lower()
    if name.endswith(NRRD_SUFFIXES):
        return "nrrd"
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    return None


# ---------------------------------------------------------------------------- geometry helpers
def geometry_from_matrix(
    ijk_to_lps: np.ndarray, size: tuple[int, int, int], *, path: str | Path
) -> ImageGeometry:
    """Geometry from a 4x4 (or 3x4) voxel-index -> LPS matrix; shear or zero spacing is refused."""
    m = np.asarray(ijk_to_lps, dtype=float)
    axes = m[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    if not np.all(np.isfinite(m[:3, :4])) or np.any(spacing <= 0):
        raise BadInputError(
            "the voxel-to-patient matrix has a zero or undefined axis",
            path=path, action="Re-export the file with a valid orientation and spacing",
        )
    try:
        return ImageGeometry(size, tuple(spacing), tuple(m[:3, 3]), axes / spacing)
    except ValueError as exc:
        raise BadInputError(
            f"the voxel grid is sheared or otherwise not a rectangular grid ({exc})",
            path=path, action="Resample it to a rectangular grid in the exporting program",
        ) from exc


def geometry_from_nrrd_header(header: dict[str, Any], *, path: str | Path) -> ImageGeometry:
    """LPS geometry of the last three (spatial) axes of a pynrrd header."""
    space = str(header.get("space", "")).strip().lower()
    if space not in _NRRD_SPACES:
        problem = (f"its NRRD space {header['space']!r} is not LPS or RAS" if space
                   else "it has no NRRD 'space' field, so its position in the patient is unknown")
        raise BadInputError(problem, path=path,
                            action="Re-export it with space left-posterior-superior")
    directions = np.asarray(header.get("space directions"), dtype=float)[-3:]
    origin = np.asarray(header.get("space origin", [np.nan] * 3), dtype=float)
    if directions.shape != (3, 3) or origin.shape != (3,) or not np.all(np.isfinite(origin)):
        raise BadInputError("its NRRD 'space directions' / 'space origin' are missing or invalid",
                            path=path, action="Re-export it with its geometry")
    flip = np.asarray(_NRRD_SPACES[space])
    m = np.eye(4)
    m[:3, :3] = flip[:, None] * directions.T  # rows of 'space directions' are the axis vectors
    m[:3, 3] = flip * origin
    size = tuple(int(n) for n in np.asarray(header["sizes"])[-3:])  # NRRD order: x, y, z
    return geometry_from_matrix(m, size, path=path)  # type: ignore[arg-type]


def nrrd_geometry_header(geometry: ImageGeometry) -> dict[str, Any]:
    """pynrrd header fields placing a C-order ``(nz, ny, nx)`` array on ``geometry`` (LPS)."""
    axes = geometry.direction * np.asarray(geometry.spacing_mm)[None, :]
    return {
        "space": LPS_SPACE,
        "space directions": axes.T.copy(),
        "space origin": np.asarray(geometry.origin_lps, dtype=float),
        "kinds": ["domain", "domain", "domain"],
        "encoding": "gzip",
    }


# ---------------------------------------------------------------------------- NRRD
def read_nrrd_stream(
    handle: io.BufferedIOBase, *, path: str | Path, allow_detached: bool = False
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read an attached-data NRRD from an open binary stream; C-order array and pynrrd header.

    ``allow_detached=False`` refuses headers pointing at another data file (a bundle entry must
    never make us read a file elsewhere on disk).
    """
    import nrrd

    try:
        header = nrrd.read_header(handle)
        if not allow_detached and ("data file" in header or "datafile" in header):
            raise BadInputError("the NRRD header points at a separate data file", path=path,
                                action="Store the voxels inside the NRRD file")
        filename = str(path) if allow_detached else None
        data = nrrd.read_data(header, handle, filename, index_order="C")
    except (nrrd.NRRDError, OSError, ValueError, EOFError) as exc:
        raise BadInputError(f"not a readable NRRD file ({exc})", path=path,
                            action="Check the file is a complete NRRD image") from exc
    return data, header


def read_nrrd(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read an NRRD file (attached or detached data); C-order array and pynrrd header."""
    try:
        with open(path, "rb") as handle:
            return read_nrrd_stream(handle, path=path, allow_detached=True)
    except OSError as exc:
        raise BadInputError(f"cannot open the file ({exc.strerror})", path=path,
                            action="Check the path") from exc


def nrrd_bytes(array: np.ndarray, header: dict[str, Any]) -> bytes:
    """Encode a C-order array and header as an attached, gzip-compressed NRRD file."""
    import nrrd

    buffer = io.BytesIO()
    nrrd.write(buffer, np.ascontiguousarray(array), dict(header),
               compression_level=NRRD_GZIP_LEVEL, index_order="C")
    return buffer.getvalue()


def _spatial_3d(array: np.ndarray, header: dict[str, Any], *, path: str | Path) -> np.ndarray:
    """The 3D spatial array of a NRRD read in C order (a leading list axis of 1 is dropped)."""
    if array.ndim == 4 and array.shape[-1] == 1:  # C order: a leading NRRD axis is last here
        array = array[..., 0]
    if array.ndim != 3:
        raise BadInputError(f"the image has {array.ndim} dimensions (sizes "
                            f"{list(header.get('sizes', []))}), SurgiPlan needs a 3D volume",
                            path=path, action="Export a single 3D volume")
    return array


# ---------------------------------------------------------------------------- NIfTI
def read_nifti(path: str | Path) -> tuple[np.ndarray, ImageGeometry]:
    """Read a NIfTI-1/2 volume as ``(nz, ny, nx)`` with its geometry converted RAS -> LPS."""
    import nibabel as nib

    try:
        image = nib.load(str(path))
        if not isinstance(image, nib.Nifti1Image):  # Nifti2Image is a subclass
            raise ValueError(f"it is a {type(image).__name__}, not a NIfTI-1/2 image")
        data = np.asanyarray(image.dataobj)
    except (OSError, ValueError, nib.filebasedimages.ImageFileError) as exc:
        raise BadInputError(f"not a readable NIfTI file ({exc})", path=path,
                            action="Check the file is a complete NIfTI image") from exc
    header = image.header
    if int(header["sform_code"]) <= 0 and int(header["qform_code"]) <= 0:
        raise BadInputError("it has neither an sform nor a qform, so its position in the "
                            "patient is unknown", path=path,
                            action="Re-export it with its scanner geometry")
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise BadInputError(f"the image has shape {data.shape}, SurgiPlan needs a 3D volume",
                            path=path, action="Export a single 3D volume")
    _check_qform_sform(header, data.shape, path=path)
    ijk_to_lps = RAS_FROM_LPS @ np.asarray(image.affine, dtype=float)
    geometry = geometry_from_matrix(ijk_to_lps, data.shape, path=path)
    return np.ascontiguousarray(data.transpose(2, 1, 0)), geometry


def _corners(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """World positions (mm) of the 8 corner voxel centres of a grid of ``shape``."""
    ijk = np.array([[i, j, k, 1.0] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1)
                    for k in (0, shape[2] - 1)])
    return (ijk @ np.asarray(affine, float).T)[:, :3]


def _check_qform_sform(header: Any, shape: tuple[int, ...], *, path: str | Path) -> None:
    """Refuse a NIfTI whose qform and sform are both set but place the voxels differently.

    nibabel (like most readers) silently prefers the sform; when the two disagree (a header
    edited by one tool and not the other: mirrored, shifted or rotated) nobody knows which is
    right, so the file is refused - as dcm2niix and ITK-SNAP warn - with both orientations and
    the largest displacement of a corner voxel. Agreement within a tenth of the smallest
    voxel spacing (float32 rounding of the quaternion) is accepted.
    """
    import nibabel as nib

    if int(header["sform_code"]) <= 0 or int(header["qform_code"]) <= 0:
        return
    qform, sform = header.get_qform(), header.get_sform()
    if not (np.all(np.isfinite(qform)) and np.all(np.isfinite(sform))):
        return
    gap_mm = float(np.max(np.linalg.norm(_corners(qform, shape) - _corners(sform, shape),
                                         axis=1)))
    spacing = np.linalg.norm(np.asarray(sform, float)[:3, :3], axis=0)
    if gap_mm <= 0.1 * max(float(np.min(spacing)), 1e-6):
        return
    q_axes, s_axes = "".join(nib.aff2axcodes(qform)), "".join(nib.aff2axcodes(sform))
    how = (f"the qform says the axes point {q_axes}, the sform {s_axes}" if q_axes != s_axes
           else f"both say {q_axes}")
    raise BadInputError(
        f"its qform and sform disagree ({how}; a corner voxel lands up to {gap_mm:.1f} mm "
        "apart), so which side of the patient is which is unknown", path=path,
        action="Fix the header in the program that made it so both agree (e.g. set the wrong "
        "one from the right one with fslorient), or re-export the label map from its source")


def nifti_bytes(array: np.ndarray, geometry: ImageGeometry, *, gzipped: bool) -> bytes:
    """Encode a ``(nz, ny, nx)`` array on ``geometry`` as NIfTI-1 (affine converted to RAS)."""
    import nibabel as nib

    affine_ras = RAS_FROM_LPS @ geometry.index_to_lps_matrix
    image = nib.Nifti1Image(np.ascontiguousarray(array.transpose(2, 1, 0)), affine_ras)
    image.set_sform(affine_ras, code=1)
    image.set_qform(affine_ras, code=1)
    image.header.set_xyzt_units("mm", "sec")
    data = image.to_bytes()
    return gzip.compress(data, compresslevel=1) if gzipped else data


# ---------------------------------------------------------------------------- volumes
def read_volume_file(path: str | Path) -> tuple[np.ndarray, ImageGeometry]:
    """Read a 3D NRRD or NIfTI volume as ``(nz, ny, nx)`` plus its LPS geometry."""
    if not Path(path).is_file():
        raise BadInputError("no such file", path=path, action="Check the path")
    kind = file_kind(path)
    if kind == "nifti":
        return read_nifti(path)
    if kind == "nrrd":
        array, header = read_nrrd(path)
        array = _spatial_3d(array, header, path=path)
        return array, geometry_from_nrrd_header(header, path=path)
    raise BadInputError("unknown volume file type", path=path,
                        action="Give an .nrrd, .nhdr, .nii or .nii.gz file")


def _as_labels(array: np.ndarray, *, path: str | Path) -> np.ndarray:
    """Integer label array; whole-number floats are accepted, anything else refused."""
    if array.dtype.kind in "iub":
        labels = array
    elif array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array % 1 == 0):
        labels = array.astype(np.int64)
    else:
        raise BadInputError(f"it holds non-integer values ({array.dtype}), not a label map",
                            path=path, action="Give a label map with whole-number labels")
    if labels.size and (labels.min() < 0 or labels.max() > 65535):
        raise BadInputError(f"labels must be 0..65535, found {labels.min()}..{labels.max()}",
                            path=path, action="Renumber the labels")
    return labels


def read_label_map(path: str | Path) -> tuple[np.ndarray, ImageGeometry]:
    """Read an integer label map (NRRD or NIfTI) as ``(nz, ny, nx)`` plus its LPS geometry."""
    array, geometry = read_volume_file(path)
    return _as_labels(array, path=path), geometry


def write_label_map(labels: np.ndarray, geometry: ImageGeometry, path: str | Path) -> Path:
    """Write a ``(nz, ny, nx)`` label map as .nrrd (LPS) or .nii/.nii.gz (RAS), atomically."""
    path = Path(path)
    labels = _as_labels(np.asarray(labels), path=path)
    dtype = np.uint8 if (labels.size == 0 or labels.max() < 256) else np.uint16
    labels = labels.astype(dtype, copy=False)
    if labels.shape != geometry.shape_zyx:
        raise ValueError(f"labels shape {labels.shape} != grid {geometry.shape_zyx}")
    kind = file_kind(path)
    if kind == "nrrd" and path.name.lower().endswith(".nrrd"):
        data = nrrd_bytes(labels, nrrd_geometry_header(geometry))
    elif kind == "nifti":
        data = nifti_bytes(labels, geometry, gzipped=path.name.lower().endswith(".gz"))
    else:
        raise BadInputError("unknown label-map file type", path=path,
                            action="Save as .nrrd, .nii or .nii.gz")
    return write_bytes_atomic(path, data)


# ---------------------------------------------------------------------------- onto the image
def label_map_onto_image(
    labels: np.ndarray,
    label_geometry: ImageGeometry,
    image_geometry: ImageGeometry,
    *,
    path: str | Path,
    warnings_out: list[str] | None = None,
) -> np.ndarray:
    """The label map on the image grid ``(nz, ny, nx)``.

    Same grid: returned as is. Different but overlapping grid: resampled with label
    (nearest-neighbour) interpolation and a sentence appended to ``warnings_out`` (naming the
    file by its name only: folder names stay out of saved cases). No overlap:
    ``BadInputError`` naming the file and both LPS extents.
    """
    if label_geometry.same_grid(image_geometry):
        return labels
    if not label_geometry.overlaps(image_geometry):
        raise BadInputError(
            f"the label map does not overlap the image (label map LPS extent "
            f"{_extent_text(label_geometry)} mm, image {_extent_text(image_geometry)} mm)",
            path=path, action="Give the label map made for this image",
        )
    exact = _voxels_reordered(labels, label_geometry, image_geometry)
    if exact is not None:  # the image's own voxel centres in another axis order: no resampling
        if warnings_out is not None:
            warnings_out.append(f"{Path(path).name}: the label map holds the image's voxels in "
                                f"another order ({grid_difference(label_geometry, image_geometry)}"
                                "); they were reordered onto the image grid exactly.")
        return exact
    from surgiplan.processing.resample import resample_to_grid

    resampled = resample_to_grid(labels, label_geometry, image_geometry, interpolation="label")
    if warnings_out is not None:
        warnings_out.append(
            f"{Path(path).name}: the label map's grid differs from the image grid in "
            f"{grid_difference(label_geometry, image_geometry)}; it was resampled onto the "
            "image grid with nearest-label interpolation."
        )
    return resampled


def _voxels_reordered(labels: np.ndarray, source: ImageGeometry, target: ImageGeometry,
                      ) -> np.ndarray | None:
    """``labels`` on ``target`` when every target voxel centre is a source voxel centre (axes
    permuted or flipped, e.g. a NIfTI written in another orientation), else None."""
    to_source = source.lps_to_index_matrix @ target.index_to_lps_matrix  # target ijk -> source
    turn, shift = to_source[:3, :3], to_source[:3, 3]
    signs = np.rint(turn)
    if (not np.allclose(turn, signs, atol=1e-4) or not np.allclose(shift, np.rint(shift),
                                                                     atol=1e-3)
            or not (np.abs(signs).sum(axis=0) == 1).all()
            or not (np.abs(signs).sum(axis=1) == 1).all()):
        return None
    axis_of = np.abs(signs).argmax(axis=1)  # target axis that each source axis follows
    offset = np.rint(shift).astype(int)
    index = [int(signs[s, axis_of[s]]) * np.arange(target.size[axis_of[s]]) + offset[s]
             for s in range(3)]
    if any(ix.min() < 0 or ix.max() >= n for ix, n in zip(index, source.size, strict=True)):
        return None
    picked = labels.transpose(2, 1, 0)[np.ix_(*index)]  # source axis order (i, j, k)
    return np.ascontiguousarray(picked.transpose(np.argsort(axis_of)).transpose(2, 1, 0))


def grid_difference(a: ImageGeometry, b: ImageGeometry) -> str:
    """What differs between two grids, each value stated for both (label map first)."""
    parts = []
    if tuple(a.size) != tuple(b.size):
        parts.append(f"size ({a.size} vs {b.size})")
    if not np.allclose(a.spacing_mm, b.spacing_mm, atol=1e-4):
        parts.append(f"spacing ({_mm(a.spacing_mm)} vs {_mm(b.spacing_mm)} mm)")
    if not np.allclose(a.origin_lps, b.origin_lps, atol=1e-3):
        parts.append(f"origin (LPS {_vec(a.origin_lps)} vs {_vec(b.origin_lps)} mm)")
    if not np.allclose(a.direction, b.direction, atol=1e-5):
        parts.append(f"axis directions (LPS {_axes(a)} vs {_axes(b)})")
    return ", ".join(parts) or "sub-micrometre rounding only"


def _axes(geometry: ImageGeometry) -> str:
    """The image axes i, j, k as rounded LPS direction vectors."""
    return " ".join(_vec(col, "{:.2f}") for col in np.asarray(geometry.direction).T)


def _vec(values: Any, fmt: str = "{:.1f}") -> str:
    return "(" + ", ".join(fmt.format(float(v)) for v in values) + ")"


def _mm(values: Any) -> str:
    return "x".join(f"{v:.4g}" for v in values)


def _extent_text(geometry: ImageGeometry) -> str:
    lo, hi = geometry.bounds_lps()
    return "[" + ", ".join(f"{a:.1f}..{b:.1f}" for a, b in zip(lo, hi, strict=True)) + "]"


# ---------------------------------------------------------------------------- label names
LABELS_SCHEMA = "surgiplan.labels/1"


class LabelEntry(BaseModel):
    """One label of a ``surgiplan.labels/1`` file. Colour is RGB in 0..1."""

    model_config = ConfigDict(extra="forbid")
    value: int = Field(ge=1, le=65535)
    name: str = Field(min_length=1)
    role: Role = Role.OTHER
    color: tuple[float, float, float] | None = None
    margin_mm: float = Field(default=0.0, ge=0.0)
    description: str = ""

    @field_validator("color")
    @classmethod
    def _unit_rgb(cls, value: tuple[float, float, float] | None):
        if value is not None and not all(0.0 <= c <= 1.0 for c in value):
            raise ValueError("colour components must be between 0 and 1")
        return value

    @field_validator("name")
    @classmethod
    def _clean_name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name is blank")
        return " ".join(value.split())


class LabelNamesFile(BaseModel):
    """The ``surgiplan.labels/1`` JSON document."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    schema_id: Literal["surgiplan.labels/1"] = Field(alias="schema")
    labels: list[LabelEntry]


def _entry_label(raw: Any, loc: tuple) -> str:
    """'entry 3 ("liver")' for a pydantic error location inside ``labels``."""
    if len(loc) >= 2 and loc[0] == "labels" and isinstance(loc[1], int):
        entries = raw.get("labels", []) if isinstance(raw, dict) else []
        entry = entries[loc[1]] if loc[1] < len(entries) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        where = f"entry {loc[1] + 1}" + (f" ({name!r})" if name else "")
        rest = ".".join(str(p) for p in loc[2:])
        return where + (f" field {rest}" if rest else "")
    return ".".join(str(p) for p in loc) or "document"


def _parse_surgiplan_labels(raw: Any, path: Path) -> dict[int, dict]:
    try:
        doc = LabelNamesFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInputError(f"bad label list: {_entry_label(raw, err['loc'])}: {err['msg']}",
                            path=path, action="Fix that entry (see the surgiplan.labels/1 format)"
                            ) from exc
    out: dict[int, dict] = {}
    names: set[str] = set()
    for entry in doc.labels:
        if entry.value in out or entry.name in names:
            dup = f"value {entry.value}" if entry.value in out else f"name {entry.name!r}"
            raise BadInputError(f"bad label list: {dup} appears twice", path=path,
                                action="Give each label one entry with a unique name")
        names.add(entry.name)
        out[entry.value] = {
            "name": entry.name, "role": entry.role.value, "color": entry.color,
            "margin_mm": entry.margin_mm, "description": entry.description,
        }
    return out


def _parse_totalsegmentator(raw: Any, path: Path) -> dict[int, dict]:
    from surgiplan.io.totalsegmentator import parse_mapping_file

    return parse_mapping_file(raw, path)


# schema id -> parser; other label-name formats (e.g. TotalSegmentator maps) register here.
LABEL_NAME_PARSERS = {
    LABELS_SCHEMA: _parse_surgiplan_labels,
    "surgiplan.totalsegmentator/1": _parse_totalsegmentator,  # {"version": "v2", "task": ...}
}


def read_label_names(path: str | Path) -> dict[int, dict]:
    """Read a label-name JSON file: ``{value: {name, role, color, margin_mm, description}}``."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInputError(f"cannot read the label list ({exc.strerror})", path=path,
                            action="Check the path") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"the label list is not valid JSON ({exc})", path=path,
                            action="Fix the JSON syntax") from exc
    schema = raw.get("schema") if isinstance(raw, dict) else None
    parser = LABEL_NAME_PARSERS.get(schema) if isinstance(schema, str) else None
    if parser is None:
        raise BadInputError(f"unknown label list schema {schema!r}", path=path,
                            action=f"Use {{\"schema\": \"{LABELS_SCHEMA}\", \"labels\": [...]}}")
    return parser(raw, path)


def label_names_from(spec: str | Path) -> dict[int, dict]:
    """Label names from a JSON file, or from a keyword such as ``totalsegmentator-v2``."""
    from surgiplan.io.totalsegmentator import is_keyword, label_names

    if is_keyword(spec) and not Path(spec).is_file():
        return label_names(str(spec).lower())
    return read_label_names(spec)
