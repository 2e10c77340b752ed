"""A full-grid label layer stored as the crop that holds its labelled voxels.

A :class:`LabelLayer` reads like a ``(nz, ny, nx)`` integer array (``shape``, ``dtype``,
indexing, ``layer == label``, ``np.asarray(layer)``) but keeps only ``data``, the box of the
grid holding every non-zero voxel, at ``offset`` (voxel ``(z, y, x)`` of ``data[0, 0, 0]``);
every voxel outside that box is 0. A skin, a vessel tree and a tumour on a big CT then cost
their boxes, not three full grids (issue 11 item 8). Writes grow the box as needed;
:meth:`LabelLayer.compact` shrinks it again. Basic indexing (ints and slices), integer point
lookups and boolean-mask writes work on the crop alone; any other index builds the full array
(correct, but as costly as a full layer).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

Box = tuple[slice, slice, slice]


def nonzero_box(array: np.ndarray) -> Box | None:
    """Smallest ``(z, y, x)`` slices holding every non-zero voxel of a 3D array; None if none."""
    out = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(np.any(array, axis=others))
        if hit.size == 0:
            return None
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return out[0], out[1], out[2]


def _shift(box: Box, by: tuple[int, ...]) -> Box:
    z, y, x = (slice(b.start + o, b.stop + o) for b, o in zip(box, by, strict=True))
    return z, y, x


def _overlap(a: Box, b: Box) -> Box | None:
    z, y, x = (slice(max(p.start, q.start), min(p.stop, q.stop)) for p, q in zip(a, b,
                                                                                strict=True))
    return None if any(s.start >= s.stop for s in (z, y, x)) else (z, y, x)


def _box_of(data: np.ndarray, offset: tuple[int, ...]) -> Box:
    z, y, x = (slice(o, o + d) for o, d in zip(offset, data.shape, strict=True))
    return z, y, x


class LabelLayer:
    """Labels on a ``shape`` grid, stored as ``data`` (the crop) at ``offset``; 0 elsewhere."""

    __hash__ = None  # type: ignore[assignment]  # == compares voxels, like an array
    ndim = 3

    def __init__(self, shape: tuple[int, ...], dtype: Any = np.uint8, *,
                 data: np.ndarray | None = None, offset: tuple[int, ...] = (0, 0, 0)) -> None:
        self.shape: tuple[int, int, int] = tuple(int(n) for n in shape)  # type: ignore[assignment]
        if len(self.shape) != 3:
            raise ValueError(f"a label layer is 3D (z, y, x), got shape {shape}")
        crop = np.zeros((0, 0, 0), dtype) if data is None else data
        at: tuple[int, int, int] = tuple(int(o) for o in offset)  # type: ignore[assignment]
        if crop.ndim != 3 or crop.dtype.kind not in "ui" or any(
                o < 0 or (d and o + d > n) for o, d, n in zip(at, crop.shape, self.shape,
                                                              strict=True)):
            raise ValueError(f"label crop {crop.shape} {crop.dtype} at {at} does not fit the "
                             f"grid {self.shape}")
        # (data, offset) in one attribute, replaced at once when the crop grows or shrinks: a
        # reader on another thread (the slice views) takes one consistent pair
        self._crop: tuple[np.ndarray, tuple[int, int, int]] = (crop, at)

    @classmethod
    def from_array(cls, array: np.ndarray) -> LabelLayer:
        """The layer of a full-grid integer array (only its non-zero box is kept, copied)."""
        array = np.asarray(array)
        if array.ndim != 3 or array.dtype.kind not in "uib":
            raise ValueError(f"a label layer needs a 3D integer array, got {array.shape} "
                             f"{array.dtype}")
        if array.dtype.kind != "u":
            array = array.astype(np.uint8 if array.size == 0 or array.max() < 256
                                 else np.uint16)
        box = nonzero_box(array)
        if box is None:
            return cls(array.shape, array.dtype)
        return cls(array.shape, data=np.array(array[box], copy=True),
                   offset=tuple(b.start for b in box))

    # ------------------------------------------------------------------ array facts
    @property
    def data(self) -> np.ndarray:
        """The crop: every labelled voxel, at :attr:`offset`."""
        return self._crop[0]

    @property
    def offset(self) -> tuple[int, int, int]:
        """Full-grid ``(z, y, x)`` voxel of ``data[0, 0, 0]``."""
        return self._crop[1]

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        """Voxels of the full grid."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Bytes held (the crop), not those of the full grid."""
        return int(self.data.nbytes)

    @property
    def box(self) -> Box:
        """The crop's ``(z, y, x)`` slices in the full grid (empty slices when no voxel)."""
        return _box_of(*self._crop)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return (f"LabelLayer(shape={self.shape}, dtype={self.dtype}, crop={self.data.shape} at "
                f"{self.offset})")

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data, offset = self._crop
        full = np.zeros(self.shape, data.dtype)
        full[_box_of(data, offset)] = data
        return full if dtype is None else full.astype(dtype, copy=False)

    def copy(self) -> LabelLayer:
        return LabelLayer(self.shape, data=self.data.copy(), offset=self.offset)

    def astype(self, dtype: Any, copy: bool = True) -> LabelLayer:
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        return LabelLayer(self.shape, data=self.data.astype(dtype), offset=self.offset)

    # ------------------------------------------------------------------ reading
    def region(self, box: Box) -> np.ndarray:
        """A fresh array of the voxels in ``box`` (full-grid ``(z, y, x)`` slices, step 1,
        within the grid)."""
        data, offset = self._crop
        out = np.zeros([b.stop - b.start for b in box], data.dtype)
        inner = _overlap(box, _box_of(data, offset))
        if inner is not None:
            out[_shift(inner, tuple(-b.start for b in box))] = \
                data[_shift(inner, tuple(-o for o in offset))]
        return out

    def __getitem__(self, key: Any) -> Any:
        basic = self._basic(key)
        if basic is not None:
            box, squeeze = basic
            return self.region(box)[squeeze]
        points = self._points(key)
        if points is not None:
            return self._at(points)
        return np.asarray(self)[key]

    def _basic(self, key: Any) -> tuple[Box, tuple[Any, ...]] | None:
        """(box, index that drops the int axes) of a basic index with steps of 1, else None."""
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            at = next(i for i, k in enumerate(key) if k is Ellipsis)
            key = key[:at] + (slice(None),) * (3 - len(key) + 1) + key[at + 1:]
        key = key + (slice(None),) * (3 - len(key))
        if len(key) != 3 or not all(isinstance(k, slice | int | np.integer) and
                                    not isinstance(k, bool) for k in key):
            return None
        box: list[slice] = []
        squeeze: list[Any] = []
        for k, n in zip(key, self.shape, strict=True):
            if isinstance(k, slice):
                start, stop, step = k.indices(n)
                if step != 1:
                    return None
                box.append(slice(start, max(start, stop)))
                squeeze.append(slice(None))
            else:
                i = int(k) + (n if int(k) < 0 else 0)
                if not 0 <= i < n:
                    raise IndexError(f"index {int(k)} is out of bounds for axis size {n}")
                box.append(slice(i, i + 1))
                squeeze.append(0)
        return (box[0], box[1], box[2]), tuple(squeeze)

    def _points(self, key: Any) -> tuple[np.ndarray, ...] | None:
        """Three integer index arrays (a point lookup), else None."""
        if not isinstance(key, tuple) or len(key) != 3:
            return None
        arrays = [np.asarray(k) for k in key]
        if not all(a.dtype.kind in "iu" for a in arrays):
            return None
        out = []
        for a, n in zip(arrays, self.shape, strict=True):
            if a.size and (a.min() < -n or a.max() >= n):
                raise IndexError(f"index out of bounds for axis size {n}")
            out.append(np.where(a < 0, a + n, a))
        return tuple(np.broadcast_arrays(*out))

    def _at(self, points: tuple[np.ndarray, ...]) -> np.ndarray:
        data, offset = self._crop
        local = [p - o for p, o in zip(points, offset, strict=True)]
        inside = np.ones(points[0].shape, bool)
        for p, d in zip(local, data.shape, strict=True):
            inside &= (p >= 0) & (p < d)
        out = np.zeros(points[0].shape, data.dtype)
        out[inside] = data[tuple(p[inside] for p in local)]
        return out

    def take(self, indices: Any, axis: int | None = None, out: Any = None,
             mode: str = "raise") -> np.ndarray:
        """``np.take`` of one plane along ``axis`` without the full array (else the full)."""
        if axis is not None and out is None and np.ndim(indices) == 0:
            key: list[Any] = [slice(None)] * 3
            key[axis] = int(indices)
            return self[tuple(key)]
        return np.asarray(self).take(indices, axis=axis, out=out, mode=mode)  # type: ignore[call-overload]

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        if np.ndim(other) != 0:
            return np.asarray(self) == other
        data, offset = self._crop
        full = np.zeros(self.shape, bool) if other != 0 else np.ones(self.shape, bool)
        full[_box_of(data, offset)] = data == other
        return full

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        return ~(self == other) if np.ndim(other) == 0 else np.asarray(self) != other

    def max(self) -> int:
        """The largest label (0 for an empty layer)."""
        return int(self.data.max()) if self.data.size else 0

    def any_in(self, mask: np.ndarray) -> bool:
        """True if any voxel where the full-grid boolean ``mask`` is True is labelled."""
        data, offset = self._crop
        return bool(data.size) and bool(np.any(data[mask[_box_of(data, offset)]]))

    def count(self, label: int) -> int:
        """Voxels equal to ``label`` (>= 1)."""
        return int(np.count_nonzero(self.data == label))

    def label_box(self, label: int) -> Box | None:
        """Full-grid box of the voxels equal to ``label`` (>= 1), slab by slab; None if none."""
        hits = [np.zeros(n, dtype=bool) for n in self.data.shape]
        for k in range(0, self.data.shape[0], 8):
            slab = self.data[k:k + 8] == label
            hits[0][k:k + 8] = slab.any(axis=(1, 2))
            hits[1] |= slab.any(axis=(0, 2))
            hits[2] |= slab.any(axis=(0, 1))
        found = [np.flatnonzero(h) for h in hits]
        if any(f.size == 0 for f in found):
            return None
        z, y, x = (slice(int(f[0]) + o, int(f[-1]) + 1 + o)
                   for f, o in zip(found, self.offset, strict=True))
        return z, y, x

    def sha256(self) -> str:
        """SHA-256 of the full C-order array's bytes (the same digest as hashing
        ``np.asarray(layer)``), made plane by plane."""
        digest = hashlib.sha256()
        zero = np.zeros(self.shape[1:], self.dtype).tobytes()
        for k in range(self.shape[0]):
            inside = self.data.size and self.offset[0] <= k < self.offset[0] + self.data.shape[0]
            digest.update(self[k].tobytes() if inside else zero)
        return digest.hexdigest()

    # ------------------------------------------------------------------ writing
    def __setitem__(self, key: Any, value: Any) -> None:
        basic = self._basic(key)
        if basic is not None:
            box = basic[0]
            shape = [b.stop - b.start for b in box]
            kept = [n for n, q in zip(shape, basic[1], strict=True) if q != 0]
            values = np.broadcast_to(np.asarray(value).astype(self.dtype, copy=False), kept)
            self.write_region(box, values.reshape(shape))
            return
        mask = np.asarray(key) if not isinstance(key, tuple) else None
        if mask is not None and mask.dtype == bool and mask.shape == self.shape:
            self._write_masked(mask, value)
            return
        full = np.asarray(self)  # any other index: on the full array, then cropped again
        full[key] = value
        self._replace(LabelLayer.from_array(full.astype(self.dtype, copy=False)))

    def write_region(self, box: Box, values: np.ndarray) -> None:
        """Set the voxels of ``box`` (full-grid slices within the grid) to ``values``."""
        values = np.asarray(values)
        labelled = nonzero_box(values)
        if labelled is not None:
            self.grow(_shift(labelled, tuple(b.start for b in box)))
        inner = _overlap(box, self.box)
        if inner is not None:
            self.data[_shift(inner, tuple(-o for o in self.offset))] = \
                values[_shift(inner, tuple(-b.start for b in box))]

    def _write_masked(self, mask: np.ndarray, value: Any) -> None:
        mbox = nonzero_box(mask)
        if mbox is None:
            return
        value = np.asarray(value)
        if np.any(value):
            self.grow(mbox)
            target = mbox
        else:
            overlap = _overlap(mbox, self.box)
            if overlap is None:
                return
            target = overlap
            if value.ndim:  # all zeros: one per mask voxel, only those in the crop matter
                value = np.zeros((), self.dtype)
        local = self.data[_shift(target, tuple(-o for o in self.offset))]
        local[mask[target]] = value

    def grow(self, box: Box) -> None:
        """Make the crop hold ``box`` (full-grid slices within the grid)."""
        if self.data.size == 0:
            new = box
        else:
            z, y, x = (slice(min(a.start, b.start), max(a.stop, b.stop))
                       for a, b in zip(self.box, box, strict=True))
            new = (z, y, x)
            if new == self.box:
                return
        data = np.zeros([b.stop - b.start for b in new], self.dtype)
        if self.data.size:
            data[_shift(self.box, tuple(-b.start for b in new))] = self.data
        self._crop = (data, (new[0].start, new[1].start, new[2].start))

    def clear_label(self, label: int) -> None:
        """Set the voxels equal to ``label`` to 0 (the crop is not shrunk: see compact)."""
        if self.data.size:
            self.data[self.data == label] = 0

    def compact(self) -> None:
        """Shrink the crop to the box of the non-zero voxels."""
        box = nonzero_box(self.data) if self.data.size else None
        if box is None:
            self._crop = (np.zeros((0, 0, 0), self.dtype), (0, 0, 0))
        elif any(b.stop - b.start != n for b, n in zip(box, self.data.shape, strict=True)):
            oz, oy, ox = (o + b.start for o, b in zip(self.offset, box, strict=True))
            self._crop = (self.data[box].copy(), (oz, oy, ox))

    def _replace(self, other: LabelLayer) -> None:
        self._crop = other._crop


def as_label_layer(layer: Any) -> LabelLayer:
    """``layer`` itself if it is a :class:`LabelLayer`, else the layer of that full array."""
    return layer if isinstance(layer, LabelLayer) else LabelLayer.from_array(layer)


class LayerList(list):  # type: ignore[type-arg]
    """A list of :class:`LabelLayer`; full arrays put into it become label layers."""

    def __init__(self, layers: Any = ()) -> None:
        super().__init__(as_label_layer(layer) for layer in layers)

    def append(self, layer: Any) -> None:
        super().append(as_label_layer(layer))

    def insert(self, index: Any, layer: Any) -> None:
        super().insert(index, as_label_layer(layer))

    def extend(self, layers: Any) -> None:
        super().extend(as_label_layer(layer) for layer in layers)

    def __setitem__(self, index: Any, layer: Any) -> None:
        if isinstance(index, slice):
            super().__setitem__(index, [as_label_layer(v) for v in layer])
        else:
            super().__setitem__(index, as_label_layer(layer))
