"""Guards for reading case bundles that may be damaged or hostile.

* sizes: every entry has a cap by kind (manifest, plans, meshes, voxel data sized from the
  manifest's geometry) and the declared total is capped, all before anything is decompressed;
* hashes are checked by streaming an entry in 1 MiB chunks, before it is read whole;
* NRRD voxels are decompressed straight into an array of the size the header declares
  (checked against the manifest first); a gzip stream holding more than that is refused, so a
  small file cannot expand into gigabytes;
* JSON: NaN / Infinity and nesting deeper than :data:`MAX_JSON_DEPTH` are refused.

Every refusal is a one-line :class:`BadInputError` naming the entry.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.label_layer import Box, LabelLayer, nonzero_box

CHUNK_BYTES = 1 << 20
PIECE_BYTES = 8 << 20  # most decompressed bytes held at once (label maps deflate ~1000:1)
SLAB_BYTES = 4 << 20  # label layers are decoded a slab of whole z-planes (about this) at a time
MAX_MANIFEST_BYTES = 16 << 20
MAX_EXTRA_BYTES = 256 << 20
MAX_MESH_BYTES = 1 << 30
MAX_TOTAL_BYTES = 24 << 30
MAX_JSON_DEPTH = 64
NRRD_HEADER_SLACK = 1 << 20  # header bytes allowed on top of the voxel bytes
DAMAGED = "The case file is damaged or was altered: open a backup copy"


class ByteStream(Protocol):
    """A binary stream read forwards (an open zip member or file)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readinto(self, buffer: memoryview, /) -> int | None: ...


def refuse(path: Path | str, entry: str, problem: str) -> BadInputError:
    return BadInputError(f"entry {entry!r} {problem}", path=path, action=DAMAGED)


def check_declared_total(archive: zipfile.ZipFile, path: Path) -> None:
    """Refuse an archive whose entries declare more than MAX_TOTAL_BYTES uncompressed."""
    total = sum(i.file_size for i in archive.infolist())
    if total > MAX_TOTAL_BYTES:
        raise BadInputError(
            f"the entries declare {total / 2**30:.1f} GiB uncompressed in total (more than "
            f"{MAX_TOTAL_BYTES >> 30} GiB)", path=path,
            action="Do not open this file; it was not made by SurgiPlan")


