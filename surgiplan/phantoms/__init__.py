"""Generated phantoms (head, lumbar spine, liver) with exact analytic ground truth.

``make_phantom(name)`` renders one in memory; ``generate_phantom(name, out_dir)`` writes it as
a real DICOM CT series plus ``labels.nrrd``, ``labels.json`` and ``truth.json``;
``load_truth(path)`` rebuilds the analytic shapes so any structure's signed distance (LPS mm,
positive outside) can be evaluated at any point.
"""

from surgiplan.phantoms.generate import (
    PHANTOM_NAMES,
    PhantomFiles,
    generate_phantom,
    make_phantom,
    phantom_spec,
)
from surgiplan.phantoms.truth import Truth, TruthStructure, load_truth

__all__ = [
    "PHANTOM_NAMES", "PhantomFiles", "Truth", "TruthStructure", "generate_phantom",
    "load_truth", "make_phantom", "phantom_spec",
]
