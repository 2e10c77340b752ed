"""Pixel decoding for DICOM slices: checks before allocating, a numpy fast path, pydicom codecs.

Uncompressed little-endian pixel data is read straight from the file at the PixelData offset
found by the header scan. Everything else (JPEG, JPEG-LS, JPEG 2000, RLE, big endian, deflated,
multi-frame) goes through ``pydicom.pixels.pixel_array`` and its installed backends. Stored
values are masked to BitsStored (sign-extended when signed) and then rescaled to real-world
values (CT: HU) with the file's RescaleSlope/Intercept, or each enhanced frame's own.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.io.dicom_header import UNCOMPRESSED_SYNTAXES, UNDEFINED, FileHeader

MAX_PIXELS_PER_AXIS = 16384
MAX_FILE_PIXEL_BYTES = 2 << 30  # one file's declared pixel data
MAX_VOLUME_BYTES = 16 << 30  # one loaded volume
SUPPORTED_BITS = (8, 16, 32)
REEXPORT = "Export the series again from the scanner or PACS"


def _refuse(h: FileHeader, problem: str, action: str = REEXPORT) -> BadInputError:
    return BadInputError(problem, path=h.path, action=action)


def stored_dtype(h: FileHeader) -> np.dtype:
    """numpy dtype of the stored values (little endian)."""
    kind = "i" if h.pixel_representation == 1 else "u"
    return np.dtype(f"<{kind}{h.bits_allocated // 8}")


def frame_bytes(h: FileHeader) -> int:
    return h.rows * h.columns * h.samples_per_pixel * max(1, h.bits_allocated // 8)


def check_declared(h: FileHeader) -> None:
    """Refuse absurd or unsupported declared pixel layouts BEFORE anything is allocated."""
    if h.rows <= 0 or h.columns <= 0:
        raise _refuse(h, f"declares an empty image (Rows {h.rows}, Columns {h.columns})")
    if max(h.rows, h.columns) > MAX_PIXELS_PER_AXIS or h.frames < 1:
        raise _refuse(h, f"declares absurd dimensions (Rows {h.rows}, Columns {h.columns}, "
                      f"frames {h.frames}); refused before reading pixels")
    if h.samples_per_pixel != 1 or h.photometric not in ("MONOCHROME1", "MONOCHROME2", ""):
        raise _refuse(h, f"is a colour image ({h.photometric or 'SamplesPerPixel'} "
                      f"{h.samples_per_pixel}), not a grey-scale volume", "Choose a CT or MR "
                      "series")
    if h.bits_allocated not in SUPPORTED_BITS or not 0 < h.bits_stored <= h.bits_allocated:
        raise _refuse(h, f"has BitsAllocated {h.bits_allocated} / BitsStored {h.bits_stored}, "
                      "which SurgiPlan does not read (8, 16 or 32 bits allocated)")
    declared = frame_bytes(h) * h.frames
    if declared > MAX_FILE_PIXEL_BYTES:
        raise _refuse(h, f"declares {declared / 2**30:.1f} GiB of pixel data, far more than "
                      "any scan; refused before reading pixels")
    if h.transfer_syntax in UNCOMPRESSED_SYNTAXES and h.pixel_offset is not None:
        _check_uncompressed_length(h, declared)
    elif h.transfer_syntax not in UNCOMPRESSED_SYNTAXES:
        _check_codec(h)


def _check_uncompressed_length(h: FileHeader, expected: int) -> None:
    if h.pixel_length == UNDEFINED:
        raise _refuse(h, "has uncompressed pixel data of undefined length (damaged file)")
    offset = -1 if h.pixel_offset is None else h.pixel_offset  # -1: position unknown
    present = h.file_size - offset if offset >= 0 else expected
    have = min(present, h.pixel_length if h.pixel_length is not None else present)
    if have < expected:
        raise _refuse(h, f"pixel data is truncated ({have} of {expected} bytes present)",
                      "Copy the file again; it was cut short")


def _check_codec(h: FileHeader) -> None:
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(h.transfer_syntax)
    except NotImplementedError:
        decoder = None
    if decoder is None or not decoder.is_available:
        raise _refuse(h, f"uses transfer syntax {h.transfer_syntax}, which no installed "
                      "decoder can read", "Convert the series to an uncompressed or standard "
                      "JPEG/JPEG 2000 syntax (e.g. with gdcmconv --raw)")


def volume_bytes_check(headers: list[FileHeader], n_voxels: int, itemsize: int) -> None:
    total = n_voxels * itemsize
    if total > MAX_VOLUME_BYTES:
        raise _refuse(headers[0], f"series would need {total / 2**30:.1f} GiB in memory, more "
                      "than SurgiPlan loads", "Load a cropped or down-sampled export")


def _rescale_range(h: FileHeader, rescale: tuple[float, float] | None = None
                   ) -> tuple[float, float]:
    slope, intercept = rescale or (h.rescale_slope, h.rescale_intercept)
    if h.pixel_representation == 1:
        lo, hi = -(2 ** (h.bits_stored - 1)), 2 ** (h.bits_stored - 1) - 1
    else:
        lo, hi = 0, 2**h.bits_stored - 1
    ends = (lo * slope + intercept, hi * slope + intercept)
    return min(ends), max(ends)


def _rescales(h: FileHeader) -> set[tuple[float, float]]:
    """Every (slope, intercept) a file uses: its own, or each frame's."""
    if h.frame_rescales is not None:
        return set(h.frame_rescales)
    return {(h.rescale_slope, h.rescale_intercept)}


