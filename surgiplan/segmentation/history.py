"""Undo/redo by deltas: each step stores only the changed box of a label layer, compressed.

3D Slicer users report > 100 GB of RAM from undo copies of whole label maps (Slicer #6982);
here a step holds the ``before`` and ``after`` label values of the bounding box of the voxels
that changed, zlib-compressed (label arrays are long runs, so a brush dab costs a few kB).
Structure add/remove/rename/property changes are steps too. The history has a memory cap and a
step cap; the oldest steps are dropped first.
"""

from __future__ import annotations

import copy
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from surgiplan.processing.crop import Box

if TYPE_CHECKING:
    from surgiplan.model.structures import Structure
    from surgiplan.twin import Twin

_ZLIB_LEVEL = 1  # fast; label boxes compress > 20x even at this level


class Step(Protocol):
    """One undoable change of a twin."""

    @property
    def label(self) -> str: ...  # read-only: steps are frozen dataclasses

    @property
    def nbytes(self) -> int: ...

    def undo(self, twin: Twin) -> None: ...

    def redo(self, twin: Twin) -> None: ...


def _pack(values: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(values).tobytes(), _ZLIB_LEVEL)


@dataclass(frozen=True)
class LayerDelta:
    """Label values of ``layers[layer][box]`` before and after a change (zlib-compressed)."""

    layer: int
    box: Box
    dtype: np.dtype
    before: bytes
    after: bytes
    label: str = "edit"

    @classmethod
    def capture(cls, layer_array: np.ndarray, layer: int, box: Box, new_values: np.ndarray,
                *, label: str = "edit") -> LayerDelta:
        """The delta that turns ``layer_array[box]`` into ``new_values`` (call before writing)."""
        old = layer_array[box]
        return cls(layer, box, old.dtype, _pack(old), _pack(new_values.astype(old.dtype)),
                   label)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(s.stop - s.start for s in self.box)  # type: ignore[return-value]

    @property
    def nbytes(self) -> int:
        return len(self.before) + len(self.after) + 200

    def values(self, *, after: bool) -> np.ndarray:
        raw = zlib.decompress(self.after if after else self.before)
        return np.frombuffer(raw, dtype=self.dtype).reshape(self.shape)

    def undo(self, twin: Twin) -> None:
        twin.write_layer_region(self.layer, self.box, self.values(after=False))

    def redo(self, twin: Twin) -> None:
        twin.write_layer_region(self.layer, self.box, self.values(after=True))


@dataclass(frozen=True)
class StructureAdded:
    """A structure record and the delta writing its voxels (``removed=True``: the inverse)."""

    structure: Structure
    index: int
    delta: LayerDelta | None
    removed: bool = False
    label: str = "add structure"

    @property
    def nbytes(self) -> int:
        return 500 + (self.delta.nbytes if self.delta else 0)

    def _add(self, twin: Twin) -> None:
        twin.insert_structure(copy.deepcopy(self.structure), index=self.index)
        if self.delta is not None:
            self.delta.redo(twin) if not self.removed else self.delta.undo(twin)

    def _remove(self, twin: Twin) -> None:
        twin.remove_structure(self.structure.name)

    def undo(self, twin: Twin) -> None:
        self._add(twin) if self.removed else self._remove(twin)

    def redo(self, twin: Twin) -> None:
        self._remove(twin) if self.removed else self._add(twin)


@dataclass(frozen=True)
class StructureRenamed:
    old: str
    new: str
    label: str = "rename structure"
    nbytes: int = 200

    def undo(self, twin: Twin) -> None:
        twin.rename_structure(self.new, self.old)

    def redo(self, twin: Twin) -> None:
        twin.rename_structure(self.old, self.new)


@dataclass(frozen=True)
class PropertiesChanged:
    name: str
    before: dict[str, Any]
    after: dict[str, Any]
    label: str = "structure properties"
    nbytes: int = 400

    def undo(self, twin: Twin) -> None:
        twin.set_structure_properties(self.name, **self.before)

    def redo(self, twin: Twin) -> None:
        twin.set_structure_properties(self.name, **self.after)


@dataclass(frozen=True)
class CompoundStep:
    """Several steps undone and redone as one (a brush stroke, a preset)."""

    steps: tuple[Step, ...]
    label: str = "edit"

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.steps) + 100

    def undo(self, twin: Twin) -> None:
        for step in reversed(self.steps):
            step.undo(twin)

    def redo(self, twin: Twin) -> None:
        for step in self.steps:
            step.redo(twin)


@dataclass
class History:
    """Undo and redo stacks of steps, capped at ``max_bytes`` and ``max_steps`` (oldest go)."""

    max_bytes: int = 256 * 2**20
    max_steps: int = 200
    _done: deque[Step] = field(default_factory=deque)
    _undone: list[Step] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        """Memory held by the steps (compressed deltas + bookkeeping), bytes."""
        return sum(s.nbytes for s in self._done) + sum(s.nbytes for s in self._undone)

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    @property
    def undo_label(self) -> str | None:
        return self._done[-1].label if self._done else None

    @property
    def redo_label(self) -> str | None:
        return self._undone[-1].label if self._undone else None

    def push(self, step: Step) -> None:
        """Record a step that was just applied; clears the redo stack."""
        self._done.append(step)
        self._undone.clear()
        total = self.nbytes
        while self._done and (len(self._done) > self.max_steps or total > self.max_bytes):
            total -= self._done.popleft().nbytes

    def undo(self, twin: Twin) -> str | None:
        """Undo the last step; returns its label (None when there is nothing to undo)."""
        if not self._done:
            return None
        step = self._done.pop()
        step.undo(twin)
        self._undone.append(step)
        return step.label

    def redo(self, twin: Twin) -> str | None:
        """Redo the last undone step; returns its label (None when there is nothing to redo)."""
        if not self._undone:
            return None
        step = self._undone.pop()
        step.redo(twin)
        self._done.append(step)
        return step.label

    def clear(self) -> None:
        self._done.clear()
        self._undone.clear()
