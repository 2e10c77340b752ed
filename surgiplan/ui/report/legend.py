"""Legends for the report's images (issue 15, item 8: a surgeon signs every page, so every
drawn object is labelled): a strip under each captured view names the plan's objects by colour
(each path by its intervention and verdict level, each outline or surface by its label) and,
for the 3D view, the side it is seen from. The slice views carry their own scale bar (mm) and
orientation letters; the strip says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen

from surgiplan.plans.model import Plan
from surgiplan.ui.plan.trajectory_tools import level_color

ROW_PX = 22
SWATCH_PX = 14
STRIP_BG = QColor(250, 250, 250)


@dataclass(frozen=True)
class LegendItem:
    """One coloured object on the page and what it is."""

    text: str
    color: QColor


def plan_legend(plan: Plan, meshes: list) -> list[LegendItem]:
    """Legend entries of a plan's drawn objects: paths (intervention label and level) and
    display meshes (their labels and colours)."""
    from surgiplan.ui.report.capture import placement, worst_level

    items = []
    for item in plan.interventions:
        if placement(item) is not None:
            level = worst_level(item)
            items.append(LegendItem(f"{item.label} ({item.kind}): {level or 'not scored'}; "
                                    "E entry, T target", level_color(level)))
    for mesh in meshes:
        rgb = mesh.color or (1.0, 0.55, 0.1)
        label = str(mesh.label).replace("_", " ")
        items.append(LegendItem(label, QColor.fromRgbF(*[float(c) for c in rgb[:3]])))
    return items


def with_legend(image: QImage, items: list[LegendItem], note: str) -> QImage:
    """``image`` with a strip below it: one swatch and text per item, then ``note``."""
    width = max(image.width(), 300)
    rows = len(items) + (1 if note else 0)
    out = QImage(width, image.height() + rows * ROW_PX + 6, QImage.Format.Format_RGB32)
    out.fill(STRIP_BG)
    p = QPainter(out)
    try:
        p.drawImage(0, 0, image)
        font = QFont()
        font.setPixelSize(13)
        p.setFont(font)
        y = image.height() + 4
        for item in items:
            p.setPen(QPen(QColor(40, 40, 40), 1.0))
            p.setBrush(item.color)
            p.drawRect(QRectF(8, y + (ROW_PX - SWATCH_PX) / 2, SWATCH_PX, SWATCH_PX))
            p.drawText(QRectF(8 + SWATCH_PX + 8, y, width - SWATCH_PX - 24, ROW_PX),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, item.text)
            y += ROW_PX
        if note:
            p.setPen(QColor(60, 60, 60))
            p.drawText(QRectF(8, y, width - 16, ROW_PX),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, note)
    finally:
        p.end()
    return out


SLICE_NOTE = "Scale bar in mm (lower corner); letters mark the patient's sides (R/L, A/P, S/I)."


def view3d_note(side: str | None) -> str:
    return (f"3D view from the patient's {side} side; perspective, no scale."
            if side else "3D view; perspective, no scale.")
