"""Structures of a twin used on any of its series, and structures drawn on a series brought
into the twin (where every simulator scores them), through the series' transforms."""

from __future__ import annotations

from typing import Any

import numpy as np

from surgiplan.model.structures import Structure
from surgiplan.progress import CancelToken, ProgressCallback
from surgiplan.registration.resample import reference_on_series, series_on_reference
from surgiplan.twin import Twin


def structure_on_series(twin: Twin, name: str, key: str, *,
                        progress: ProgressCallback | None = None,
                        cancel: CancelToken | None = None) -> np.ndarray:
    """Boolean mask of structure ``name`` on the grid of series ``key`` (nearest sampling)."""
    entry = twin.series_by_key(key)
    return reference_on_series(twin.segmentation.mask(name), twin.geometry, entry.transform,
                               entry.image.geometry, progress=progress, cancel=cancel)


def series_image_on_reference(twin: Twin, key: str, *,
                              progress: ProgressCallback | None = None,
                              cancel: CancelToken | None = None) -> np.ndarray:
    """Series ``key``'s image sampled on the reference grid (float32; 0 outside its field of
    view), e.g. for a fused overlay."""
    entry = twin.series_by_key(key)
    return series_on_reference(entry.image.array, entry.image.geometry, entry.transform,
                               twin.geometry, progress=progress, cancel=cancel)


def add_structure_from_series(twin: Twin, key: str, name: str, mask_on_series: np.ndarray,
                              **props: Any) -> Structure:
    """Add a structure drawn on series ``key`` (a mask on its grid) to the twin, carried onto
    the reference grid by the series' transform; ``props`` as :meth:`Twin.add_structure`."""
    entry = twin.series_by_key(key)
    if mask_on_series.shape != entry.image.geometry.shape_zyx:
        raise ValueError(f"mask shape {mask_on_series.shape} is not the grid of series {key!r} "
                         f"{entry.image.geometry.shape_zyx}")
    mask = series_on_reference(mask_on_series.astype(bool), entry.image.geometry,
                               entry.transform, twin.geometry, sampling="nearest")
    description = props.pop("description", "") or (
        f"drawn on series {key!r}, carried by its {entry.transform.kind} transform "
        f"({entry.transform.method})")
    return twin.add_structure(name, mask, description=description, **props)
