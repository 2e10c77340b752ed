"""The local DICOM database without a network: idempotent imports, the importer's warnings
kept per series, removal, missing files, and a damaged index refused with one line."""

from __future__ import annotations

import json
import shutil

from surgiplan.cli.main import main
from surgiplan.db.database import LocalDatabase
from tests.conftest import real_scan
from tests.net.conftest import SMALL_CT, TILT_CT


def test_imports_are_idempotent_and_listed(tmp_path, capsys):
    db = str(tmp_path / "db")
    folder = real_scan(SMALL_CT) / "dicom"
    assert main(["db", "import", str(folder), "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 3
    assert main(["db", "import", str(folder), "--db", db, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["added"], again["already_in_database"]) == (0, 3)
    assert main(["db", "list", "--db", db, "--json"]) == 0
    tree = json.loads(capsys.readouterr().out)["patients"]
    assert len(tree) == 1 and tree[0]["patient_id"] == "99000"
    series = tree[0]["studies"][0]["series"]
    assert len(series) == 1 and series[0]["instances"] == 3 and series[0]["origin"] == "import"
    assert tree[0]["studies"][0]["accession"] == "03086212"


def test_warnings_removal_and_missing_files(tmp_path, capsys):
    copy = tmp_path / "tilt"
    shutil.copytree(real_scan(TILT_CT), copy)
    with LocalDatabase(tmp_path / "db") as db:
        summary = db.import_path(copy)
        (uid,) = summary.series
        assert any("GantryDetectorTilt" in w for w in summary.warnings[uid])
        stored = db.tree()[0]["studies"][0]["series"][0]
        assert stored["warnings"] == summary.warnings[uid] and stored["instances"] == 28
        first = db.series_files(uid)[0]
        first.unlink()
        assert db.missing_files() == [first]
        assert db.remove_series(uid) == 28
        assert db.tree() == [] and db.integrity() == "ok"
    assert len(list(copy.iterdir())) == 27  # imported files are indexed, never deleted
    assert main(["db", "path", uid, "--db", str(tmp_path / "db")]) == 2
    assert "not in the local database" in capsys.readouterr().err


def test_a_damaged_index_is_refused_in_one_line(tmp_path, capsys):
    folder = tmp_path / "db"
    folder.mkdir()
    (folder / "index.sqlite").write_bytes(b"this is not SQLite" * 100)
    assert main(["db", "list", "--db", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "cannot be opened" in err and len(err.strip().splitlines()) == 1


def test_a_folder_without_dicom_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no images here")
    assert main(["db", "import", str(tmp_path), "--db", str(tmp_path / "db")]) == 2
    assert "no DICOM object to add" in capsys.readouterr().err