def stream_sha256(archive: zipfile.ZipFile, entry: str, *, cap: int, path: Path) -> str:
    """SHA-256 of an entry read in chunks; refused if it declares or yields more than ``cap``."""
    info = archive.getinfo(entry)
    if info.file_size > cap:
        raise refuse(path, entry, f"declares {info.file_size} bytes, more than the "
                                  f"{cap} bytes such an entry may hold")
    digest, seen = hashlib.sha256(), 0
    with archive.open(info) as handle:
        while chunk := handle.read(CHUNK_BYTES):
            seen += len(chunk)
            if seen > cap:
                raise refuse(path, entry, f"holds more than {cap} bytes")
            digest.update(chunk)
    return digest.hexdigest()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, iteratively (lists and objects count one level each)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def strict_json(data: bytes, *, entry: str, path: Path | str) -> Any:
    """Parse JSON bytes; NaN, Infinity, invalid UTF-8 and deep nesting are refused."""
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise refuse(path, entry, f"is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise refuse(path, entry, f"is not valid JSON ({exc})") from exc
    if _depth(value) > MAX_JSON_DEPTH:
        raise refuse(path, entry, f"is nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _nrrd_dtype(header: dict[str, Any]) -> np.dtype:
    from nrrd.reader import _determine_datatype  # pynrrd's own type/endian table

    return np.dtype(_determine_datatype(header))


def _fill_gzip(handle: ByteStream, out: np.ndarray, where: str) -> None:
    """Decompress a gzip stream into ``out`` (uint8, exact size); refuse more or fewer bytes."""
    view = out.data  # memoryview of the uint8 buffer

    def sink(pos: int, piece: bytes) -> None:
        view[pos:pos + len(piece)] = piece

    _inflate(handle, out.size, sink, where)


def _inflate(handle: ByteStream, n: int, sink: Any, where: str) -> None:
    """Decompress a gzip stream of exactly ``n`` bytes, handing ``sink(offset, piece)`` pieces
    of at most PIECE_BYTES as they come; refuse a stream holding more or fewer bytes."""
    pos = 0
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)

    def step(data: bytes) -> bytes:
        nonlocal pos
        try:
            piece = inflater.decompress(data, min(n - pos + 1, PIECE_BYTES))
        except zlib.error as exc:
            raise BadInputError(f"the voxel data is not valid gzip ({exc})", path=where,
                                action=DAMAGED) from exc
        if pos + len(piece) > n:
            raise BadInputError("the voxel data holds more bytes than its header declares",
                                path=where, action=DAMAGED)
        sink(pos, piece)
        pos += len(piece)
        return piece

    while not inflater.eof and (chunk := handle.read(CHUNK_BYTES)):
        step(chunk)
        while inflater.unconsumed_tail and not inflater.eof:
            step(inflater.unconsumed_tail)
    while not inflater.eof and step(b""):  # output zlib still holds
        pass
    if pos != n:
        raise BadInputError(f"the voxel data is truncated ({pos} of {n} bytes)", path=where,
                            action=DAMAGED)


def read_nrrd_bounded(handle: ByteStream, *, max_bytes: int, where: str,
                      header: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """An attached raw or gzip NRRD, decoded into one array of the declared size (C order).

    Refused before any voxel is read when the header declares more than ``max_bytes``.
    ``header``: already read from ``handle`` (which then stands at the voxels).
    """
    header, dtype, sizes, n_bytes = _checked_header(handle, max_bytes=max_bytes, where=where,
                                                    header=header)
    raw = np.empty(n_bytes, np.uint8)
    encoding = str(header.get("encoding", "")).lower()
    if encoding in ("gzip", "gz"):
        _fill_gzip(handle, raw, where)
    else:
        _fill_raw(handle, raw, where)
    array = raw.view(dtype).reshape(sizes[::-1])
    if not dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    return array, header


def read_nrrd_header(handle: ByteStream, *, max_bytes: int, where: str
                     ) -> tuple[dict[str, Any], np.dtype]:
    """The header and voxel type of an attached NRRD, checked as :func:`read_nrrd_bounded`
    checks them, without reading a voxel."""
    header, dtype, _, _ = _checked_header(handle, max_bytes=max_bytes, where=where)
    return header, dtype


def read_nrrd_layers(handle: ByteStream, *, max_bytes: int, where: str
                     ) -> tuple[list[LabelLayer] | list[np.ndarray], dict[str, Any]]:
    """A 3D or 4D (layers on the first NRRD axis) integer label NRRD decoded slab by slab into
    one :class:`LabelLayer` per layer (each holds the box of its labelled voxels): neither the
    whole interleaved volume nor a full-grid layer is ever held. The segments' extents in the
    header (``Segment{N}_Extent``/``_Layer``) size the crops up front; voxels beyond them still
    land (the crop grows). Other NRRDs come back as full arrays (the caller refuses them)."""
    header, dtype, sizes, n_bytes = _checked_header(handle, max_bytes=max_bytes, where=where)
    encoding = str(header.get("encoding", "")).lower()
    if len(sizes) not in (3, 4) or dtype.kind not in "ui":
        array, header = read_nrrd_bounded(handle, max_bytes=max_bytes, where=where,
                                          header=header)
        return ([array] if array.ndim == 3 else
                [np.ascontiguousarray(array[..., k]) for k in range(array.shape[-1])]), header
    n_layers = sizes[0] if len(sizes) == 4 else 1
    nx, ny, nz = sizes[-3:]
    native = dtype.newbyteorder("=")
    layers = [LabelLayer((nz, ny, nx), native) for _ in range(n_layers)]
    for layer, hint in zip(layers, _extent_hints(header, n_layers, (nz, ny, nx)), strict=True):
        if hint is not None:
            layer.grow(hint)
    plane = nx * ny * n_layers * dtype.itemsize
    slab = np.empty(max(1, min(nz, SLAB_BYTES // plane)) * plane, np.uint8)
    state = {"filled": 0, "z": 0}

    def flush() -> None:
        k = state["filled"] // plane
        values = slab[:k * plane].view(dtype).reshape(k, ny, nx, n_layers).astype(native,
                                                                                  copy=False)
        box = (slice(state["z"], state["z"] + k), slice(0, ny), slice(0, nx))
        for n, layer in enumerate(layers):
            _write_slab(layer, box, values[..., n])
        state["z"] += k
        state["filled"] = 0

    def sink(pos: int, piece: bytes) -> None:
        view = memoryview(piece)
        while len(view):
            take = min(len(view), slab.size - state["filled"])
            slab[state["filled"]:state["filled"] + take] = np.frombuffer(view[:take], np.uint8)
            state["filled"] += take
            view = view[take:]
            if state["filled"] == slab.size:
                flush()

    if encoding in ("gzip", "gz"):
        _inflate(handle, n_bytes, sink, where)
    else:
        _read_raw_pieces(handle, n_bytes, sink, where)
    if state["filled"]:
        flush()
    for layer in layers:
        layer.compact()
    return layers, header


def _write_slab(layer: LabelLayer, box: Box, values: np.ndarray) -> None:
    """Write whole z-planes into a layer being read; when its crop must grow, it grows to the
    grid's last plane at once (then compacted), not plane by plane."""
    labelled = nonzero_box(values)
    if labelled is not None:
        z0 = box[0].start
        need = (slice(z0 + labelled[0].start, layer.shape[0]), labelled[1], labelled[2])
        inside = layer.data.size and all(
            o <= b.start and b.stop <= o + d
            for o, d, b in zip(layer.offset, layer.data.shape,
                               (slice(z0 + labelled[0].start, z0 + labelled[0].stop),
                                *labelled[1:]), strict=True))
        if not inside:
            layer.grow(need)
    layer.write_region(box, values)


def _extent_hints(header: dict[str, Any], n_layers: int, shape_zyx: tuple[int, int, int]
                  ) -> list[Box | None]:
    """Per layer, the box of its segments' declared extents (clipped to the grid); None for a
    layer without a usable extent. A hint only sizes a crop: wrong ones cost time, not voxels."""
    boxes: list[list[Box]] = [[] for _ in range(n_layers)]
    for key, value in header.items():
        if not (key.startswith("Segment") and key.endswith("_Extent")):
            continue
        try:
            i0, i1, j0, j1, k0, k1 = (int(v) for v in str(value).split())
            layer = int(header.get(key[:-len("Extent")] + "Layer", 0))
        except ValueError:
            continue
        if not 0 <= layer < n_layers:
            continue
        box = tuple(slice(max(0, lo), min(n, hi + 1))
                    for lo, hi, n in ((k0, k1, shape_zyx[0]), (j0, j1, shape_zyx[1]),
                                      (i0, i1, shape_zyx[2])))
        if all(b.start < b.stop for b in box):
            boxes[layer].append(box)  # type: ignore[arg-type]
    hints: list[Box | None] = []
    for found in boxes:
        if not found:
            hints.append(None)
            continue
        z, y, x = (slice(min(b[a].start for b in found), max(b[a].stop for b in found))
                   for a in range(3))
        hints.append((z, y, x))
    return hints


def _read_raw_pieces(handle: ByteStream, n: int, sink: Any, where: str) -> None:
    """Read exactly ``n`` raw bytes, handing ``sink(offset, piece)`` pieces as they come."""
    pos = 0
    while pos < n:
        piece = handle.read(min(CHUNK_BYTES, n - pos))
        if not piece:
            raise BadInputError("the voxel data is truncated", path=where, action=DAMAGED)
        sink(pos, piece)
        pos += len(piece)


def _fill_raw(handle: ByteStream, raw: np.ndarray, where: str) -> None:
    view, got = raw.data, 0
    while got < raw.size:
        more = handle.readinto(view[got:])
        if not more:
            raise BadInputError("the voxel data is truncated", path=where, action=DAMAGED)
        got += more


def _checked_header(handle: ByteStream, *, max_bytes: int, where: str,
                    header: dict[str, Any] | None = None
                    ) -> tuple[dict[str, Any], np.dtype, list[int], int]:
    """Header, dtype, sizes (NRRD order) and voxel bytes, checked before any voxel is read."""
    import nrrd

    try:
        header = header if header is not None else nrrd.read_header(handle)
        dtype = _nrrd_dtype(header)
    except (nrrd.NRRDError, ValueError, TypeError, KeyError) as exc:
        raise BadInputError(f"not a readable NRRD header ({exc})", path=where,
                            action=DAMAGED) from exc
    if "data file" in header or "datafile" in header or header.get("line skip") or \
            header.get("byte skip"):
        raise BadInputError("the NRRD header points at a separate data file or skips bytes",
                            path=where,
                            action=DAMAGED)
    sizes = [int(s) for s in np.asarray(header["sizes"]).reshape(-1)]
    n_bytes = int(np.prod(sizes, dtype=np.int64)) * dtype.itemsize
    if min(sizes, default=0) < 1 or n_bytes > max_bytes:
        raise BadInputError(f"the NRRD header declares sizes {sizes} ({n_bytes} bytes), more "
                            f"than the case's geometry allows ({max_bytes} bytes)", path=where,
                            action=DAMAGED)
    if str(header.get("encoding", "")).lower() not in ("gzip", "gz", "raw"):
        raise BadInputError(f"unsupported NRRD encoding {header.get('encoding')!r}",
                            path=where, action=DAMAGED)
    return header, dtype, sizes, n_bytes
