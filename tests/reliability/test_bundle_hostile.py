"""Hostile or damaged case bundles: zip bombs within the per-entry cap, a gzip bomb inside the
image NRRD, an edited manifest, NaN / Infinity values, deep JSON nesting. Each one is refused
with exit code 2 and one line, without the memory a bomb asks for."""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from surgiplan.cli.main import main
from surgiplan.errors import BadInputError
from surgiplan.io.bundle import IMAGE_ENTRY, MANIFEST, MANIFEST_HASH_PREFIX, load_bundle
from surgiplan.io.bundle_guard import MAX_EXTRA_BYTES
from tests.reliability.savecase import ROOT, entries_of, one_line_rc2, rewrite, small_case

RSS_LIMIT_MIB = 700  # a refused bomb costs far less than what it declares (>= 300 MiB)


def _peak_rss_mib(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``surgiplan ARGS`` in a child; its result and peak RSS (MiB)."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], "
             "capture_output=True, text=True); sys.stderr.write(r.stderr); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
             "sys.exit(r.returncode)")
    result = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "surgiplan",
                             *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    return result, int(result.stdout.strip().splitlines()[-1]) / 1024


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    return small_case(tmp_path_factory.mktemp("bundle"))


def _zero_bomb_entry(archive: zipfile.ZipFile, name: str, n_bytes: int) -> str:
    """Stream ``n_bytes`` zeros into a deflated entry; returns their SHA-256."""
    digest, block = hashlib.sha256(), bytes(1 << 20)
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w", force_zip64=True) as out:
        for _ in range(n_bytes >> 20):
            out.write(block)
            digest.update(block)
    return digest.hexdigest()


def test_deflate_bomb_in_plans_is_refused_cheaply(case, tmp_path):
    entries, _ = entries_of(case)
    bomb = tmp_path / "bomb.surgiplan"
    size = MAX_EXTRA_BYTES + (64 << 20)
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        digest = _zero_bomb_entry(archive, "plans/plans.json", size)
        for name, data in entries.items():
            if name != MANIFEST:
                archive.writestr(name, data)
        manifest = json.loads(entries[MANIFEST])
        manifest["files"]["plans/plans.json"] = digest
        data = json.dumps(manifest).encode()
        archive.writestr(MANIFEST, data)
        archive.comment = MANIFEST_HASH_PREFIX + hashlib.sha256(data).hexdigest().encode()
    assert bomb.stat().st_size < 2 << 20  # a small file ...
    result, peak = _peak_rss_mib("twin", "info", str(bomb))
    line = one_line_rc2(result)  # ... refused with one line
    assert "plans/plans.json" in line and "more than" in line
    assert peak < RSS_LIMIT_MIB, f"refusing the bomb took {peak:.0f} MiB"


def _image_entry(case: Path, payload: bytes) -> bytes:
    """The case's image NRRD header followed by ``payload`` as its gzip voxel data."""
    entries, _ = entries_of(case)
    header = entries[IMAGE_ENTRY].split(b"\n\n", 1)[0] + b"\n\n"
    return header + payload


def _gzip_zeros(n_mib: int) -> bytes:
    """A gzip stream of ``n_mib`` MiB of zeros, made of one fully-flushed deflate block
    repeated (each block stands alone, so the stream is valid)."""
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = block.compress(bytes(1 << 20)) + block.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(n_mib):
        crc = zlib.crc32(bytes(1 << 20), crc)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # an empty final block
    trailer = struct.pack("<II", crc, (n_mib << 20) & 0xFFFFFFFF)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + piece * n_mib + end + trailer


def test_gzip_zeros_helper_is_a_valid_stream():
    assert gzip.decompress(_gzip_zeros(3)) == bytes(3 << 20)


def test_gzip_bomb_inside_the_image_nrrd_is_refused_cheaply(case, tmp_path):
    entries, _ = entries_of(case)
    bomb = tmp_path / "nested.surgiplan"
    payload = _gzip_zeros(1024)  # 1 GiB of zeros for a 15 kB image, in about 1 MB
    rewrite(bomb, {**entries, IMAGE_ENTRY: _image_entry(case, payload)})
    result, peak = _peak_rss_mib("twin", "info", str(bomb))
    line = one_line_rc2(result)
    assert "more bytes than its header declares" in line
    assert peak < RSS_LIMIT_MIB, f"refusing the bomb took {peak:.0f} MiB"


