"""Header-only reading of one DICOM file: the facts needed to group and load a series.

Never decodes pixels. Uncompressed little-endian files (the common case) are walked element by
element at the top level reading only the values we need and seeking past everything else, so
the PixelData byte offset and length are known for a direct numpy read later. Text values are
decoded with pydicom's character-set handling; big-endian / deflated files and enhanced
multi-frame objects fall back to ``pydicom.dcmread(stop_before_pixels=True)``.
"""

from __future__ import annotations

import math
import stat
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pydicom import charset as dicom_charset

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
UNCOMPRESSED_SYNTAXES = (IMPLICIT_LE, EXPLICIT_LE)
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"

PIXEL_DATA = 0x7FE00010
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
            b"UT", b"UV"}
ENHANCED_GROUPS = (0x52009229, 0x52009230)  # Shared / PerFrame Functional Groups Sequence

# Tags read from every file, with their VR (used for implicit-VR files).
WANTED: dict[int, tuple[str, str]] = {
    0x00080005: ("specific_charset", "CS"),
    0x00080008: ("image_type", "CS"),
    0x00080016: ("sop_class_uid", "UI"),
    0x00080018: ("sop_instance_uid", "UI"),
    0x00080020: ("study_date", "DA"),
    0x00080060: ("modality", "CS"),
    0x00080070: ("manufacturer", "LO"),
    0x00081030: ("study_description", "LO"),
    0x0008103E: ("series_description", "LO"),
    0x00100010: ("patient_name", "PN"),
    0x00100020: ("patient_id", "LO"),
    0x00100030: ("patient_birth_date", "DA"),
    0x00100040: ("patient_sex", "CS"),
    0x00180050: ("slice_thickness_mm", "DS"),
    0x00180086: ("echo_number", "IS"),
    0x00180088: ("spacing_between_slices_mm", "DS"),
    0x00181120: ("gantry_tilt_deg", "DS"),
    0x00181312: ("phase_direction", "CS"),
    0x00189034: ("phase_reordering", "CS"),
    0x00189087: ("b_value", "FD"),
    0x00190010: ("creator_0019", "LO"),
    0x0019100A: ("mosaic_tiles", "US"),
    0x0019100C: ("siemens_b_value", "IS"),
    0x0019109C: ("ge_sequence", "LO"),
    0x0020000D: ("study_uid", "UI"),
    0x0020000E: ("series_uid", "UI"),
    0x00200011: ("series_number", "IS"),
    0x00200012: ("acquisition_number", "IS"),
    0x00200013: ("instance_number", "IS"),
    0x00200032: ("position_lps", "DS"),
    0x00200037: ("orientation", "DS"),
    0x00200100: ("temporal_position", "IS"),
    0x00280002: ("samples_per_pixel", "US"),
    0x00280004: ("photometric", "CS"),
    0x00280008: ("frames", "IS"),
    0x00280009: ("frame_increment", "AT"),
    0x00280010: ("rows", "US"),
    0x00280011: ("columns", "US"),
    0x00280030: ("pixel_spacing_mm", "DS"),
    0x00280100: ("bits_allocated", "US"),
    0x00280101: ("bits_stored", "US"),
    0x00280103: ("pixel_representation", "US"),
    0x00281050: ("window_center", "DS"),
    0x00281051: ("window_width", "DS"),
    0x00281052: ("rescale_intercept", "DS"),
    0x00281053: ("rescale_slope", "DS"),
    0x20010010: ("creator_2001", "LO"),
    0x20011003: ("philips_b_value", "FL"),
    0x3004000C: ("grid_frame_offsets", "DS"),
}
# Private tags and the private creator their block must carry to be trusted.
PRIVATE_FIELDS: dict[str, tuple[str, str]] = {
    "mosaic_tiles": ("creator_0019", "SIEMENS MR HEADER"),
    "siemens_b_value": ("creator_0019", "SIEMENS MR HEADER"),
    "ge_sequence": ("creator_0019", "GEMS_ACQU_01"),
    "philips_b_value": ("creator_2001", "Philips Imaging DD 001"),
}
TEXT_DELIMITERS = {0x5C, 0x5E, 0x3D}  # backslash, caret, equals: charset switches reset here
TEXT_FIELDS = {"patient_name", "patient_id", "study_description", "series_description"}


