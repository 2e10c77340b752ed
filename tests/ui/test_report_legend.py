"""The report and Compare label what a surgeon signs (issue 15, items 8-9): the Gertzbein-Robbins
grade shows as its letter (A..E) with a lettered interval and threshold, the captured views get
a legend strip naming every coloured object, and the PDF's views section says what the
colours, markers and scale bars mean."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QImage

from surgiplan.plans.compare import Cell, Threshold
from surgiplan.simulation.result import DisplayMesh, Metric
from surgiplan.ui.plan.compare_window import cell_text
from surgiplan.ui.report.content import _interval, _threshold_text, _value
from surgiplan.ui.report.legend import LegendItem, with_legend
from surgiplan.ui.report.pdf import _images_section

GRADE = Metric("gertzbein_grade", "Gertzbein-Robbins grade", "", 2.0, ci95=(0.0, 3.0))


def test_grade_is_a_letter_in_the_report_and_in_compare(qapp):
    assert _value(GRADE) == "grade C"
    assert _interval(GRADE) == "A to D (prediction)"
    assert _threshold_text(GRADE, Threshold(1.0, "max", "Gertzbein 1990")).startswith("<= B")
    text = cell_text(Cell("Plan A", 2.0, ci95=(0.0, 3.0), best=True), "", "gertzbein_grade")
    assert text.splitlines()[:2] == ["grade C", "95 %: A to D"]
    distance = Metric("min_distance_mm", "Closest approach", "mm", 3.25, ci95=(2.0, 4.5))
    assert _value(distance) == "3.2 mm"  # other metrics keep their numbers
    assert cell_text(Cell("Plan A", 3.25), "mm", "min_distance_mm").startswith("3.2 mm")


def test_legend_strip_names_each_object_under_the_view(qapp):
    from surgiplan.ui.report.legend import plan_legend

    image = QImage(400, 300, QImage.Format.Format_RGB32)
    image.fill(QColor(0, 0, 0))
    zone = DisplayMesh("ablation_zone", np.zeros((3, 3)), np.array([[0, 1, 2]]), (1.0, 0.5, 0.0))
    from surgiplan.plans.model import Plan

    items = plan_legend(Plan(name="P"), [zone])
    assert items == [LegendItem("ablation zone", QColor.fromRgbF(1.0, 0.5, 0.0))]
    out = with_legend(image, items, "Scale bar in mm")
    assert out.height() > image.height() and out.width() == 400
    swatch = out.pixelColor(8 + 7, image.height() + 4 + 11)
    assert swatch.red() > 200 and swatch.blue() < 60  # the orange swatch
    assert out.pixelColor(200, 100) == QColor(0, 0, 0)  # the view itself is untouched


def test_pdf_views_section_carries_the_legend_text():
    html = _images_section(["axial", "3d"])
    assert "Legend" in html and "scale bar in mm" in html and "red breach" in html
