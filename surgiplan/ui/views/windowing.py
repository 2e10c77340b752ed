"""Window/level presets and the grey mapping of slice images (numpy only).

A window is ``(centre, width)`` in the image's units (HU for CT). Display grey is
``255 * (value - (centre - width/2)) / width`` clipped to 0..255.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from surgiplan.model.volume import ImageVolume


@dataclass(frozen=True)
class WindowPreset:
    name: str
    center: float
    width: float


# CT presets in HU, in the order of the number keys 1..6.
CT_PRESETS: tuple[WindowPreset, ...] = (
    WindowPreset("CT brain", 40.0, 80.0),
    WindowPreset("CT soft tissue", 40.0, 400.0),
    WindowPreset("CT abdomen", 40.0, 350.0),
    WindowPreset("CT liver", 90.0, 150.0),
    WindowPreset("CT lung", -600.0, 1500.0),
    WindowPreset("CT bone", 480.0, 2500.0),
)


def auto_window(volume: ImageVolume) -> tuple[float, float]:
    """(centre, width) from the histogram: 1st..99th percentile of non-background voxels;
    computed once per voxel array (first in the loading worker, see ``case_io.opened``)."""
    return _once(volume, "auto", _auto_window)


def _auto_window(volume: ImageVolume) -> tuple[float, float]:
    arr = volume.array
    sample = arr.reshape(-1)[:: max(1, arr.size // 400_000)].astype(np.float64)
    lo_all = sample.min()
    body = sample[sample > lo_all]
    if body.size < 100:
        body = sample
    lo, hi = np.percentile(body, [1.0, 99.0])
    if hi <= lo:
        hi = lo + 1.0
    return float((lo + hi) / 2.0), float(hi - lo)


def default_window(volume: ImageVolume) -> tuple[float, float]:
    """The file's WindowCenter/Width when usable, else the histogram window.

    A file window narrower than 2 % of the histogram window, or centred outside the data
    range, is a placeholder some scanners write (e.g. 1/3 on a 0..678 MR): it is ignored.
    """
    auto = auto_window(volume)
    if volume.window_center is not None and volume.window_width and volume.window_width > 0:
        lo, hi = volume.value_range()
        usable = (volume.window_width >= 0.02 * auto[1]
                  and lo <= volume.window_center <= hi)
        if usable:
            return float(volume.window_center), float(volume.window_width)
    return auto


def presets_for(volume: ImageVolume) -> list[WindowPreset]:
    """Presets offered for a volume: the CT list for CT, else 'auto' and the file's window."""
    presets = [WindowPreset("Auto (histogram)", *auto_window(volume))]
    if volume.window_center is not None and volume.window_width:
        presets.insert(0, WindowPreset("From file", volume.window_center, volume.window_width))
    if volume.modality == "CT":
        return [*CT_PRESETS, *presets]
    return presets


_CACHE: dict[tuple[int, str], tuple[weakref.ref, tuple[float, float]]] = {}


def _once(volume: ImageVolume, what: str, compute) -> tuple[float, float]:
    """``compute(volume)``, remembered while the voxel array lives (whole-volume passes cost
    tens of ms on a CT; the GUI thread then never repeats one the worker made)."""
    key = (id(volume.array), what)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is volume.array:
        return hit[1]
    value = compute(volume)
    for stale in [k for k, (ref, _r) in _CACHE.items() if ref() is None]:
        del _CACHE[stale]
    _CACHE[key] = (weakref.ref(volume.array), value)
    return value


def data_range(volume: ImageVolume) -> tuple[float, float]:
    """(min, max) voxel value of ``volume`` in its units, computed once per voxel array."""
    return _once(volume, "range", lambda v: tuple(float(x) for x in v.value_range()))


def bounded_window(center: float, width: float,
                   value_range: tuple[float, float]) -> tuple[float, float]:
    """``(center, width)`` kept to the data: the width between 1/1000 and twice the value
    span, the centre so that the window still overlaps [min, max] (within half a width of it);
    a drag can never run away."""
    lo, hi = (float(v) for v in value_range)
    span = max(hi - lo, 1e-6)
    w = float(np.clip(width, span / 1000.0, 2.0 * span)) if np.isfinite(width) else span
    c = float(np.clip(center, lo - w / 2.0, hi + w / 2.0)) if np.isfinite(center) \
        else (lo + hi) / 2.0
    return c, w


def to_grey(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """Map values to uint8 grey with the window ``(center, width)``."""
    width = max(float(width), 1e-6)
    lo = float(center) - width / 2.0
    scaled = (values.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / width)
    return np.clip(scaled, 0, 255).astype(np.uint8)
