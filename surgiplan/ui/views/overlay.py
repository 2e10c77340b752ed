"""Blending structure label planes over a grey slice image (numpy only)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from surgiplan.model.structures import Segmentation


@dataclass(frozen=True)
class LayerLookup:
    """Per-label colour (uint8 RGB) and opacity (0..1) for one label layer; label 0 is clear."""

    rgb: np.ndarray  # (n_labels + 1, 3) uint8
    alpha: np.ndarray  # (n_labels + 1,) float32
    layer: int = 0  # index of the label layer these tables colour


def layer_lookups(segmentation: Segmentation, *,
                  voxel_count: Callable[[str], int] | None = None) -> list[LayerLookup]:
    """Lookup tables from the structures' colour, visibility and opacity, one per layer.

    In layer order; with ``voxel_count`` (structure name -> voxels) in drawing order instead:
    the layer whose largest visible structure is biggest first, so a small lesion on another
    layer is drawn over the organ around it, never hidden under it. Build the planes for
    :func:`blend_labels` from each lookup's ``layer``.
    """
    lookups = _lookups_in_layer_order(segmentation)
    if voxel_count is None:
        return lookups
    largest = {n: 0 for n in range(len(lookups))}
    for s in segmentation:
        if s.visible:
            largest[s.layer] = max(largest[s.layer], int(voxel_count(s.name)))
    return sorted(lookups, key=lambda lut: -largest[lut.layer])  # stable: ties keep layer order


def _lookups_in_layer_order(segmentation: Segmentation) -> list[LayerLookup]:
    lookups = []
    for n, layer in enumerate(segmentation.layers):
        top = int(np.iinfo(layer.dtype).max) if layer.dtype.kind in "ui" else 255
        rgb = np.zeros((top + 1, 3), np.uint8)
        alpha = np.zeros(top + 1, np.float32)
        for s in segmentation:
            if s.layer == n and s.visible:
                rgb[s.label] = np.round(np.asarray(s.color) * 255).astype(np.uint8)
                alpha[s.label] = float(s.opacity)
        lookups.append(LayerLookup(rgb, alpha, n))
    return lookups


def outline_mask(labels: np.ndarray) -> np.ndarray:
    """True on labelled pixels that touch a pixel with a different label (4-neighbourhood)."""
    edge = np.zeros(labels.shape, bool)
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    return edge & (labels != 0)


def blend_labels(
    grey: np.ndarray,
    planes: list[np.ndarray],
    lookups: list[LayerLookup],
    *,
    opacity: float = 0.5,
    outline: bool = False,
) -> np.ndarray:
    """RGB uint8 ``(rows, cols, 3)``: grey image with each label plane blended in its colour,
    in list order (later planes over earlier ones; ``planes[i]`` is coloured by ``lookups[i]``).

    ``opacity`` scales every structure's own opacity; in outline mode only the boundary pixels
    are drawn, fully opaque times the structure opacity. Integer arithmetic through per-label
    tables (weight in 1/256 steps, colour premultiplied by it), a few milliseconds for a
    512x512 slice: ``out = (base * (256 - w) + colour * w + 128) >> 8`` per layer, in order.
    """
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    for labels, lut in zip(planes, lookups, strict=True):
        scale = 1.0 if outline else float(opacity)
        weight_lut = np.rint(lut.alpha * np.float32(256.0 * scale)).astype(np.uint16)
        if outline:
            labels = np.where(outline_mask(labels), labels, 0).astype(labels.dtype)
        weight = weight_lut.take(labels)
        rows = np.flatnonzero(weight.any(axis=1))
        if rows.size == 0:
            continue
        band = slice(rows[0], rows[-1] + 1)  # only the rows holding a structure
        w = weight[band][:, :, None]
        colour = (lut.rgb.astype(np.uint16) * weight_lut[:, None]).take(labels[band], axis=0)
        mixed = rgb[band].astype(np.uint16) * (256 - w) + colour + 128
        rgb[band] = (mixed >> 8).astype(np.uint8)
    return rgb
