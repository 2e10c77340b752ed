"""A form built from a simulator's declared parameter schema (any simulator, any kind).

Each :class:`~surgiplan.simulation.spec.Parameter` becomes one row: a spin box for ``float``
and ``int`` (its range, unit as suffix), a check box for ``bool``, a combo box for ``choice``;
the tooltip holds the description and the published source of the default. The form only
offers values the schema allows, and :meth:`ParameterForm.values` returns them checked with
``validate_parameters``-compatible types, so a simulator receives what it declared.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from surgiplan.simulation.spec import VALUE_LIMIT, Parameter, ParamType, check_value

FLOAT_LIMIT = VALUE_LIMIT  # spin boxes need finite bounds; an open range is shown as +-2e9
INT_LIMIT = int(VALUE_LIMIT)  # within QSpinBox's 32-bit range


class WheelGuard(QObject):
    """Application event filter: the mouse wheel over a spin box or combo box changes its value
    only when the field has keyboard focus; otherwise the wheel scrolls the enclosing panel
    (scrolling a form must never change a plan parameter unnoticed)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.Wheel or not isinstance(watched, QWidget):
            return False
        field = watched
        if not isinstance(field, QAbstractSpinBox | QComboBox):
            field = watched.parentWidget()
            if not isinstance(field, QAbstractSpinBox | QComboBox):
                return False
        if field.hasFocus():
            return False
        scroll = field.parentWidget()
        while scroll is not None and not isinstance(scroll, QAbstractScrollArea):
            scroll = scroll.parentWidget()
        if scroll is not None:
            QApplication.sendEvent(scroll.verticalScrollBar(), event)
        return True


_WHEEL_GUARD: WheelGuard | None = None


def install_wheel_guard() -> None:
    """Install the :class:`WheelGuard` on the application once (no-op without one)."""
    global _WHEEL_GUARD
    app = QApplication.instance()
    if app is None or _WHEEL_GUARD is not None:
        return
    _WHEEL_GUARD = WheelGuard()
    app.installEventFilter(_WHEEL_GUARD)


def decimals_for(param: Parameter) -> int:
    """Decimals shown for a float parameter: enough for its default and range ends (2..4)."""
    values = [v for v in (param.default, param.minimum, param.maximum)
              if isinstance(v, int | float) and not isinstance(v, bool) and v is not None]
    needed = 2
    for v in values:
        text = f"{float(v):.6f}".rstrip("0")
        needed = max(needed, len(text.split(".")[1]) if "." in text else 0)
    return min(needed, 4)


def tooltip_for(param: Parameter) -> str:
    """Description, range with unit and source of the default, one item per line."""
    lines = [param.title]
    if param.description:
        lines.append(param.description)
    if param.type in (ParamType.FLOAT, ParamType.INT):
        low = "-inf" if param.minimum is None else f"{param.minimum:g}"
        high = "inf" if param.maximum is None else f"{param.maximum:g}"
        lines.append(f"range [{low}, {high}] {param.unit}".rstrip())
    lines.append(f"default {param.default} {param.unit}".rstrip())
    if param.source:
        lines.append(f"source: {param.source}")
    return "\n".join(lines)


def _bounds(param: Parameter, limit: float) -> tuple[float, float]:
    low = -limit if param.minimum is None else max(-limit, param.minimum)
    high = limit if param.maximum is None else min(limit, param.maximum)
    return low, high


def make_editor(param: Parameter) -> QWidget:
    """The input widget for one parameter, set to its default."""
    if param.type is ParamType.BOOL:
        editor = QCheckBox()
        editor.setChecked(bool(param.default))
    elif param.type is ParamType.CHOICE:
        editor = QComboBox()
        editor.addItems(list(param.choices))
        editor.setCurrentText(str(param.default))
    elif param.type is ParamType.INT:
        editor = QSpinBox()
        low, high = _bounds(param, INT_LIMIT)
        editor.setRange(math.ceil(low), math.floor(high))
        editor.setValue(int(min(max(param.default, low), high)))  # the spec keeps it in range
    else:
        editor = QDoubleSpinBox()
        editor.setDecimals(decimals_for(param))
        low, high = _bounds(param, FLOAT_LIMIT)
        editor.setRange(low, high)
        span = high - low
        editor.setSingleStep(0.1 if span <= 10 else 0.5 if span <= 100 else 1.0)
        editor.setValue(float(param.default))
    if isinstance(editor, QSpinBox | QDoubleSpinBox):
        editor.setKeyboardTracking(False)  # one change per finished entry, not per keystroke
        if param.unit:
            editor.setSuffix(f" {param.unit}")
    editor.setObjectName(f"param_{param.key}")
    editor.setToolTip(tooltip_for(param))
    return editor


def _read(param: Parameter, editor: QWidget) -> Any:
    if param.type is ParamType.BOOL:
        return editor.isChecked()
    if param.type is ParamType.CHOICE:
        return editor.currentText()
    return int(editor.value()) if param.type is ParamType.INT else float(editor.value())


def _write(param: Parameter, editor: QWidget, value: Any) -> None:
    value = check_value(param, value)  # ValueError names the parameter and its range
    if param.type is ParamType.BOOL:
        editor.setChecked(bool(value))
    elif param.type is ParamType.CHOICE:
        editor.setCurrentText(str(value))
    else:
        editor.setValue(value)


def _connect(editor: QWidget, slot) -> None:
    if isinstance(editor, QCheckBox):
        editor.toggled.connect(slot)
    elif isinstance(editor, QComboBox):
        editor.currentTextChanged.connect(slot)
    else:
        editor.valueChanged.connect(slot)


class ParameterForm(QWidget):
    """Rows of labelled editors for a parameter schema; emits ``values_changed(dict)``."""

    values_changed = Signal(object)  # dict key -> value

    def __init__(self, parameters: Iterable[Parameter] = (), parent: QWidget | None = None):
        super().__init__(parent)
        self._layout = QFormLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._params: list[Parameter] = []
        self._editors: dict[str, QWidget] = {}
        install_wheel_guard()
        self.set_parameters(parameters)

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        return tuple(self._params)

    def set_parameters(self, parameters: Iterable[Parameter]) -> None:
        """Rebuild the form for another schema (all values back to their defaults)."""
        while self._layout.rowCount():
            self._layout.removeRow(0)
        self._params = list(parameters)
        self._editors = {}
        for param in self._params:
            editor = make_editor(param)
            label = QLabel(param.title)
            label.setToolTip(editor.toolTip())
            label.setWordWrap(True)
            self._layout.addRow(label, editor)
            _connect(editor, self._emit)
            self._editors[param.key] = editor
        if not self._params:
            self._layout.addRow(QLabel("This simulator has no parameters."))

    def editor(self, key: str) -> QWidget:
        return self._editors[key]

    def values(self) -> dict[str, Any]:
        """The current value of every parameter, typed as its schema says."""
        return {p.key: _read(p, self._editors[p.key]) for p in self._params}

    def set_values(self, values: dict[str, Any]) -> None:
        """Set some parameters; ``KeyError`` for an unknown key, ``ValueError`` out of range."""
        by_key = {p.key: p for p in self._params}
        for key in values:
            if key not in by_key:
                raise KeyError(f"no parameter {key!r}; have {list(by_key)}")
        for key, value in values.items():
            editor = self._editors[key]
            editor.blockSignals(True)
            try:
                _write(by_key[key], editor, value)
            finally:
                editor.blockSignals(False)
        self._emit()

    def reset_defaults(self) -> None:
        self.set_values({p.key: p.default for p in self._params})

    def _emit(self, *_: Any) -> None:
        self.values_changed.emit(self.values())
