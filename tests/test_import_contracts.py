"""The architecture as import-linter contracts (pyproject.toml [tool.importlinter]): the core is
Qt-free, only the CLI starts the app, the core never imports a plug-in, plug-ins are Qt-free and
independent, and the packages of surgiplan import each other without cycles. Transitive imports
count. A second test shows that the contracts can fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path, pythonpath: list[Path]) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": ":".join(str(p) for p in pythonpath), "PATH": "/usr/bin:/bin",
           "HOME": str(cwd)}
    return subprocess.run([str(LINT), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _plugin_sources() -> list[Path]:
    return sorted((ROOT / "plugins").glob("*/src"))


def test_the_contracts_hold():
    done = _lint(ROOT, [ROOT, *_plugin_sources()])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "broken" not in done.stdout.split("Contracts:")[-1].split("\n")[0].replace(
        "0 broken", "")


def test_a_forbidden_import_is_caught(tmp_path):
    """A copy of the tree where a core module imports Qt and the app, and the model imports the
    CLI (a cycle): every relevant contract must break, naming the module."""
    shutil.copytree(ROOT / "surgiplan", tmp_path / "surgiplan",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "surgiplan" / "model" / "sneaky.py").write_text(
        "import PySide6.QtWidgets\nfrom surgiplan.ui.shell import app\n", encoding="utf-8")
    (tmp_path / "surgiplan" / "ui" / "views" / "upward.py").write_text(
        "from surgiplan.ui.plan import planning_panel\n", encoding="utf-8")
    (tmp_path / "surgiplan" / "io" / "loop.py").write_text(
        "from surgiplan.segmentation import editor\n", encoding="utf-8")
    (tmp_path / "surgiplan" / "segmentation" / "loop_back.py").write_text(
        "from surgiplan.io import loop\n", encoding="utf-8")
    done = _lint(tmp_path, [tmp_path, *_plugin_sources()])
    assert done.returncode != 0
    out = done.stdout
    assert "surgiplan.model.sneaky" in out and "PySide6" in out
    assert "The core is Qt-free" in out.split("Broken contracts")[-1]
    assert "Only the command line starts the app" in out.split("Broken contracts")[-1]
    assert "No import cycles" in out.split("Broken contracts")[-1]
    assert "rooms are layered" in out.split("Broken contracts")[-1]
    assert "surgiplan.ui.views.upward" in out


def test_rooms_below_the_shell_name_the_main_window_only_for_type_hints():
    """The layers contract ignores imports of the main window (panels are handed it); they must
    stay under ``if TYPE_CHECKING:``, never run-time imports from a lower room."""
    import ast

    offenders = []
    for path in (ROOT / "surgiplan" / "ui").rglob("*.py"):
        if path.parent.name == "shell":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and ast.unparse(node.test).endswith("TYPE_CHECKING")
                   for n in ast.walk(node)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.ImportFrom) and node.module == "surgiplan.ui.shell.main_window"
                    and id(node) not in guarded):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
