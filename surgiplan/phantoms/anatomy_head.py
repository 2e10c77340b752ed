"""Head phantom: scalp, skull, CSF, brain, lateral ventricles, arteries, veins, deep tumour.

Sizes are those of an adult head (about 150 mm wide, 190 mm deep, 180 mm tall) on a 1.0 mm
isotropic axial grid of 180 x 220 x 190 voxels. Positions are LPS mm; the head centre sits at
``HEAD_CENTRE_LPS`` (an arbitrary table position, so no coordinate is trivially zero).
"""

from __future__ import annotations

import numpy as np

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role
from surgiplan.phantoms.primitives import Ellipsoid, Shell, Tube, Union, rotation_deg
from surgiplan.phantoms.spec import PhantomSpec, PhantomStructure

HEAD_CENTRE_LPS = np.array([2.0, 12.0, 40.0])
GRID_SIZE = (180, 220, 190)
SPACING_MM = (1.0, 1.0, 1.0)

SCALP_SEMI_MM = (74.0, 94.0, 88.0)
SKULL_OUTER_SEMI_MM = (69.0, 89.0, 83.0)
SKULL_INNER_SEMI_MM = (62.5, 82.5, 76.5)
BRAIN_SEMI_MM = (60.0, 80.0, 74.0)


def _at(*points: tuple[float, float, float]) -> np.ndarray:
    """Head-centred offsets (mm, LPS axes) -> LPS points."""
    return np.asarray(points, dtype=float) + HEAD_CENTRE_LPS


def _ellipsoid(offset, semi, axes=None) -> Ellipsoid:
    return Ellipsoid(_at(offset)[0], semi, axes)


def _ventricles() -> Union:
    """Two lateral ventricles, anterior horns converging towards the midline (disjoint)."""
    return Union(
        [
            _ellipsoid((side * 12.0, -2.0, 14.0), (5.5, 22.0, 8.0),
                       rotation_deg((0, 0, 1), side * 8.0))
            for side in (1.0, -1.0)
        ],
        disjoint=True,
    )


def _arteries() -> Union:
    """Both middle cerebral arteries (M1 to the insula) and a pericallosal (ACA) artery."""
    mcas = [
        Tube(
            _at((side * 9, -6, -26), (side * 24, -8, -24), (side * 38, -4, -16),
                (side * 46, 2, -4), (side * 50, 10, 8)),
            [1.8, 1.7, 1.5, 1.3, 1.1],
        )
        for side in (1.0, -1.0)
    ]
    aca = Tube(
        _at((-2, -14, -24), (-2, -34, -10), (-2, -44, 10), (-2, -36, 32), (-2, -14, 44),
            (-2, 12, 44)),
        [1.5, 1.4, 1.3, 1.2, 1.1, 1.0],
    )
    return Union([*mcas, aca])


def _sagittal_sinus_points() -> np.ndarray:
    """Centreline of the superior sagittal sinus, 5 mm inside the inner table, midline."""
    b = SKULL_INNER_SEMI_MM[1] - 5.5
    c = SKULL_INNER_SEMI_MM[2] - 5.5
    theta = np.radians(np.linspace(40.0, 165.0, 12))
    return _at(*[(0.0, -b * np.cos(t), c * np.sin(t)) for t in theta])


def _veins() -> Union:
    """Superior sagittal sinus plus two cortical veins draining into it."""
    sss = _sagittal_sinus_points()
    sinus = Tube(sss, np.linspace(2.5, 4.0, len(sss)))
    trolard = Tube(
        _at((-52, 8, 18), (-45, 12, 40), (-30, 15, 58), (-12, 14, 68), (-2, 14, 70)),
        [1.2, 1.3, 1.4, 1.5, 1.6],
    )
    labbe = Tube(
        _at((47, 30, 8), (38, 40, 30), (24, 44, 46), (8, 45, 55), (0, 45, 57)),
        [1.2, 1.3, 1.4, 1.5, 1.6],
    )
    return Union([sinus, trolard, labbe])


def build() -> PhantomSpec:
    """The head phantom's analytic description (see module docstring)."""
    origin = HEAD_CENTRE_LPS - (np.asarray(GRID_SIZE) - 1) / 2.0 * np.asarray(SPACING_MM)
    geometry = ImageGeometry(GRID_SIZE, SPACING_MM, tuple(origin))
    skull = Shell(_ellipsoid((0, 0, 0), SKULL_OUTER_SEMI_MM),
                  _ellipsoid((0, 0, 0), SKULL_INNER_SEMI_MM))
    tumour = _ellipsoid((-30.0, 8.0, 2.0), (11.0, 9.0, 10.0), rotation_deg((1, 1, 0), 20.0))
    structures = (
        PhantomStructure("scalp", Role.SKIN, 1, 30.0, 1, _ellipsoid((0, 0, 0), SCALP_SEMI_MM),
                         description="skin and subcutaneous soft tissue of the scalp"),
        PhantomStructure("skull", Role.BONE, 2, 1200.0, 2, skull, margin_mm=1.0,
                         color=(0.93, 0.90, 0.80), description="cortical skull, 6-6.5 mm"),
        PhantomStructure("csf", Role.OTHER, 8, 8.0, 3,
                         _ellipsoid((0, 0, 0), SKULL_INNER_SEMI_MM),
                         color=(0.55, 0.75, 0.95), description="subarachnoid CSF rim"),
        PhantomStructure("brain", Role.ORGAN, 3, 35.0, 4, _ellipsoid((0, 0, 0), BRAIN_SEMI_MM),
                         color=(0.85, 0.70, 0.65), description="grey/white matter"),
        PhantomStructure("ventricles", Role.CRITICAL, 4, 5.0, 5, _ventricles(), margin_mm=2.0,
                         color=(0.30, 0.55, 0.95), description="lateral ventricles (CSF)"),
        PhantomStructure("veins", Role.CRITICAL, 6, 200.0, 6, _veins(), margin_mm=2.0,
                         color=(0.25, 0.35, 0.90),
                         description="superior sagittal sinus and cortical veins"),
        PhantomStructure("arteries", Role.CRITICAL, 5, 280.0, 7, _arteries(), margin_mm=2.0,
                         color=(0.90, 0.15, 0.15), description="MCA and ACA, contrast"),
        PhantomStructure("tumour", Role.TARGET, 7, 60.0, 8, tumour, margin_mm=5.0,
                         color=(0.95, 0.85, 0.10),
                         description="deep right basal-ganglia lesion, slightly enhancing"),
    )
    return PhantomSpec(
        name="head",
        geometry=geometry,
        structures=structures,
        noise_sd_hu=10.0,
        window=(40.0, 120.0),
        description="SurgiPlan head phantom (analytic ground truth)",
        body_part="HEAD",
    )
