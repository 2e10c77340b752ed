"""The generic parameter form: one editor per declared parameter, typed, ranged, with units."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox

from surgiplan.simulation import Kind, Output, Parameter, SimulatorSpec, validate_parameters
from surgiplan.ui.widgets.parameter_form import ParameterForm

SPEC = SimulatorSpec(
    id="formtest", title="Form test", version="1", kind=Kind.ABLATION,
    parameters=(
        Parameter(key="power_w", title="Power", unit="W", default=60.0, minimum=5.0,
                  maximum=200.0, source="Vendor sheet 2020"),
        Parameter(key="cycles", title="Cycles", type="int", default=3, minimum=1, maximum=9),
        Parameter(key="cooled", title="Cooled tip", type="bool", default=True),
        Parameter(key="model", title="Zone model", type="choice", default="sphere",
                  choices=("sphere", "ellipsoid")),
        Parameter(key="offset_mm", title="Offset", unit="mm", default=0.25),
    ),
    outputs=(Output(key="zone_ml", title="Zone", unit="ml"),),
)


@pytest.fixture
def form(qtbot):
    widget = ParameterForm(SPEC.parameters)
    qtbot.addWidget(widget)
    return widget


def test_one_typed_editor_per_parameter_with_range_and_unit(form):
    power = form.editor("power_w")
    assert isinstance(power, QDoubleSpinBox)
    assert (power.minimum(), power.maximum(), power.suffix()) == (5.0, 200.0, " W")
    assert "Vendor sheet 2020" in power.toolTip() and "[5, 200] W" in power.toolTip()
    assert isinstance(form.editor("cycles"), QSpinBox)
    assert (form.editor("cycles").minimum(), form.editor("cycles").maximum()) == (1, 9)
    assert isinstance(form.editor("cooled"), QCheckBox)
    combo = form.editor("model")
    assert isinstance(combo, QComboBox)
    assert [combo.itemText(n) for n in range(combo.count())] == ["sphere", "ellipsoid"]
    assert form.editor("offset_mm").decimals() >= 2  # 0.25 shown exactly


def test_values_are_the_defaults_typed_and_valid_for_the_simulator(form):
    values = form.values()
    assert values == SPEC.defaults()
    assert isinstance(values["cycles"], int) and isinstance(values["power_w"], float)
    assert validate_parameters(SPEC, values) == values


def test_editors_cannot_leave_the_declared_range(form, qtbot):
    form.editor("power_w").setValue(10_000.0)
    form.editor("cycles").setValue(-4)
    values = form.values()
    assert values["power_w"] == 200.0 and values["cycles"] == 1
    assert validate_parameters(SPEC, values) == values


def test_set_values_checks_keys_and_ranges_and_signals(form, qtbot):
    with qtbot.waitSignal(form.values_changed) as signal:
        form.set_values({"power_w": 80.0, "cooled": False, "model": "ellipsoid"})
    assert signal.args[0]["power_w"] == 80.0 and signal.args[0]["model"] == "ellipsoid"
    assert form.values()["cooled"] is False
    with pytest.raises(ValueError, match=r"power_w must be in \[5, 200\] W"):
        form.set_values({"power_w": 500.0})
    with pytest.raises(KeyError, match="no parameter"):
        form.set_values({"nonsense": 1})
    form.reset_defaults()
    assert form.values() == SPEC.defaults()


def test_rebuilds_for_another_schema(form):
    from surgiplan.simulation import load_simulator

    trajectory = load_simulator("trajectory").spec
    form.set_parameters(trajectory.parameters)
    assert form.values() == trajectory.defaults()
    assert form.editor("path_samples").minimum() == 11
    form.set_parameters(())
    assert form.values() == {}
