"""The core stays Qt-free and free of VTK rendering; it never imports plugins/."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "surgiplan"
# Packages allowed to use Qt / VTK rendering (the UI and render layers).
UI_PACKAGES = ("surgiplan.ui", "surgiplan.render")
FORBIDDEN_IN_CORE = ("PySide6", "shiboken6", "pyvistaqt", "pyvista", "vtkmodules.vtkRendering",
                     "vtkmodules.qt", "vtkmodules.all", "vtk", "plugins")


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _core_modules() -> list[tuple[str, Path]]:
    mods = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        if not name.startswith(UI_PACKAGES):
            mods.append((name, path))
    return mods


def _imported_names(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _forbidden(name: str) -> bool:
    return any(
        name == f or name.startswith(f + ".") or (f.endswith("Rendering") and name.startswith(f))
        for f in FORBIDDEN_IN_CORE
    )


def test_core_source_has_no_qt_or_vtk_rendering_imports():
    offenders = [
        f"{mod}: imports {name}"
        for mod, path in _core_modules()
        for name in _imported_names(path)
        if _forbidden(name)
    ]
    assert offenders == [], "core must stay Qt-free and rendering-free:\n" + "\n".join(offenders)


def test_importing_every_core_module_loads_no_qt_or_rendering():
    names = [m for m, _ in _core_modules() if not m.endswith("__main__")]
    code = (
        "import importlib, json, sys\n"
        f"for n in {names!r}: importlib.import_module(n)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', "
        "'pyvistaqt', 'pyvista') or m.startswith('vtkmodules.vtkRendering'))\n"
        "print(json.dumps(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == [], f"core import pulled in Qt/rendering modules: {loaded}"


def test_forbidden_detector_catches_a_qt_import(tmp_path):
    """The check above must be able to fail: feed it a module that imports PySide6."""
    bad = tmp_path / "bad.py"
    bad.write_text("from PySide6 import QtWidgets\nimport vtkmodules.vtkRenderingCore\n")
    assert [n for n in _imported_names(bad) if _forbidden(n)] == [
        "PySide6", "vtkmodules.vtkRenderingCore"]