class HeaderError(ValueError):
    """A file that cannot be read as DICOM; ``str()`` is a short reason."""


@dataclass(frozen=True)
class FileHeader:
    """Header facts of one DICOM file (LPS mm for positions; spacing is (row, column))."""

    path: Path
    file_size: int
    transfer_syntax: str
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    modality: str = ""
    series_uid: str = ""
    study_uid: str = ""
    series_description: str = ""
    study_description: str = ""
    study_date: str = ""
    series_number: int | None = None
    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    specific_charset: str = ""
    instance_number: int | None = None
    acquisition_number: int | None = None
    echo_number: int | None = None
    temporal_position: int | None = None
    position_lps: tuple[float, ...] | None = None
    orientation: tuple[float, ...] | None = None
    pixel_spacing_mm: tuple[float, ...] | None = None
    slice_thickness_mm: float | None = None
    gantry_tilt_deg: float | None = None
    rows: int = 0
    columns: int = 0
    frames: int = 1
    samples_per_pixel: int = 1
    photometric: str = ""
    bits_allocated: int = 0
    bits_stored: int = 0
    pixel_representation: int = 0
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    window_center: float | None = None
    window_width: float | None = None
    pixel_offset: int | None = None
    pixel_length: int | None = None
    frame_positions: tuple[tuple[float, float, float], ...] | None = None
    image_type: str = ""  # ImageType values joined by backslashes
    manufacturer: str = ""
    spacing_between_slices_mm: float | None = None
    b_value: float | None = None  # diffusion b (s/mm2): standard tag, else Siemens / Philips
    phase_reordering: str = ""  # RectilinearPhaseEncodeReordering (GE: REVERSE_LINEAR)
    ge_sequence: str = ""  # GE PulseSequenceName (0019,109C)
    phase_direction: str = ""  # InPlanePhaseEncodingDirection: ROW or COL
    mosaic_tiles: int | None = None  # Siemens NumberOfImagesInMosaic (0019,100A)
    frame_increment: int | None = None  # FrameIncrementPointer tag, classic multi-frame
    grid_frame_offsets: tuple[float, ...] | None = None  # GridFrameOffsetVector, mm
    # Enhanced multi-frame: per-frame (slope, intercept) and volume attributes
    frame_rescales: tuple[tuple[float, float], ...] | None = None
    frame_attrs: tuple[tuple[tuple[str, Any], ...], ...] | None = None
    invalid: tuple[str, ...] = ()

    @property
    def has_pixels(self) -> bool:
        return self.pixel_offset is not None

    @property
    def encapsulated(self) -> bool:
        return self.pixel_length == UNDEFINED

    @property
    def is_enhanced(self) -> bool:
        return self.frame_positions is not None

    @property
    def is_mosaic(self) -> bool:
        """A Siemens MOSAIC: one frame holding a grid of ``mosaic_tiles`` slices."""
        return "MOSAIC" in self.image_type.upper().split("\\") and bool(self.mosaic_tiles)

    def frame_rescale(self, frame: int) -> tuple[float, float]:
        """(slope, intercept) of one frame: its own Pixel Value Transformation if it has one."""
        if self.frame_rescales is not None:
            return self.frame_rescales[frame]
        return self.rescale_slope, self.rescale_intercept


# ------------------------------------------------------------------ low-level walking
class _Cursor:
    """Reads a file through an in-memory window; ``pos`` is an absolute file offset."""

    CHUNK = 1 << 14

    def __init__(self, fp: BinaryIO, size: int, pos: int = 0) -> None:
        self.fp, self.size, self.pos = fp, size, pos
        self.base, self.data = 0, b""

    def _window(self, n: int) -> int:
        """Make the window cover [pos, pos + n) (as far as the file goes); return its offset."""
        if self.pos < self.base or self.pos + n > self.base + len(self.data):
            self.fp.seek(self.pos)
            self.data = self.fp.read(max(n, self.CHUNK))
            self.base = self.pos
        return self.pos - self.base

    def read(self, n: int) -> bytes:
        off = self._window(n)
        out = self.data[off:off + n]
        self.pos += len(out)
        return out

    def skip(self, n: int, tag: int) -> None:
        if self.pos + n > self.size:
            raise HeaderError(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) runs past the end "
                              "of the file (truncated)")
        self.pos += n

    def element(self, implicit: bool) -> tuple[int, bytes | None, int] | None:
        """Next element header ``(tag, VR or None, length)``; None at end of file."""
        off = self._window(12)
        data = self.data
        if len(data) - off < 8:
            if len(data) > off:
                raise HeaderError("file ends inside an element header (truncated)")
            return None
        group, elem, length = _HEADER.unpack_from(data, off)
        tag = group << 16 | elem
        if implicit or group == 0xFFFE:
            self.pos += 8
            return tag, None, length
        vr = data[off + 4:off + 6]
        if vr in LONG_VRS:
            if len(data) - off < 12:
                raise HeaderError("file ends inside an element header (truncated)")
            self.pos += 12
            return tag, vr, _LONG.unpack_from(data, off + 8)[0]
        self.pos += 8
        return tag, vr, length >> 16