def output_dtype(headers: Iterable[FileHeader]) -> np.dtype:
    """Smallest of int16 / uint16 / int32 holding every declared real value, else float32."""
    lo, hi, integral = np.inf, -np.inf, True
    for h in headers:
        for rescale in _rescales(h):
            a, b = _rescale_range(h, rescale)
            lo, hi = min(lo, a), max(hi, b)
            integral &= float(rescale[0]).is_integer() and float(rescale[1]).is_integer()
    if not integral:
        return np.dtype(np.float32)
    for dtype in (np.int16, np.uint16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.float64) if hi - lo > 2**24 else np.dtype(np.float32)


def _mask_bits(stored: np.ndarray, h: FileHeader) -> np.ndarray:
    """Clear bits above BitsStored (sign-extending signed data), in place."""
    unused = h.bits_allocated - h.bits_stored
    if unused <= 0:
        return stored
    if h.pixel_representation == 1:
        stored <<= unused
        stored >>= unused
    else:
        stored &= (1 << h.bits_stored) - 1
    return stored


def rescale_into(out: np.ndarray, stored: np.ndarray, h: FileHeader,
                 rescale: tuple[float, float] | None = None) -> None:
    """out = stored * slope + intercept (out is a 2D plane of the output dtype); ``rescale``
    is the frame's own (slope, intercept) when it differs from the file's."""
    _mask_bits(stored, h)
    slope_f, intercept_f = rescale or (h.rescale_slope, h.rescale_intercept)
    if out.dtype.kind == "f":
        np.multiply(stored, slope_f, out=out, casting="unsafe")
        if intercept_f:
            out += out.dtype.type(intercept_f)
        return
    slope, intercept = int(slope_f), int(intercept_f)
    info = np.iinfo(out.dtype)
    lo, hi = _rescale_range(h, (slope_f, intercept_f))
    stored_lo, stored_hi = sorted((lo - intercept, hi - intercept))
    if slope and info.min <= stored_lo and stored_hi <= info.max:  # no overflow in out
        # Convert into out first (a plain typed copy), then rescale in out's own type: a mixed
        # uint16 + int16 ufunc would go through a slow buffered int32 cast (~20x slower).
        np.copyto(out, stored, casting="unsafe")
        if slope != 1:
            out *= out.dtype.type(slope)
        if intercept:
            out += out.dtype.type(intercept)
        return
    wide = stored.astype(np.int64) * slope + intercept
    np.copyto(out, wide, casting="unsafe")


def read_stored_plane(h: FileHeader, frame: int, scratch: np.ndarray) -> np.ndarray:
    """Stored values of one frame into ``scratch`` (shape rows x columns, stored dtype)."""
    if h.transfer_syntax in UNCOMPRESSED_SYNTAXES and h.pixel_offset is not None and (
            h.pixel_offset >= 0):
        with open(h.path, "rb") as fp:
            fp.seek(h.pixel_offset + frame * frame_bytes(h))
            got = fp.readinto(scratch.data.cast("B"))
        if got != scratch.nbytes:
            raise _refuse(h, f"pixel data is truncated ({got} of {scratch.nbytes} bytes read)",
                          "Copy the file again; it was cut short")
        return scratch
    frames = decode_file(h)
    plane = frames[frame] if frames.ndim == 3 else frames
    np.copyto(scratch, plane, casting="unsafe")
    return scratch


def decode_file(h: FileHeader) -> np.ndarray:
    """All frames of a file via pydicom's pixel backends: (frames, rows, cols) or (rows, cols)."""
    from pydicom.pixels import pixel_array

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = pixel_array(str(h.path))
    except Exception as exc:  # codecs raise many exception types on damaged data
        raise _refuse(h, f"compressed pixel data could not be decoded ({type(exc).__name__}: "
                      f"{' '.join(str(exc).split())[:160]})") from exc
    expected = (h.rows, h.columns) if h.frames == 1 else (h.frames, h.rows, h.columns)
    if arr.shape != expected:
        raise _refuse(h, f"decoded pixel data has shape {arr.shape}, header says {expected}")
    return arr
