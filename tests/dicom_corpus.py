"""Generator of the bad-input DICOM corpus: one folder per case, with its expected outcome.

Every case is built from a small synthetic CT written by ``write_series`` and then damaged
with pydicom or plain byte edits. ``Case.expect`` is ``"error"`` (BadInputError whose message
matches ``pattern`` and names the case folder or a file in it) or ``"load"`` (a volume with a
warning matching ``pattern``, or none when pattern is empty, on grid ``geometry``).
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import JPEG2000Lossless, generate_uid

from surgiplan.io.dicom_write import write_series
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume

NX, NY, NZ = 24, 20, 6
GEOMETRY = ImageGeometry((NX, NY, NZ), (0.75, 0.8, 2.0), (-9.0, 12.0, -30.0))


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    expect: str  # "error" or "load"
    pattern: str  # regex searched in the error message or in the joined warnings
    geometry: ImageGeometry | None = None  # expected grid for "load" cases
    skip_reason: str = ""


def base_volume(nz: int = NZ, nx: int = NX, ny: int = NY) -> ImageVolume:
    geo = GEOMETRY.with_size((nx, ny, nz))
    arr = (np.arange(nz * ny * nx).reshape(nz, ny, nx) % 2000 - 1000).astype(np.int16)
    return ImageVolume(arr, geo, modality="CT")


def _series(folder: Path, **kwargs) -> list[Path]:
    return write_series(base_volume(), folder, **kwargs)


def _edit(paths: list[Path], change: Callable[[pydicom.Dataset], None]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the damage we do on purpose makes pydicom warn
        for path in paths:
            ds = pydicom.dcmread(path)
            change(ds)
            ds.save_as(path)


def _delete(keyword: str) -> Callable[[pydicom.Dataset], None]:
    def change(ds: pydicom.Dataset) -> None:
        delattr(ds, keyword)
    return change


def _set(**values) -> Callable[[pydicom.Dataset], None]:
    def change(ds: pydicom.Dataset) -> None:
        for key, value in values.items():
            setattr(ds, key, value)
    return change


# ------------------------------------------------------------------ the cases
def zero_byte(d: Path) -> Case:
    (d / "IM_0001.dcm").write_bytes(b"")
    return Case("zero_byte", d, "error", r"no loadable image series.*empty file")


def non_dicom(d: Path) -> Case:
    (d / "scan.dcm").write_text("this is not an image\n" * 20)
    return Case("non_dicom", d, "error", r"no loadable image series.*not a DICOM file")


def no_preamble(d: Path) -> Case:
    for path in _series(d):
        path.write_bytes(path.read_bytes()[132:])
    return Case("no_preamble", d, "load", "", GEOMETRY)


def no_file_meta(d: Path) -> Case:
    for path in _series(d, transfer_syntax=pydicom.uid.ImplicitVRLittleEndian):
        ds = pydicom.dcmread(path)
        raw = path.read_bytes()
        meta_end = 132 + 12 + int.from_bytes(raw[140:144], "little")
        path.write_bytes(raw[meta_end:])
        assert ds.SOPInstanceUID
    return Case("no_file_meta", d, "load", "", GEOMETRY)


def truncated_pixels(d: Path) -> Case:
    paths = _series(d)
    paths[3].write_bytes(paths[3].read_bytes()[:-100])
    return Case("truncated_pixels", d, "error", r"IM_0004\.dcm: pixel data is truncated")


def truncated_header(d: Path) -> Case:
    paths = _series(d)
    for path in paths:
        path.write_bytes(path.read_bytes()[:400])
    return Case("truncated_header", d, "error", r"no loadable image series.*truncated")


def missing_slice(d: Path) -> Case:
    _series(d)[2].unlink()
    return Case("missing_slice", d, "load", r"missing slices.*interpolation", GEOMETRY)


def duplicate_slice(d: Path) -> Case:
    paths = _series(d)
    shutil.copy(paths[1], d / "copy_of_2.dcm")
    return Case("duplicate_slice", d, "load", r"duplicate file\(s\) of the same image", GEOMETRY)


def two_images_one_position(d: Path) -> Case:
    paths = _series(d)
    ds = pydicom.dcmread(paths[2])
    ds.SOPInstanceUID = generate_uid()
    ds.InstanceNumber = 50
    ds.save_as(d / "other.dcm")
    return Case("two_images_one_position", d, "load", r"two different images", GEOMETRY)


def two_series_mixed(d: Path) -> Case:
    _series(d / "a")
    write_series(base_volume(nz=3), d / "b")
    return Case("two_series_mixed", d, "load", r"2 image series were found", GEOMETRY)


def mixed_modalities(d: Path) -> Case:
    _series(d / "ct")
    mr = base_volume(nz=2)
    mr.modality = "MR"
    write_series(mr, d / "mr")
    return Case("mixed_modalities", d, "load", r"2 image series were found", GEOMETRY)


def mixed_orientations(d: Path) -> Case:
    uid = generate_uid()
    _series(d / "ax", series_uid=uid)
    coronal = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    vol = base_volume(nz=3)
    vol.geometry = ImageGeometry(vol.geometry.size, vol.geometry.spacing_mm,
                                 vol.geometry.origin_lps, coronal)
    write_series(vol, d / "cor", series_uid=uid)
    return Case("mixed_orientations", d, "load", r"split into 2 sub-series.*orientation", GEOMETRY)


def missing_ipp(d: Path) -> Case:
    _edit(_series(d), _delete("ImagePositionPatient"))
    return Case("missing_ipp", d, "error", r"ImagePositionPatient")


def missing_iop(d: Path) -> Case:
    _edit(_series(d), _delete("ImageOrientationPatient"))
    return Case("missing_iop", d, "error", r"ImageOrientationPatient")


def missing_pixel_spacing(d: Path) -> Case:
    _edit(_series(d), _delete("PixelSpacing"))
    return Case("missing_pixel_spacing", d, "error", r"no PixelSpacing")


def negative_pixel_spacing(d: Path) -> Case:
    _edit(_series(d), _set(PixelSpacing=["-0.8", "0.75"]))
    return Case("negative_pixel_spacing", d, "error", r"PixelSpacing \[-0\.8, 0\.75\]")


def zero_pixel_spacing(d: Path) -> Case:
    _edit(_series(d), _set(PixelSpacing=["0", "0"]))
    return Case("zero_pixel_spacing", d, "error", r"PixelSpacing \[0\.0, 0\.0\]")


def nan_in_positions(d: Path) -> Case:
    paths = _series(d)
    _edit(paths[2:3], _set(ImagePositionPatient=["NaN", "0", "0"]))
    return Case("nan_in_positions", d, "error", r"IM_0003\.dcm: has no valid ImagePositionPatient")


def absurd_dimensions(d: Path) -> Case:
    _edit(_series(d), _set(Rows=65000, Columns=65000))
    return Case("absurd_dimensions", d, "error", r"absurd dimensions.*refused before")


def absurd_frames(d: Path) -> Case:
    _edit(_series(d), _set(NumberOfFrames=200000))
    return Case("absurd_frames", d, "error", r"GiB of pixel data|truncated")


def declared_larger_than_file(d: Path) -> Case:
    _edit(_series(d), _set(Rows=4000, Columns=4000))
    return Case("declared_larger_than_file", d, "error", r"pixel data is truncated")


def rows_zero(d: Path) -> Case:
    _edit(_series(d), _set(Rows=0))
    return Case("rows_zero", d, "error", r"empty image \(Rows 0")


def bits_allocated_12(d: Path) -> Case:
    _edit(_series(d), _set(BitsAllocated=12, BitsStored=12, HighBit=11))
    return Case("bits_allocated_12", d, "error", r"BitsAllocated 12")


def unknown_transfer_syntax(d: Path) -> Case:
    for path in _series(d):
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = "1.2.826.0.1.3680043.99.1"
        ds.save_as(path, enforce_file_format=True)
    return Case("unknown_transfer_syntax", d, "error", r"transfer syntax 1\.2\.826\.0\.1\.3680043"
                r"\.99\.1.*no installed decoder")


def undecodable_compressed(d: Path) -> Case:
    vol = base_volume(nz=3, nx=40, ny=48)
    paths = write_series(vol, d, transfer_syntax=JPEG2000Lossless)
    ds = pydicom.dcmread(paths[1])
    data = bytearray(ds.PixelData)
    data[40:-40] = bytes(len(data) - 80)
    ds.PixelData = bytes(data)
    ds.save_as(paths[1])
    return Case("undecodable_compressed", d, "error", r"IM_0002\.dcm: compressed pixel data "
                r"could not be decoded")


def odd_charset(d: Path) -> Case:
    _edit(_series(d), _set(SpecificCharacterSet="ISO_IR 999", PatientName="M\xfcller^Jos\xe9"))
    return Case("odd_charset", d, "load", r"Unknown SpecificCharacterSet ISO_IR 999", GEOMETRY)


def colour_image(d: Path) -> Case:
    _edit(_series(d), _set(SamplesPerPixel=3, PhotometricInterpretation="RGB",
                           PlanarConfiguration=0))
    return Case("colour_image", d, "error", r"colour image")


def unreadable_file(d: Path) -> Case:
    paths = _series(d)
    for path in paths:
        path.chmod(0)
    reason = "tests run as root, who can read a chmod 000 file" if os.geteuid() == 0 else ""
    return Case("unreadable_file", d, "error", r"cannot be read", skip_reason=reason)


def fifo_in_folder(d: Path) -> Case:
    _series(d)
    os.mkfifo(d / "pipe.dcm")  # opening it for reading would block forever
    return Case("fifo_in_folder", d, "load", "", GEOMETRY)


def symlink_loop(d: Path) -> Case:
    _series(d / "s")
    os.symlink(d, d / "s" / "loop")
    os.symlink(d / "self.dcm", d / "self.dcm")
    return Case("symlink_loop", d, "load", "", GEOMETRY)


def empty_folder(d: Path) -> Case:
    return Case("empty_folder", d, "error", r"no loadable image series found \(0 image series")


def dicomdir_missing_files(d: Path) -> Case:
    from pydicom.fileset import FileSet

    fs = FileSet()
    for p in _series(d / "src"):
        fs.add(p)
    fs.write(d / "disc")
    shutil.rmtree(d / "src")
    for path in (d / "disc").rglob("*"):
        if path.is_file() and path.name != "DICOMDIR":
            path.unlink()
    return Case("dicomdir_missing_files", d / "disc" / "DICOMDIR", "error",
                r"DICOMDIR references 6 missing file")


def huge_gap(d: Path) -> Case:
    paths = _series(d)
    for k, path in enumerate(paths[3:], start=3):
        ds = pydicom.dcmread(path)
        ds.ImagePositionPatient = [-9.0, 12.0, -30.0 + 2.0 * k + 40.0]
        ds.save_as(path)
    return Case("huge_gap", d, "error", r"gap of 42\.0 mm .*IM_0003\.dcm.*IM_0004\.dcm")


def single_slice(d: Path) -> Case:
    write_series(base_volume(nz=1), d)
    return Case("single_slice", d, "load", r"Single slice", GEOMETRY.with_size((NX, NY, 1)))


def sr_only(d: Path) -> Case:
    ds = pydicom.dcmread(_series(d / "tmp")[0], stop_before_pixels=True)
    shutil.rmtree(d / "tmp")
    ds.Modality = "SR"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.save_as(d / "report.dcm")
    return Case("sr_only", d, "error", r"no loadable image series found \(0 image series, 1 SR")


def no_series_uid(d: Path) -> Case:
    _edit(_series(d), _delete("SeriesInstanceUID"))
    return Case("no_series_uid", d, "load", r"no SeriesInstanceUID", GEOMETRY)


def damaged_after_preamble(d: Path) -> Case:
    rng = np.random.default_rng(3)
    (d / "junk.dcm").write_bytes(b"\0" * 128 + b"DICM" + rng.bytes(3000))
    return Case("damaged_after_preamble", d, "error", r"no loadable image series.*junk\.dcm: "
                r"(damaged|file ends|element)")


def gantry_tilt(d: Path) -> Case:
    tilt = np.radians(15.0)
    row = np.array([1.0, 0.0, 0.0])
    col = np.array([0.0, np.cos(tilt), -np.sin(tilt)])
    direction = np.stack([row, col, np.cross(row, col)], axis=1)
    vol = base_volume()
    vol.geometry = ImageGeometry(vol.geometry.size, vol.geometry.spacing_mm,
                                 vol.geometry.origin_lps, direction)
    for k, path in enumerate(write_series(vol, d)):
        ds = pydicom.dcmread(path)
        ds.ImagePositionPatient = [-9.0, 12.0, -30.0 + 2.0 * k]  # steps along S: sheared
        ds.save_as(path)
    return Case("gantry_tilt", d, "load", r"Resampled .*sheared")


BUILDERS: tuple[Callable[[Path], Case], ...] = (
    zero_byte, non_dicom, no_preamble, no_file_meta, truncated_pixels, truncated_header,
    missing_slice, duplicate_slice, two_images_one_position, two_series_mixed,
    mixed_modalities, mixed_orientations, missing_ipp, missing_iop, missing_pixel_spacing,
    negative_pixel_spacing, zero_pixel_spacing, nan_in_positions, absurd_dimensions,
    absurd_frames, declared_larger_than_file, rows_zero, bits_allocated_12,
    unknown_transfer_syntax, undecodable_compressed, odd_charset, colour_image, unreadable_file,
    fifo_in_folder, symlink_loop, empty_folder, dicomdir_missing_files, huge_gap, single_slice,
    sr_only, no_series_uid, damaged_after_preamble, gantry_tilt,
)
CASE_NAMES = tuple(b.__name__ for b in BUILDERS)


def build_case(root: Path, name: str) -> Case:
    folder = root / name
    folder.mkdir(parents=True)
    return dict(zip(CASE_NAMES, BUILDERS, strict=True))[name](folder)


def build_corpus(root: Path) -> list[Case]:
    """Write every case under ``root`` and return them."""
    return [build_case(root, name) for name in CASE_NAMES]


# ------------------------------------------------------------------ MR builders (odd DICOM)
def mr_dataset(pixels: np.ndarray, *, position, orientation, spacing=(1.0, 1.0),
               series_uid: str = "", **tags) -> pydicom.Dataset:
    """A minimal single-frame (or classic multi-frame, for a 3-D ``pixels``) MR dataset with
    uint16 pixels and the given geometry; ``tags`` are extra DICOM keywords."""
    from pydicom.dataset import FileMetaDataset

    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.MRImageStorage
    ds.SOPClassUID = pydicom.uid.MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality, ds.PatientName, ds.PatientID = "MR", "Odd^Case", "ODD"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in orientation]
    ds.PixelSpacing = [f"{v:g}" for v in spacing]
    ds.SliceThickness = "3"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape[-2], pixels.shape[-1]
    if pixels.ndim == 3:
        ds.NumberOfFrames = pixels.shape[0]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    for key, value in tags.items():
        setattr(ds, key, value)
    return ds


def csa_bytes(tags: dict[str, tuple[str, list[str]]]) -> bytes:
    """A Siemens CSA2 ('SV10') header holding ``name -> (VR, items)``."""
    import struct

    out = b"SV10\x04\x03\x02\x01" + struct.pack("<2I", len(tags), 77)
    for name, (vr, items) in tags.items():
        out += struct.pack("<64si4s3i", name.encode(), len(items), vr.encode(), 0,
                           len(items), 77)
        for item in items:
            data = item.encode() + b"\0"
            out += struct.pack("<4i", len(data), len(data), 77, len(data))
            out += data + b"\0" * (-len(data) % 4)
    return out


def add_siemens_mosaic(ds: pydicom.Dataset, tiles: int, normal=None,
                       protocol: str | None = None) -> None:
    """Mark ``ds`` a Siemens MOSAIC of ``tiles`` slices, with a CSA SliceNormalVector (none
    when ``normal`` is None) and an optional CSA series protocol text."""
    ds.Manufacturer = "SIEMENS"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"]
    ds.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x0A, "US", tiles)
    if normal is None:
        return
    csa = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    csa.add_new(0x10, "OB", csa_bytes({"SliceNormalVector": ("FD", [f"{v:.8f}" for v in
                                                                     normal])}))
    if protocol is not None:
        csa.add_new(0x20, "OB", csa_bytes({"MrPhoenixProtocol": ("UN", [protocol])}))
