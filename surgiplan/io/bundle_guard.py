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
from typing import IO, Any

import numpy as np

from surgiplan.errors import BadInputError

CHUNK_BYTES = 1 << 20
MAX_MANIFEST_BYTES = 16 << 20
MAX_EXTRA_BYTES = 256 << 20
MAX_MESH_BYTES = 1 << 30
MAX_TOTAL_BYTES = 24 << 30
MAX_JSON_DEPTH = 64
NRRD_HEADER_SLACK = 1 << 20  # header bytes allowed on top of the voxel bytes
DAMAGED = "The case file is damaged or was altered: open a backup copy"


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


def _fill_gzip(handle: IO[bytes], out: np.ndarray, where: str) -> None:
    """Decompress a gzip stream into ``out`` (uint8, exact size); refuse more or fewer bytes."""
    view, pos, n = memoryview(out), 0, out.size
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    while not inflater.eof and (chunk := handle.read(CHUNK_BYTES)):
        data = chunk
        while data and not inflater.eof:
            try:
                piece = inflater.decompress(data, n - pos + 1)
            except zlib.error as exc:
                raise BadInputError(f"the voxel data is not valid gzip ({exc})", path=where,
                                    action=DAMAGED) from exc
            if pos + len(piece) > n:
                raise BadInputError("the voxel data holds more bytes than its header declares",
                                    path=where, action=DAMAGED)
            view[pos:pos + len(piece)] = piece
            pos += len(piece)
            data = inflater.unconsumed_tail
    if pos != n:
        raise BadInputError(f"the voxel data is truncated ({pos} of {n} bytes)", path=where,
                            action=DAMAGED)


def read_nrrd_bounded(handle: IO[bytes], *, max_bytes: int, where: str
                      ) -> tuple[np.ndarray, dict[str, Any]]:
    """An attached raw or gzip NRRD, decoded into one array of the declared size (C order).

    Refused before any voxel is read when the header declares more than ``max_bytes``.
    """
    import nrrd

    try:
        header = nrrd.read_header(handle)
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
    raw = np.empty(n_bytes, np.uint8)
    encoding = str(header.get("encoding", "")).lower()
    if encoding in ("gzip", "gz"):
        _fill_gzip(handle, raw, where)
    elif encoding == "raw":
        got = handle.readinto(memoryview(raw)) if hasattr(handle, "readinto") else 0
        while got < n_bytes:
            more = handle.readinto(memoryview(raw)[got:])
            if not more:
                raise BadInputError("the voxel data is truncated", path=where, action=DAMAGED)
            got += more
    else:
        raise BadInputError(f"unsupported NRRD encoding {encoding!r}", path=where,
                            action=DAMAGED)
    array = raw.view(dtype).reshape(sizes[::-1])
    if not dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    return array, header
