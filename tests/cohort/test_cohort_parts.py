"""Cohort building blocks without a cluster: variants, template and cohort validation, report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from surgiplan.cohort.cohort import cohort_from_json, load_cohort
from surgiplan.cohort.report import summarise, wilson_ci, write_report
from surgiplan.cohort.rows import COLUMNS
from surgiplan.cohort.runner import read_rows, write_table
from surgiplan.cohort.templates import load_template, template_from_json
from surgiplan.errors import BadInputError
from surgiplan.phantoms.primitives import Sphere
from surgiplan.phantoms.variants import Scaled, draw_variation, make_variant, variant_spec


def test_scaled_shape_keeps_the_exact_signed_distance():
    s = Scaled(Sphere((10.0, 0.0, 0.0), 5.0), 1.2, (0.0, 0.0, 0.0), (1.0, 2.0, 3.0))
    centre = np.array([12.0 + 1.0, 2.0, 3.0])  # pivot + 1.2 * (10, 0, 0) + shift
    points = centre + np.array([[0, 0, 0], [6.0, 0, 0], [0, 10.0, 0]])
    assert np.allclose(s.signed_distance(points), [-6.0, 0.0, 4.0])
    assert s.volume_mm3() == pytest.approx(4 / 3 * math.pi * 6.0**3)
    assert np.allclose(s.bounds_lps(), [centre - 6.0, centre + 6.0])


def test_variants_are_deterministic_and_vary():
    a, b = draw_variation("liver", 7), draw_variation("liver", 8)
    assert a == draw_variation("liver", 7)
    assert a.scale != b.scale and a.shift_lps != b.shift_lps
    assert 0.9 <= a.scale <= 1.1 and max(abs(v) for v in a.shift_lps) <= 5.0
    v = draw_variation("liver", 7, spacing_mm=4.0, field_mm=(120.0, 100.0, 80.0))
    geometry = variant_spec(v).geometry
    assert geometry.spacing_mm == (4.0, 4.0, 4.0) and tuple(geometry.size) == (30, 25, 20)
    vol1, seg1 = make_variant(v)
    vol2, seg2 = make_variant(v)
    assert np.array_equal(vol1.array, vol2.array)
    assert np.array_equal(seg1.layers[0], seg2.layers[0])


def test_bigger_variant_has_a_bigger_tumour():
    small = draw_variation("liver", 0, scale_sd=0.0, shift_mm=0.0, spacing_mm=3.0)
    big = small.__class__(**{**small.to_json(), "scale": 1.1})
    count = [int(make_variant(v)[1].mask("tumour 1").sum()) for v in (small, big)]
    assert count[1] / count[0] == pytest.approx(1.1**3, rel=0.15)


def test_bad_templates_and_cohorts_are_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="kind"):
        template_from_json({"kind": "teleport"})
    with pytest.raises(BadInputError, match="samples"):
        template_from_json({"kind": "ablation", "samples": -1})
    assert load_template("ablation").kind == "ablation"  # built-in name
    with pytest.raises(BadInputError, match="exactly one"):
        cohort_from_json({"name": "x"})
    with pytest.raises(BadInputError, match="no case bundles"):
        load_cohort(tmp_path)
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"cases": ["missing.surgiplan"]}))
    with pytest.raises(BadInputError, match="not a case bundle"):
        load_cohort(bad)
    name, refs = cohort_from_json({"name": "s", "generated": {"phantom": "spine", "count": 3,
                                                              "first_seed": 5}})
    assert name == "s" and [r.twin_id for r in refs] == ["s-0005", "s-0006", "s-0007"]
    assert refs[0].source == "generated:spine?seed=5"


def _row(twin: str, value: float, meets: float) -> dict:
    row = {k: ("" if t == "string" else 0 if t == "int64" else math.nan)
           for k, t in COLUMNS.items()}
    row.update(twin_id=twin, template="t", slot="L4 left", metric="breach_mm", title="Breach",
               unit="mm", value=value, threshold=2.0, threshold_kind="max",
               threshold_source="GR", meets=meets, source=f"/cases/{twin}.surgiplan")
    return row


def test_report_shares_worst_cases_and_pdf(tmp_path):
    values = [0.0, 0.5, 1.0, 3.0, 4.5, math.nan]
    rows = [_row(f"t{i}", v, math.nan if math.isnan(v) else float(v <= 2.0))
            for i, v in enumerate(values)]
    path = write_table(rows, tmp_path / "r.parquet")
    back = read_rows(path)
    assert len(back) == 6 and back[3]["value"] == 3.0
    (s,) = summarise(back)
    assert (s.n, s.n_not_assessable, s.n_meets) == (5, 1, 3)
    low, high = s.share_ci95
    assert low < 0.6 < high and (low, high) == pytest.approx(wilson_ci(3, 5))
    assert (round(low, 3), round(high, 3)) == (0.231, 0.882)  # Wilson 3/5
    assert [w["twin_id"] for w in s.worst[:2]] == ["t4", "t3"]  # largest breach first
    assert s.worst[0]["open"] == "surgiplan gui /cases/t4.surgiplan"
    paths = write_report(back, tmp_path / "rep")
    from pypdf import PdfReader

    assert len(PdfReader(paths["pdf"]).pages) == 2  # summary page + one histogram
    summary = json.loads(paths["summary"].read_text())
    assert summary["metrics"][0]["n_meets"] == 3
    with pytest.raises(BadInputError, match="not a cohort results table"):
        read_rows(paths["summary"])


def test_trajectory_entry_on_the_skin_along_a_direction_matches_the_analytic_scalp():
    from surgiplan.cohort.cohort import load_twin
    from surgiplan.cohort.templates import skin_exit
    from surgiplan.phantoms.anatomy_head import HEAD_CENTRE_LPS, SCALP_SEMI_MM
    from surgiplan.simulation import SimulationContext

    (ref,) = cohort_from_json({"generated": {"phantom": "head", "count": 1,
                                             "spacing_mm": 3.0}})[1]
    context = SimulationContext(load_twin(ref))
    scale, centre = ref.variation["scale"], HEAD_CENTRE_LPS + ref.variation["shift_lps"]
    for axis, semi in enumerate(SCALP_SEMI_MM):  # the scalp is an ellipsoid: exact surface
        direction = np.eye(3)[axis] * (-1.0 if axis == 1 else 1.0)
        entry = skin_exit(context, centre, direction)
        assert np.linalg.norm(entry - (centre + direction * semi * scale)) < 0.6 * 3.0
    with pytest.raises(BadInputError, match="not a direction"):
        skin_exit(context, centre, [0.0, 0.0, 0.0])
    (cut,) = cohort_from_json({"generated": {"phantom": "head", "count": 1, "spacing_mm": 4.0,
                                             "field_mm": [100, 100, 100]}})[1]
    with pytest.raises(ValueError, match="never leaves the skin inside the image"):
        skin_exit(SimulationContext(load_twin(cut)), centre, [0.0, 0.0, 1.0])  # scalp cut off
    with pytest.raises(BadInputError, match="kind"):
        template_from_json({"kind": "trajectories"})
    assert template_from_json({"kind": "trajectory", "entry": [0, 0, 1]}).options == {
        "entry": [0, 0, 1]}


def test_a_metric_pooled_over_slots_is_titled_for_every_slot():
    from surgiplan.cohort.report import pooled_title

    rows = [_row("a", 1.0, 1.0), _row("b", 2.0, 1.0)]
    assert pooled_title(rows) == "Breach"
    for r, slot in zip(rows, ("tumour 1", "tumour 2"), strict=True):
        r.update(slot=slot, title=f"Coverage of {slot}")
    assert pooled_title(rows) == "Coverage of [slot]"
    rows[1]["title"] = "Something else"
    assert pooled_title(rows) == "breach_mm"