def test_nrrd_header_larger_than_the_manifest_geometry_is_refused(case, tmp_path):
    entries, _ = entries_of(case)
    header, data = entries[IMAGE_ENTRY].split(b"\n\n", 1)
    header = header.replace(b"sizes: 24 20 16", b"sizes: 2400 2000 1600")
    bad = tmp_path / "big-header.surgiplan"
    rewrite(bad, {**entries, IMAGE_ENTRY: header + b"\n\n" + data})
    with pytest.raises(BadInputError, match="more than the case's geometry allows"):
        load_bundle(bad)


def _edited_manifest(case: Path, edit) -> dict[str, bytes]:
    entries, _ = entries_of(case)
    manifest = json.loads(entries[MANIFEST])
    edit(manifest)
    return {**entries, MANIFEST: json.dumps(manifest, allow_nan=True).encode()}


def _margin(value):
    def edit(manifest):
        manifest["structures"][2]["margin_mm"] = value
    return edit


def _cli_rc2(capsys, *args: str) -> str:
    """Run the real CLI entry point in this process; assert rc 2 and one line on stderr."""
    capsys.readouterr()
    rc = main(list(args))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, (rc, err)
    return err[0]


def test_manifest_edited_after_saving_is_refused(case, tmp_path, capsys):
    """Margin of the critical vessel set to 0 by hand, the recorded manifest hash kept."""
    _, comment = entries_of(case)
    edited = tmp_path / "edited.surgiplan"
    rewrite(edited, _edited_manifest(case, _margin(0.0)), comment=comment)
    line = _cli_rc2(capsys, "twin", "info", str(edited))
    assert "manifest.json" in line and "altered" in line


def test_case_without_manifest_hash_still_opens(case, tmp_path):
    """Bundles saved before the manifest hash existed have no ZIP comment; they still load."""
    entries, _ = entries_of(case)
    old = tmp_path / "old.surgiplan"
    rewrite(old, entries, comment=b"")
    assert [s.name for s in load_bundle(old).structures] == ["skin", "tumour", "vessel"]


@pytest.mark.parametrize(("label", "edit", "expect"), [
    ("infinite margin", _margin(float("inf")), "Infinity"),
    ("huge margin", _margin(1e9), "margin_mm"),
    ("NaN margin", _margin(float("nan")), "not a number"),
    ("NaN colour", lambda m: m["structures"][0].__setitem__("color", [0.5, float("nan"), 0.1]),
     "not a number"),
    ("colour out of range", lambda m: m["structures"][0].__setitem__("color", [3, 0, 0]),
     "color"),
    ("NaN spacing", lambda m: m["image"]["geometry"].__setitem__("spacing_mm",
                                                                  [1, float("nan"), 1]),
     "not a number"),
])
def test_non_finite_or_absurd_manifest_values_are_refused(case, tmp_path, label, edit, expect):
    bad = tmp_path / "bad.surgiplan"
    rewrite(bad, _edited_manifest(case, edit))  # hash recomputed: only validation can catch it
    with pytest.raises(BadInputError, match=expect) as info:
        load_bundle(bad)
    assert "\n" not in str(info.value), label


def test_deeply_nested_manifest_gives_rc2_with_one_line(case, tmp_path, capsys):
    entries, _ = entries_of(case)
    manifest = entries[MANIFEST].decode()
    deep = manifest[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    bad = tmp_path / "deep.surgiplan"
    rewrite(bad, {**entries, MANIFEST: deep.encode()}, rehash=False)
    line = _cli_rc2(capsys, "twin", "info", str(bad))
    assert "nested deeper" in line


def test_moderately_nested_manifest_is_refused_too(case, tmp_path):
    entries, _ = entries_of(case)
    manifest = entries[MANIFEST].decode()
    deep = manifest[:-1] + ', "x": ' + "[" * 500 + "]" * 500 + "}"
    bad = tmp_path / "deep500.surgiplan"
    rewrite(bad, {**entries, MANIFEST: deep.encode()}, rehash=False)
    with pytest.raises(BadInputError, match="nested deeper"):
        load_bundle(bad)


@pytest.mark.parametrize("entry", ["plans/plans.json", "plans/audit.jsonl"])
def test_deeply_nested_plans_give_rc2_with_one_line(tmp_path, capsys, entry):
    from tests.reliability.savecase import add_trajectory_plan

    case = add_trajectory_plan(small_case(tmp_path))
    entries, _ = entries_of(case)
    bad = tmp_path / "deep-plans.surgiplan"
    rewrite(bad, {**entries, entry: b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"})
    line = _cli_rc2(capsys, "plans", str(bad))
    assert entry in line
