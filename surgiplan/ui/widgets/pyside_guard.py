"""Work-around for a PySide6 6.12 reference bug on CPython < 3.12.

Each ``SignalInstance.emit`` there releases one reference to ``True`` that it never took (its
bool result); after enough emits CPython frees ``True`` and aborts ("bool_dealloc: deallocating
True or False"), in a long session or at exit. When a probe shows the leak, this module holds
spare references to ``True``, topped up by :func:`top_up` (the main window calls it on a
timer) in lists deliberately never freed (at exit the leaked references must still be
covered). Costs 8 bytes per emit; nothing is done on unaffected versions.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

RESERVE = 1_000_000  # spare references kept above the leak
_held: list[list[bool]] = []


class _Probe(QObject):
    ping = Signal(float)


def emit_leaks_true() -> bool:
    """True when emitting a signal drops a reference to ``True`` (probed with 20 emits)."""
    if sys.version_info >= (3, 12):  # bools are immortal
        return False
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(20):
        probe.ping.emit(1.0)
    return sys.getrefcount(True) < before - 10


LEAKS = emit_leaks_true()


def top_up() -> None:
    """Keep at least :data:`RESERVE` spare references to ``True`` when emits leak them."""
    if LEAKS and sys.getrefcount(True) < 2 * RESERVE:
        spare = [True] * RESERVE
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(spare))  # never freed, not even at exit
        _held.append(spare)


top_up()
