"""Write paths of every export: a read-only target folder, a parent that is a file, a full disk
(a tiny tmpfs, as root) and /dev/full. Each gives exit code 2 with one line and leaves no
partial output (no file, no temporary file); markups with absurd coordinates are refused."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from surgiplan.cli.main import main
from surgiplan.plans.model import Intervention, Plan
from surgiplan.plans.store import read_plans, write_plans
from tests.reliability.savecase import small_case

TWIN_FORMATS = {"seg.nrrd": "out.seg.nrrd", "nifti": "out.nii.gz", "nrrd": "out.nrrd",
                "dicom-seg": "out.dcm", "stl": "meshes", "obj": "meshes", "ply": "meshes",
                "vtp": "meshes", "dicom": "series"}


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    path = small_case(tmp_path_factory.mktemp("case"))
    plans = read_plans(path)
    plans.add(Plan(name="path A", interventions=[Intervention(
        label="needle", kind="trajectory", simulator_id="surgiplan.trajectory",
        inputs={"entry_lps": [0.0, -9.0, 0.0], "target_lps": [0.0, 0.0, 0.0],
                "diameter_mm": 2.0})]))
    write_plans(path, plans)
    return path


def _commands(case: Path, out_dir: Path) -> dict[str, list[str]]:
    commands = {f"twin export {fmt}": ["twin", "export", str(case), "--format", fmt, "--out",
                                       str(out_dir / name)]
                for fmt, name in TWIN_FORMATS.items()}
    commands["plans --export-mrk"] = ["plans", str(case), "--export-mrk",
                                      str(out_dir / "plan.mrk.json")]
    commands["twin build (case save)"] = ["twin", "build", str(_nrrd_image(case)), "--out",
                                          str(out_dir / "rebuilt.surgiplan")]
    return commands


def _nrrd_image(case: Path) -> Path:
    """The case's image as a NRRD file next to it (input of ``twin build``)."""
    image = case.parent / "image.nrrd"
    if not image.exists():
        main(["twin", "export", str(case), "--format", "nrrd", "--out", str(image)])
        # export writes the label layers; a plain image comes from the bundle entry itself
        import zipfile

        with zipfile.ZipFile(case) as archive:
            image.write_bytes(archive.read("image.nrrd"))
    return image


def _rc2_one_line(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, (argv, rc, err)
    assert len(err) == 1 and "Traceback" not in err[0], (argv, err)
    return err[0]


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@contextlib.contextmanager
def _tmpfs(folder: Path, options: str):
    """Mount a tmpfs on ``folder`` (root only), or skip."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path) -> None:
    """Fill the file system of ``folder`` to the last byte."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, bytes(4096))
    finally:
        os.close(fd)


@pytest.fixture
def readonly_dir(tmp_path):
    folder = tmp_path / "readonly"
    if os.geteuid() != 0:
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    with _tmpfs(folder, "ro,size=1m"):
        yield folder


@pytest.fixture
def full_dir(tmp_path):
    with _tmpfs(tmp_path / "full", "size=64k") as folder:
        _fill(folder)
        yield folder


def test_read_only_folder(case, readonly_dir, capsys):
    for name, argv in _commands(case, readonly_dir).items():
        line = _rc2_one_line(capsys, argv)
        assert "cannot write" in line or "read-only" in line.lower(), (name, line)
        assert _listing(readonly_dir) == [], name


def test_parent_is_a_file(case, tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("keep me")
    for name, argv in _commands(case, blocker).items():
        line = _rc2_one_line(capsys, argv)
        assert "not-a-folder" in line, (name, line)
        assert blocker.read_text() == "keep me", name
    assert _listing(tmp_path) == ["not-a-folder"]


def test_full_disk(case, full_dir, capsys):
    for name, argv in _commands(case, full_dir).items():
        line = _rc2_one_line(capsys, argv)
        assert "disk is full" in line, (name, line)
        assert _listing(full_dir) == ["filler"], name


def test_dev_full(case, tmp_path, capsys):
    """Exports to a name that is a link to /dev/full: every write fails with ENOSPC (the
    device itself is written, never replaced by a rename)."""
    for name, argv in {
        "plans --export-mrk": ["plans", str(case), "--export-mrk", "{out}.mrk.json"],
        "twin export seg.nrrd": ["twin", "export", str(case), "--format", "seg.nrrd", "--out",
                                 "{out}.seg.nrrd"],
        "twin export nrrd": ["twin", "export", str(case), "--format", "nrrd", "--out",
                             "{out}.nrrd"],
    }.items():
        link = Path(argv[-1].format(out=tmp_path / "full"))
        link.symlink_to("/dev/full")
        line = _rc2_one_line(capsys, [*argv[:-1], str(link)])
        assert "disk is full" in line, (name, line)
        assert link.is_symlink() and Path("/dev/full").is_char_device()
        link.unlink()
    assert _listing(tmp_path) == []


def test_markups_with_absurd_coordinates_are_refused(case, tmp_path, capsys):
    good = tmp_path / "good.mrk.json"
    assert main(["plans", str(case), "--export-mrk", str(good)]) == 0
    raw = json.loads(good.read_text())
    raw["markups"][0]["controlPoints"][0]["position"] = [1e300, 0.0, -1e300]
    bad = tmp_path / "absurd.mrk.json"
    bad.write_text(json.dumps(raw))
    before = read_plans(case).plans
    line = _rc2_one_line(capsys, ["plans", str(case), "--import-mrk", str(bad), "--as", "x"])
    assert "1e+300" in line and "outside any patient" in line
    assert [p.name for p in read_plans(case).plans] == [p.name for p in before]
