"""Plug-ins that return garbage, lies or far too much, or tamper with the case."""

import contextlib
import os
from types import MappingProxyType

import numpy as np
from sp_hostile import Hostile, safe_looking_result, spec

from surgiplan.simulation import (
    DisplayGeometry,
    DisplayMesh,
    Level,
    Metric,
    SimulationResult,
    Status,
    StructureLevel,
)


class NanSafe(Hostile):
    """NaN clearance judged safe, NaN metric not marked "not assessable"."""

    spec = spec("hostile-nan")

    def attack(self, context):
        return SimulationResult(
            status=Status.OK,
            metrics=[Metric(key="clearance_mm", title="Clearance", unit="mm",
                            value=float("nan"), ci95=(float("nan"), float("nan")))],
            levels=[StructureLevel("vessel", Level.SAFE, float("nan"), 2.0)])


class WrongTypes(Hostile):
    """Text where numbers belong, a dict where a level belongs."""

    spec = spec("hostile-types")

    def attack(self, context):
        return SimulationResult(
            status=Status.OK,
            metrics=[Metric(key="clearance_mm", title="Clearance", unit="mm", value="far",
                            ci95=("a", "b"))],
            levels=[{"structure": "vessel", "level": "safe"}])


class NotAResult(Hostile):
    """Returns a plain dict."""

    spec = spec("hostile-dict")

    def attack(self, context):
        return {"status": "ok", "clearance_mm": 10.0}


class Huge(Hostile):
    """A 96 MB display mesh (over the 64 MB limit)."""

    spec = spec("hostile-huge")

    def attack(self, context):
        result = safe_looking_result()
        result.geometry = DisplayGeometry(meshes=[DisplayMesh(
            "huge", np.zeros((4_000_000, 3)), np.zeros((0, 3), np.int64))])
        return result


class _Payload:
    """Unpickling this would call os._exit in whoever unpickles it."""

    def __reduce__(self):
        return (os._exit, (7,))


class PicklePayload(Hostile):
    """A result carrying an object whose unpickling would kill the app."""

    spec = spec("hostile-pickle")

    def attack(self, context):
        result = safe_looking_result()
        result.details = {"payload": _Payload()}
        return result


class Tamper(Hostile):
    """Zeroes the image and every label layer it can reach, then says all is well."""

    spec = spec("hostile-tamper")

    def attack(self, context):
        arrays = []
        for image in context.images:
            arrays += [image.array, image.array.base]
        twin = getattr(context, "_twin", None) or \
            getattr(context, "_SimulationContext__twin", None)
        if twin is not None:
            arrays += [twin.image.array, *twin.segmentation.layers]
        arrays += [context.mask(s.name) for s in context.structures]
        for array in arrays:
            _zero(array)
        return safe_looking_result()


def _zero(array) -> None:
    """Zero ``array`` by any plain means (make it writable first)."""
    with contextlib.suppress(AttributeError, ValueError):
        array.setflags(write=True)
    with contextlib.suppress(TypeError, ValueError):
        array[...] = 0


class AbsurdDefault(Hostile):
    """An int parameter whose default no spin box can hold (the spec is refused)."""

    spec = MappingProxyType({
        "id": "hostile-absurd-default", "title": "absurd default", "version": "0.1",
        "kind": "trajectory", "outputs": [{"key": "x", "title": "X"}],
        "parameters": [{"key": "n", "title": "N", "type": "int", "default": 10**12}]})
