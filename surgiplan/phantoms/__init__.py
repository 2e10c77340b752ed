"""Generated phantoms (head, lumbar spine, liver) with exact analytic ground truth.

``make_phantom(name)`` renders one in memory; ``generate_phantom(name, out_dir)`` writes it as
a real DICOM CT series plus ``labels.nrrd``, ``labels.json`` and ``truth.json``;
``load_truth(path)`` rebuilds the analytic shapes so any structure's signed distance (LPS mm,
positive outside) can be evaluated at any point.
"""

from typing import Any

from surgiplan.phantoms.names import PHANTOM_NAMES

_LAZY = {"PhantomFiles": "generate", "generate_phantom": "generate", "make_phantom": "generate",
         "phantom_spec": "generate", "Truth": "truth", "TruthStructure": "truth",
         "load_truth": "truth"}

__all__ = [
    "PHANTOM_NAMES", "PhantomFiles", "Truth", "TruthStructure", "generate_phantom",
    "load_truth", "make_phantom", "phantom_spec",
]


def __getattr__(name: str) -> Any:
    """Phantom code is imported on first use (``surgiplan --help`` stays light)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"surgiplan.phantoms.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'surgiplan.phantoms' has no attribute {name!r}")
