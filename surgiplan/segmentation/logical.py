"""Logical operations between structure masks (same grid): union, intersect, subtract."""

from __future__ import annotations

import numpy as np

from surgiplan.errors import BadInputError

OPERATIONS = ("union", "intersect", "subtract")


def combine_masks(a: np.ndarray, b: np.ndarray, op: str) -> np.ndarray:
    """``a | b``, ``a & b`` or ``a & ~b`` for ``op`` union, intersect, subtract."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise BadInputError(f"masks of shapes {a.shape} and {b.shape} cannot be combined",
                            action="resample both structures onto the image grid")
    if op == "union":
        return a | b
    if op == "intersect":
        return a & b
    if op == "subtract":
        return a & ~b
    raise BadInputError(f"unknown logical operation {op!r}", action="use union, intersect or "
                        "subtract")
