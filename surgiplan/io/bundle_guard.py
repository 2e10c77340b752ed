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

CHUNK_BYTES = 1 << 20
PIECE_BYTES = 8 << 20  # most decompressed bytes held at once (label maps deflate ~1000:1)
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


def read_nrrd_layers(handle: ByteStream, *, max_bytes: int, where: str
                     ) -> tuple[list[np.ndarray], dict[str, Any]]:
    """A 3D or 4D (layers on the first NRRD axis) one-byte label NRRD decoded straight into one
    ``(nz, ny, nx)`` array per layer: no interleaved copy of the whole volume is ever held."""
    header, dtype, sizes, n_bytes = _checked_header(handle, max_bytes=max_bytes, where=where)
    encoding = str(header.get("encoding", "")).lower()
    if len(sizes) != 4 or dtype.itemsize != 1 or encoding not in ("gzip", "gz"):
        array, header = read_nrrd_bounded(handle, max_bytes=max_bytes, where=where,
                                          header=header)
        return ([array] if array.ndim == 3 else
                [np.ascontiguousarray(array[..., k]) for k in range(array.shape[-1])]), header
    n_layers = sizes[0]
    layers = [np.empty(sizes[:0:-1], dtype) for _ in range(n_layers)]
    flats = [layer.reshape(-1) for layer in layers]

    def sink(pos: int, piece: bytes) -> None:
        data = np.frombuffer(piece, dtype)
        for k in range(n_layers):
            first = (k - pos) % n_layers  # index in ``data`` of the first byte of layer k
            voxel = (pos + first) // n_layers
            values = data[first::n_layers]
            flats[k][voxel:voxel + len(values)] = values

    _inflate(handle, n_bytes, sink, where)
    return layers, header


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
