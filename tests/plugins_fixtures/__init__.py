"""Test plug-ins (crashing, hanging, broken) and a helper installing entry points for them.

``install_entry_points(folder, dist, {name: "module:attr"})`` writes a ``DIST-0.1.dist-info``
folder (METADATA + entry_points.txt) into ``folder``: with ``folder`` on ``sys.path``,
``importlib.metadata`` finds the entry points exactly as for a pip-installed distribution.
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent


def install_entry_points(folder: Path, dist: str, entries: dict[str, str]) -> Path:
    info = Path(folder) / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = ["[surgiplan.simulators]", *(f"{k} = {v}" for k, v in entries.items()), ""]
    (info / "entry_points.txt").write_text("\n".join(lines))
    return info


# name -> entry-point value of every test plug-in (modules live in this folder)
TEST_PLUGINS = {
    "test-crash": "sp_test_plugins.crashing:CrashingSimulator",
    "test-hang": "sp_test_plugins.hanging:HangingSimulator",
    "test-broken-import": "sp_test_plugins.broken_import:Anything",
    "test-old-api": "sp_test_plugins.crashing:OldApiSimulator",
}