_HEADER = struct.Struct("<HHL")
_LONG = struct.Struct("<L")


def _skip_undefined(cur: _Cursor, implicit: bool, depth: int = 0) -> None:
    """Skip the items of an undefined-length sequence up to its delimiter."""
    if depth > 32:
        raise HeaderError("sequences nested too deeply")
    while True:
        hdr = cur.element(True)
        if hdr is None:
            raise HeaderError("file ends inside a sequence (truncated)")
        tag, _, length = hdr
        if tag == SEQ_END:
            return
        if tag != ITEM:
            raise HeaderError(f"malformed sequence (unexpected tag {tag:08X})")
        if length != UNDEFINED:
            cur.skip(length, tag)
            continue
        while True:
            hdr = cur.element(implicit)
            if hdr is None:
                raise HeaderError("file ends inside a sequence item (truncated)")
            tag, vr, length = hdr
            if tag == ITEM_END:
                break
            if length == UNDEFINED:
                _skip_undefined(cur, implicit or vr == b"UN", depth + 1)
            else:
                cur.skip(length, tag)


def _walk(cur: _Cursor, implicit: bool) -> tuple[dict[int, tuple], dict]:
    """Top-level walk: wanted raw values, PixelData (offset, length), enhanced flag."""
    raw: dict[int, tuple] = {}
    extra: dict[str, Any] = {}
    element, wanted = cur.element, WANTED
    while True:
        hdr = element(implicit)
        if hdr is None:
            return raw, extra
        tag, vr, length = hdr
        if tag >= PIXEL_DATA:
            if tag == PIXEL_DATA:
                extra["pixel"] = (cur.pos, length)
            return raw, extra
        if length == UNDEFINED:
            extra["enhanced"] = extra.get("enhanced", False) or tag in ENHANCED_GROUPS
            _skip_undefined(cur, implicit or vr == b"UN")
        elif cur.pos + length > cur.size:
            cur.skip(length, tag)  # raises: truncated
        elif tag in wanted:
            raw[tag] = (vr.decode("ascii", "replace") if vr else None, cur.read(length))
        else:
            if tag in ENHANCED_GROUPS:
                extra["enhanced"] = True
            cur.pos += length


def _read_meta(cur: _Cursor) -> str:
    """Read group 0002 (explicit VR LE); return the transfer syntax UID (may be '')."""
    syntax = ""
    while True:
        start = cur.pos
        hdr = cur.element(False)
        if hdr is None:
            return syntax
        tag, _, length = hdr
        if tag >> 16 != 0x0002:
            cur.pos = start
            return syntax
        if length == UNDEFINED or cur.pos + length > cur.size:
            raise HeaderError("damaged file meta information")
        value = cur.read(length)
        if tag == 0x00020010:
            syntax = value.rstrip(b"\0 ").decode("ascii", "replace")
        if tag == 0x00020002 and value.rstrip(b"\0 ") == DICOMDIR_SOP_CLASS.encode():
            raise HeaderError("is a DICOMDIR index")


def _sniff_no_preamble(head: bytes) -> str | None:
    """Transfer syntax guess for a file without preamble/'DICM', or None if not DICOM-like."""
    if len(head) < 8:
        return None
    group, elem = struct.unpack_from("<HH", head)
    if group not in (0x0002, 0x0008) or elem > 0x0100:
        return None
    if group == 0x0002:
        return EXPLICIT_LE  # file meta present (always explicit VR LE)
    vr = head[4:6]
    if vr.isalpha() and vr.isupper():
        return EXPLICIT_LE
    return IMPLICIT_LE


