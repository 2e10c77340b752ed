"""The app (core and UI) reaches plug-ins only through discovery: no module under surgiplan/
imports a ``surgiplan_*`` plug-in package (they are used through the simulator object that
``load_simulator(id)`` returns, as a third-party plug-in would be)."""

from __future__ import annotations

from pathlib import Path

from tests.test_architecture import PACKAGE, _imported_names, _module_name


def _plugin_import(name: str) -> bool:
    return name.split(".")[0].startswith("surgiplan_")


def test_no_module_under_surgiplan_imports_a_plugin_package():
    offenders = [
        f"{_module_name(path)}: imports {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for name in _imported_names(path)
        if _plugin_import(name)
    ]
    assert offenders == [], ("reach plug-ins through load_simulator(id) and the simulator's "
                             "public methods, not their modules:\n" + "\n".join(offenders))


def test_detector_catches_plugin_imports(tmp_path: Path):
    """The scan must be able to fail: top-level, dotted and in-function imports."""
    bad = tmp_path / "bad.py"
    bad.write_text("import surgiplan_ablation\n"
                   "def f():\n"
                   "    from surgiplan_implant.pose import pose_from_axis\n"
                   "from surgiplan.simulation import load_simulator\n")
    assert [n for n in _imported_names(bad) if _plugin_import(n)] == [
        "surgiplan_ablation", "surgiplan_implant.pose"]
