"""The exercises shipped in ``surgiplan/training/exercises/``, built from the generated phantoms'
demo plans (:mod:`surgiplan.plans.demo`): the reference placement is a demo plan's intervention.

Regenerate them (after changing a phantom or a demo plan) with::

    .venv/bin/python -m surgiplan.training.shipped [--out surgiplan/training/exercises]

which generates any missing phantom into the user cache (see :mod:`surgiplan.training.cases`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from surgiplan.plans.compare import compare_stored
from surgiplan.plans.model import Intervention
from surgiplan.plans.store import read_plans
from surgiplan.simulation.spec import Kind
from surgiplan.training.attempt import placement_of
from surgiplan.training.exercise import (
    EXERCISES_DIR,
    SUFFIX,
    CaseRef,
    Exercise,
    MetricCriterion,
    Reference,
    ReferenceCriterion,
    Rubric,
    TimeCriterion,
    Tool,
    save_exercise,
)

AUTHOR = "SurgiPlan (built from the demo plans)"
MARGIN = "2 mm safety margin of the critical structures in this phantom"
ABLATIVE = "minimal ablative margin of 5 mm (the task)"
GRB_SOURCE = ("Gertzbein SD, Robbins SE. Spine 1990;15(1):11-14 (grade A/B: breach < 2 mm)")
SKIVE = "drill bits skid on the skull beyond about 30 deg to the normal"


def _reference(bundle: Path, plan_name: str | None) -> tuple[Reference, Intervention]:
    plans = read_plans(bundle).plans
    if plan_name is None:  # the safest demo plan
        plan_name = compare_stored(plans).safest or plans[0].name
    plan = next(p for p in plans if p.name == plan_name)
    item = plan.interventions[0]
    p = placement_of(item)
    return (Reference(name=plan.name, source=f"demo plan {plan.name!r} ({plan.notes})",
                      entry_lps=p.entry_lps, target_lps=p.target_lps), item)


def head_exercise(bundle: Path) -> Exercise:
    ref, item = _reference(bundle, None)
    return Exercise(
        id="head-seeg-tumour", title="SEEG electrode to the tumour", kind=Kind.TRAJECTORY,
        task=("Plan an SEEG electrode (0.8 mm) to this target: the centre of the deep tumour "
              "(marked). Choose an entry on the scalp that keeps clear of the arteries, veins "
              "and ventricles."),
        case=CaseRef(phantom="head"), target_structure="tumour",
        target_hint_lps=ref.target_lps, tool=Tool(diameter_mm=item.inputs["diameter_mm"]),
        reference=ref, author=AUTHOR,
        rubric=Rubric(
            metrics=[
                MetricCriterion(key="clearance_mm", title="Clearance to critical structures",
                                pass_at=2.0, fail_at=0.0, weight=3.0, source=MARGIN),
                MetricCriterion(key="breach_probability", title="Breach probability (worst)",
                                pass_at=0.0, fail_at=0.05, weight=2.0,
                                source="placement error of robot-assisted SEEG "
                                       "(Cardinale 2013)"),
                MetricCriterion(key="entry_angle_deg", title="Angle to the skin normal",
                                pass_at=30.0, fail_at=60.0, weight=1.0, source=SKIVE),
            ],
            reference=[
                ReferenceCriterion(measure="target_distance_mm", pass_at=2.0, fail_at=10.0,
                                   weight=2.0),
                ReferenceCriterion(measure="axis_angle_deg", pass_at=15.0, fail_at=60.0,
                                   weight=0.5),
            ],
            time=TimeCriterion(limit_s=600.0, weight=0.5)))


def spine_exercise(bundle: Path) -> Exercise:
    ref, item = _reference(bundle, "A suggested left L4 screw")
    screw = item.inputs["implant_id"]
    diameter, length = _screw_size(item)
    return Exercise(
        id="spine-left-l4-pedicle-screw", title="Left L4 pedicle screw", kind=Kind.IMPLANT,
        task=(f"Place a left L4 pedicle screw ({diameter:g} x {length:g} mm): the first point "
              "is the screw head (entry), the second sets its direction. Stay inside the "
              "pedicle and away from the cauda equina, the nerve roots and the aorta."),
        case=CaseRef(phantom="spine"), target_structure="L4",
        tool=Tool(simulator_id="implant", parameters=dict(item.parameters),
                  diameter_mm=diameter, length_mm=length),
        reference=ref.model_copy(update={"source": f"{ref.source}; screw {screw}"}),
        author=AUTHOR,
        rubric=Rubric(
            metrics=[
                MetricCriterion(key="breach_mm", title="Largest cortical breach", pass_at=0.0,
                                fail_at=2.0, weight=3.0, source=GRB_SOURCE),
                MetricCriterion(key="gertzbein_grade", title="Gertzbein-Robbins grade",
                                pass_at=0.0, fail_at=2.0, weight=1.0, source=GRB_SOURCE),
                MetricCriterion(key="min_distance_mm", structure="cauda equina",
                                pass_at=2.0, fail_at=0.0, weight=2.0, source=MARGIN),
                MetricCriterion(key="min_distance_mm", structure="aorta", pass_at=2.0,
                                fail_at=0.0, weight=1.0, source=MARGIN),
                MetricCriterion(key="min_distance_mm", structure="nerve roots", pass_at=2.0,
                                fail_at=0.0, weight=1.0, source=MARGIN),
            ],
            reference=[
                ReferenceCriterion(measure="entry_distance_mm", pass_at=3.0, fail_at=10.0),
                ReferenceCriterion(measure="axis_angle_deg", pass_at=5.0, fail_at=20.0,
                                   weight=2.0),
            ],
            time=TimeCriterion(limit_s=600.0, weight=0.5)))


def _screw_size(item: Intervention) -> tuple[float, float]:
    """Diameter and length (mm) from a library screw id such as ``generic-pedicle-screw:7x40``."""
    import re

    found = re.search(r"([0-9.]+)x([0-9.]+)$", item.inputs["implant_id"])
    if found is None:
        raise ValueError(f"not a library screw: {item.inputs['implant_id']!r}")
    return float(found.group(1)), float(found.group(2))


def liver_exercise(bundle: Path) -> Exercise:
    ref, item = _reference(bundle, "A microwave ablation")
    inputs = item.inputs
    return Exercise(
        id="liver-ablate-tumour-5mm", title="Ablate tumour 1 with a 5 mm margin",
        kind=Kind.ABLATION,
        task=("Ablate this tumour (tumour 1, marked) with a 5 mm margin using one microwave "
              f"antenna ({inputs['device_id']}, {inputs['settings'].get('power_w', 0):g} W for "
              f"{inputs['settings'].get('time_min', 0):g} min): the first point is on the shaft "
              "(skin entry), the second is the antenna tip. Spare the vessels."),
        case=CaseRef(phantom="liver"), target_structure="tumour 1",
        target_hint_lps=_centre(bundle, "tumour 1"),
        tool=Tool(device_id=inputs["device_id"], settings=dict(inputs["settings"]),
                  target_structure=inputs.get("target_structure") or "tumour 1",
                  parameters=dict(item.parameters)),
        reference=ref, author=AUTHOR,
        rubric=Rubric(
            metrics=[
                MetricCriterion(key="coverage_pct", title="Tumour coverage", pass_at=100.0,
                                fail_at=90.0, weight=2.0, source="complete tumour coverage"),
                MetricCriterion(key="min_margin_mm", title="Minimal ablative margin",
                                pass_at=5.0, fail_at=0.0, weight=3.0, source=ABLATIVE),
                MetricCriterion(key="volume_in_zone_ml", title="Critical structure in the zone",
                                pass_at=0.0, fail_at=0.5, weight=1.0,
                                source="no critical structure ablated"),
                MetricCriterion(key="path_min_distance_mm", title="Antenna path clearance",
                                pass_at=2.0, fail_at=0.0, weight=1.0, source=MARGIN),
            ],
            reference=[
                ReferenceCriterion(measure="target_distance_mm", pass_at=3.0, fail_at=15.0),
                ReferenceCriterion(measure="zone_overlap_pct", pass_at=80.0, fail_at=30.0,
                                   weight=2.0),
            ],
            time=TimeCriterion(limit_s=600.0, weight=0.5)))


def _centre(bundle: Path, structure: str) -> tuple[float, float, float]:
    from surgiplan.io.bundle import load_bundle
    from surgiplan.plans.demo import centroid_lps
    from surgiplan.simulation import SimulationContext

    x, y, z = centroid_lps(SimulationContext(load_bundle(bundle)), structure)
    return float(x), float(y), float(z)


BUILDERS = {"head": head_exercise, "spine": spine_exercise, "liver": liver_exercise}


def write_shipped(out: Path = EXERCISES_DIR) -> list[Path]:
    """Build every shipped exercise from its phantom's demo plans and write it to ``out``."""
    from surgiplan.training.cases import phantom_bundle

    written = []
    for name, build in BUILDERS.items():
        exercise = build(phantom_bundle(name))
        written.append(save_exercise(exercise, Path(out) / f"{exercise.id}{SUFFIX}"))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=EXERCISES_DIR)
    for path in write_shipped(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