# ------------------------------------------------------------------ value decoding
def _numbers(text: str) -> list[float]:
    parts = [p.strip() for p in text.replace("\0", "").split("\\")]
    return [float(p) for p in parts if p]


def _decode(field: str, vr: str, value: bytes, charset: list[str]) -> Any:
    """Decode one raw value to a Python value (raises ValueError on garbage)."""
    if field in TEXT_FIELDS or vr == "PN":
        text = dicom_charset.decode_bytes(value, charset, TEXT_DELIMITERS)
        return text.strip("\0 ")
    if vr in ("US", "SS"):
        fmt = "<H" if vr == "US" else "<h"
        return struct.unpack_from(fmt, value)[0] if len(value) >= 2 else None
    if vr in ("FD", "FL"):
        fmt, size = ("<d", 8) if vr == "FD" else ("<f", 4)
        number = struct.unpack_from(fmt, value)[0] if len(value) >= size else None
        if number is not None and not math.isfinite(number):
            raise ValueError(f"non-finite number {number!r}")
        return number
    if vr == "AT":
        group, elem = struct.unpack_from("<HH", value) if len(value) >= 4 else (None, None)
        return None if group is None else group << 16 | elem
    text = value.decode("latin-1").strip("\0 ")
    if vr in ("DS", "IS"):
        nums = _numbers(text)
        if not nums:
            return None
        if not all(math.isfinite(v) for v in nums):
            raise ValueError(f"non-finite number {text!r}")
        return nums if len(nums) > 1 or field in MULTI else nums[0]
    return text


MULTI = {"position_lps", "orientation", "pixel_spacing_mm", "window_center", "window_width",
         "grid_frame_offsets"}
EXPECTED_COUNT = {"position_lps": 3, "orientation": 6, "pixel_spacing_mm": 2}


