"""Rulers, angles and ROI statistics: values against analytic truth, round trip through the
case bundle and through 3D Slicer markups (.mrk.json)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from surgiplan.io.bundle import load_bundle, save_bundle
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.plans.measurements import (
    Measurement,
    load_measurements,
    markups_document,
    measure,
    read_markups,
    store_measurements,
    write_markups,
)
from surgiplan.twin import Twin


def make_twin() -> Twin:
    """20x20x10 grid, 1 x 1 x 2 mm, values 100 + 10 * i HU (a ramp along i)."""
    geo = ImageGeometry((20, 20, 10), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), np.eye(3))
    i = np.indices(geo.shape_zyx)[2]
    array = (100 + 10 * i).astype(np.int16)
    return Twin(ImageVolume(array, geo, modality="CT", units="HU"))


def test_ruler_and_angle_against_truth():
    twin = make_twin()
    ruler = measure(Measurement("ruler", [[0, 0, 0], [3, 4, 0]]), twin.image)
    r = ruler.readings[0]
    assert (r.key, r.unit, r.value) == ("length_mm", "mm", pytest.approx(5.0))
    assert r.interval[0] < 5.0 < r.interval[1]
    angle = measure(Measurement("angle", [[10, 0, 0], [0, 0, 0], [0, 10, 0]]), twin.image)
    a = angle.readings[0]
    assert a.value == pytest.approx(90.0) and a.interval[0] < 90.0 < a.interval[1]
    with pytest.raises(ValueError, match="needs 3"):
        Measurement("angle", [[0, 0, 0], [1, 1, 1]])


def test_roi_statistics_against_truth():
    twin = make_twin()
    roi = measure(Measurement("roi", [[2, 2, 2], [5, 6, 6]]), twin.image)
    by_key = {r.key: r for r in roi.readings}
    # voxel centres inside: i 2..5 (4), j 2..6 (5), k 1..3 (z 2, 4, 6: 3) = 60 voxels
    assert by_key["voxels"].value == 60
    assert by_key["volume_ml"].value == pytest.approx(60 * 2.0 / 1000)
    assert by_key["mean"].value == pytest.approx(100 + 10 * 3.5)
    values = 100 + 10 * np.arange(2, 6)
    assert by_key["sd"].value == pytest.approx(np.repeat(values, 15).std(ddof=1))
    lo, hi = by_key["mean"].interval
    assert lo < by_key["mean"].value < hi
    sd = by_key["sd"].value  # chi-square 95 % interval, 59 d.f.: about 0.85..1.22 SD
    assert by_key["sd"].interval == pytest.approx((0.8476 * sd, 1.2193 * sd), rel=2e-3)
    assert hi - lo == pytest.approx(2 * 2.0010 * sd / np.sqrt(60), rel=1e-3)  # t, 59 d.f.
    assert by_key["volume_ml"].interval[0] <= by_key["volume_ml"].value \
        <= by_key["volume_ml"].interval[1]


def test_round_trip_through_the_case_bundle(tmp_path):
    twin = make_twin()
    items = [measure(Measurement("ruler", [[0, 0, 0], [3, 4, 0]], "gap"), twin.image),
             measure(Measurement("roi", [[2, 2, 2], [5, 6, 6]], "lesion"), twin.image)]
    store_measurements(twin, items)
    path = save_bundle(twin, tmp_path / "case.surgiplan")
    back = load_measurements(load_bundle(path))
    assert [m.name for m in back] == ["gap", "lesion"]
    assert np.allclose(back[0].points_lps, items[0].points_lps)
    assert back[1].readings[0].value == pytest.approx(items[1].readings[0].value)


def test_round_trip_through_slicer_markups(tmp_path):
    twin = make_twin()
    items = [measure(Measurement("ruler", [[1, 2, 3], [4, 6, 3]], "gap"), twin.image),
             measure(Measurement("angle", [[10, 0, 0], [0, 0, 0], [0, 10, 0]], "a"),
                     twin.image),
             measure(Measurement("roi", [[2, 2, 2], [5, 6, 6]], "lesion"), twin.image)]
    path = write_markups(items, tmp_path / "m.mrk.json")
    doc = json.loads(path.read_text())
    assert [m["type"] for m in doc["markups"]] == ["Line", "Angle", "ROI"]
    assert all(m["coordinateSystem"] == "LPS" for m in doc["markups"])
    assert doc["markups"][0]["measurements"][0]["value"] == pytest.approx(5.0)
    back = read_markups(path)
    assert [m.kind for m in back] == ["ruler", "angle", "roi"]
    for a, b in zip(items, back, strict=True):
        assert np.allclose(np.sort(a.points_lps, axis=0), np.sort(b.points_lps, axis=0))
    # a RAS file from Slicer: (r, a, s) is LPS (-r, -a, s)
    doc["markups"][0]["coordinateSystem"] = "RAS"
    path.write_text(json.dumps(doc))
    assert np.allclose(read_markups(path)[0].points_lps[0], [-1, -2, 3])
    assert markups_document([])["markups"] == []
