"""A simulator's static spec: identity, kind, required structure roles, typed parameters, outputs.

Every simulator declares one :class:`SimulatorSpec` (pydantic, so a plug-in's spec is checked
when it is discovered). Parameters carry a type, a unit, a default and an allowed range;
:func:`validate_parameters` turns user values into checked values or raises ``BadInputError``.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from surgiplan.errors import BadInputError
from surgiplan.model.structures import Role

API_VERSION = 1  # the contract version this core implements; a plug-in declares the one it uses
VALUE_LIMIT = 2e9  # numeric defaults and range ends lie within +-VALUE_LIMIT (32-bit spin boxes)


class Kind(StrEnum):
    """The four rehearsal kinds; each has its own input type (see :mod:`.inputs`)."""

    TRAJECTORY = "trajectory"
    IMPLANT = "implant"
    ABLATION = "ablation"
    RESECTION = "resection"


class ParamType(StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    CHOICE = "choice"


class Parameter(BaseModel):
    """One typed parameter: ``minimum``/``maximum`` are inclusive; ``unit`` e.g. "mm", "deg"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    type: ParamType = ParamType.FLOAT
    unit: str = ""
    default: float | int | bool | str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    description: str = ""
    source: str = ""  # the publication a default comes from, if any

    @model_validator(mode="after")
    def _default_is_valid(self) -> Parameter:
        for name, bound in (("minimum", self.minimum), ("maximum", self.maximum)):
            if bound is not None and not (math.isfinite(bound) and abs(bound) <= VALUE_LIMIT):
                raise ValueError(f"{self.key}: {name} {bound!r} is not a finite number within "
                                 f"+-{VALUE_LIMIT:g}")
        if self.minimum is not None and self.maximum is not None and \
                self.minimum > self.maximum:
            raise ValueError(f"{self.key}: minimum {self.minimum:g} > maximum {self.maximum:g}")
        value = check_value(self, self.default)
        if isinstance(value, int | float) and not isinstance(value, bool) and \
                abs(value) > VALUE_LIMIT:
            raise ValueError(f"{self.key}: default {value!r} is beyond +-{VALUE_LIMIT:g}")
        return self


class Output(BaseModel):
    """One metric a simulator produces; ``per_structure`` metrics repeat for each structure."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    unit: str = ""
    per_structure: bool = False
    description: str = ""


class SimulatorSpec(BaseModel):
    """What a simulator is and needs; static, read without running anything."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_.-]*$")
    title: str
    version: str
    api_version: int = API_VERSION
    kind: Kind
    required_roles: tuple[Role, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    outputs: tuple[Output, ...] = ()
    capabilities: tuple[str, ...] = ()  # e.g. ("search",) for an automatic path search
    description: str = ""

    @model_validator(mode="after")
    def _unique_keys(self) -> SimulatorSpec:
        for what, keys in (("parameter", [p.key for p in self.parameters]),
                           ("output", [o.key for o in self.outputs])):
            dupes = sorted({k for k in keys if keys.count(k) > 1})
            if dupes:
                raise ValueError(f"duplicate {what} keys {dupes}")
        return self

    def parameter(self, key: str) -> Parameter:
        for p in self.parameters:
            if p.key == key:
                return p
        raise KeyError(f"simulator {self.id} has no parameter {key!r}")

    def defaults(self) -> dict[str, Any]:
        return {p.key: p.default for p in self.parameters}


def parse_spec(data: Any, *, origin: str) -> SimulatorSpec:
    """A :class:`SimulatorSpec` from a spec object or dict; ``BadInputError`` naming ``origin``."""
    try:
        return data if isinstance(data, SimulatorSpec) else SimulatorSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "spec"
        raise BadInputError(f"invalid simulator spec: {where}: {first['msg']}", path=origin,
                            action="fix the plug-in's spec") from exc


def check_value(param: Parameter, value: Any) -> float | int | bool | str:
    """``value`` as the parameter's type, checked against its range; else ValueError."""
    if param.type is ParamType.BOOL:
        if not isinstance(value, bool):
            raise ValueError(f"{param.key} must be true or false, got {value!r}")
        return value
    if param.type is ParamType.CHOICE:
        if value not in param.choices:
            raise ValueError(f"{param.key} must be one of {list(param.choices)}, got {value!r}")
        return str(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{param.key} must be a number, got {value!r}")
    if param.type is ParamType.INT and float(value) != int(value):
        raise ValueError(f"{param.key} must be a whole number, got {value!r}")
    number = int(value) if param.type is ParamType.INT else float(value)
    if not math.isfinite(number):
        raise ValueError(f"{param.key} must be finite, got {value!r}")
    low = -math.inf if param.minimum is None else param.minimum
    high = math.inf if param.maximum is None else param.maximum
    if not low <= number <= high:
        raise ValueError(f"{param.key} must be in [{low:g}, {high:g}] {param.unit}, got {value!r}")
    return number


def validate_parameters(spec: SimulatorSpec, values: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with ``values``, each checked; ``BadInputError`` on an unknown/bad one."""
    values = dict(values or {})
    unknown = sorted(set(values) - {p.key for p in spec.parameters})
    if unknown:
        raise BadInputError(f"simulator {spec.id} has no parameter(s) {unknown}",
                            action=f"use one of {[p.key for p in spec.parameters]}")
    checked = spec.defaults()
    for p in spec.parameters:
        if p.key in values:
            try:
                checked[p.key] = check_value(p, values[p.key])
            except ValueError as exc:
                raise BadInputError(f"bad parameter for {spec.id}: {exc}",
                                    action="give a value in the stated range") from exc
    return checked