def _charset(raw: dict[int, tuple]) -> list[str]:
    """Python codec names for the file's SpecificCharacterSet (unknown terms -> default)."""
    value = raw.get(0x00080005)
    if value is None:
        return ["iso8859"]
    terms = [t.strip() for t in value[1].decode("ascii", "replace").split("\\")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dicom_charset.convert_encodings([t or "ISO_IR 6" for t in terms])


def _fields_from_raw(raw: dict[int, tuple]) -> tuple[dict[str, Any], list[str]]:
    charset = _charset(raw)
    fields: dict[str, Any] = {}
    invalid: list[str] = []
    for tag, (vr, value) in raw.items():
        field, dict_vr = WANTED[tag]
        vr = vr if vr not in (None, "UN") else dict_vr
        try:
            decoded = _decode(field, vr, value, charset)
        except (ValueError, LookupError, struct.error) as exc:
            invalid.append(f"{field}: {exc}")
            continue
        if decoded is None or decoded == "":
            continue
        fields[field] = decoded
    _trust_private(fields)
    return _normalise(fields, invalid), invalid


def _trust_private(fields: dict[str, Any]) -> None:
    """Keep private values only under their vendor's creator; fold vendor b-values in."""
    for name, (creator, expected) in PRIVATE_FIELDS.items():
        if name in fields and str(fields.get(creator, "")).strip() != expected:
            del fields[name]
    for name in ("creator_0019", "creator_2001"):
        fields.pop(name, None)
    for name in ("siemens_b_value", "philips_b_value"):
        value = fields.pop(name, None)
        if "b_value" not in fields and value is not None:
            fields["b_value"] = value
    if isinstance(fields.get("image_type"), str):
        fields["image_type"] = fields["image_type"].upper()


INT_FIELDS = ("series_number", "instance_number", "acquisition_number", "echo_number",
              "temporal_position", "frames", "rows", "columns", "samples_per_pixel",
              "bits_allocated", "bits_stored", "pixel_representation", "mosaic_tiles",
              "frame_increment")
FLOAT_FIELDS = ("rescale_slope", "rescale_intercept", "slice_thickness_mm", "gantry_tilt_deg",
                "window_center", "window_width", "spacing_between_slices_mm", "b_value")


def _normalise(fields: dict[str, Any], invalid: list[str]) -> dict[str, Any]:
    """Coerce decoded values to the FileHeader field types; a value that does not fit (a
    damaged VR or text in a number) is dropped and recorded in ``invalid``."""
    for name, count in EXPECTED_COUNT.items():
        if name in fields:
            values = fields[name]
            try:
                numbers = tuple(float(v) for v in values)
            except (TypeError, ValueError):
                numbers = ()
            if len(numbers) != count:
                invalid.append(f"{name}: expected {count} numbers, got {values!r:.60}")
                del fields[name]
            else:
                fields[name] = numbers
    for names, kind in ((INT_FIELDS, int), (FLOAT_FIELDS, float)):
        for name in names:
            if name in fields:
                _coerce(fields, name, kind, invalid)
    if "grid_frame_offsets" in fields:
        fields["grid_frame_offsets"] = tuple(float(v) for v in fields["grid_frame_offsets"])
    for name in ("specific_charset", "image_type", "manufacturer", "phase_reordering",
                 "ge_sequence", "phase_direction"):
        if fields.get(name):
            fields[name] = str(fields[name])
    return fields


def _coerce(fields: dict[str, Any], name: str, kind: type, invalid: list[str]) -> None:
    value = fields[name]
    if isinstance(value, (list, tuple)):  # multi-valued (e.g. WindowCenter): the first
        value = value[0] if value else None
    try:
        number = float(value)
        if kind is int and not number.is_integer():
            raise ValueError
        fields[name] = kind(number)
    except (TypeError, ValueError, OverflowError):
        invalid.append(f"{name}: not a number ({value!r:.40})")
        del fields[name]


def unknown_charsets(header: FileHeader) -> list[str]:
    """Character-set terms in the header that pydicom cannot decode (text read as ASCII)."""
    terms = [t.strip() for t in header.specific_charset.split("\\") if t.strip()]
    return [t for t in terms if t not in dicom_charset.python_encoding]


# ------------------------------------------------------------------ public entry point
def read_header(path: Path) -> FileHeader:
    """Read the header of one DICOM file; raise HeaderError with a short reason if not DICOM."""
    try:
        info = path.stat()
    except OSError as exc:
        raise HeaderError(_os_reason(exc)) from exc
    if not stat.S_ISREG(info.st_mode):
        raise HeaderError("not a regular file (FIFO, device or socket); skipped")
    file_size = info.st_size
    if file_size == 0:
        raise HeaderError("empty file (0 bytes)")
    try:
        with open(path, "rb") as fp:
            return _read_open(fp, path, file_size)
    except OSError as exc:
        raise HeaderError(_os_reason(exc)) from exc


def _os_reason(exc: OSError) -> str:
    return f"cannot be read ({exc.strerror or exc})"


def _read_open(fp: BinaryIO, path: Path, file_size: int) -> FileHeader:
    cur = _Cursor(fp, file_size)
    head = cur.read(132)
    if head[128:132] != b"DICM":
        sniffed = _sniff_no_preamble(head)
        if sniffed is None:
            raise HeaderError("not a DICOM file (no 'DICM' marker and no DICOM elements)")
        cur.pos = 0
    syntax = _read_meta(cur)
    if not syntax:
        syntax = _sniff_no_preamble(cur.read(8)) or IMPLICIT_LE
        cur.pos -= 8
    if syntax in (EXPLICIT_BE, DEFLATED_LE):
        return _read_with_pydicom(path, file_size, syntax)
    raw, extra = _walk(cur, syntax == IMPLICIT_LE)
    if extra.get("enhanced"):
        return _read_with_pydicom(path, file_size, syntax)
    fields, invalid = _fields_from_raw(raw)
    offset, length = extra.get("pixel", (None, None))
    return FileHeader(path=path, file_size=file_size, transfer_syntax=syntax,
                      pixel_offset=offset, pixel_length=length, invalid=tuple(invalid),
                      **fields)


def _read_with_pydicom(path: Path, file_size: int, syntax: str) -> FileHeader:
    """Fallback for big-endian, deflated and enhanced multi-frame files."""
    import pydicom

    from surgiplan.io.dicom_enhanced import header_from_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception as exc:  # pydicom raises many types on damaged files
            raise HeaderError(f"damaged DICOM ({type(exc).__name__}: {exc})") from exc
        try:
            return header_from_dataset(ds, path=path, file_size=file_size, syntax=syntax)
        except Exception as exc:  # damaged functional groups or private tags, any type
            raise HeaderError(f"damaged DICOM header ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:120]})") from exc
