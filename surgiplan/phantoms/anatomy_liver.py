"""Liver phantom (venous phase): abdomen, liver with portal and hepatic vein trees, two
hypodense tumours, both kidneys, aorta, IVC, vertebrae and spinal cord.

Grid: 256 x 256 x 104 voxels, 1.0 mm in-plane, 1.5 mm slices. LPS: +x patient left (so the
liver is at negative x), +y posterior, +z superior. Sizes are those of a slim adult.
"""

from __future__ import annotations

import numpy as np

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role
from surgiplan.phantoms.primitives import (
    Box,
    Ellipsoid,
    EllipticCylinder,
    Shape,
    Sphere,
    Tube,
    Union,
    rotation_deg,
)
from surgiplan.phantoms.spec import PhantomSpec, PhantomStructure

GRID_SIZE = (256, 256, 104)
SPACING_MM = (1.0, 1.0, 1.5)
VERTEBRA_Z_MM = (-70.0, -35.0, 0.0, 35.0, 70.0)


def _liver() -> Union:
    """Right lobe plus a left lobe reaching across the midline (overlapping ellipsoids)."""
    return Union([
        Ellipsoid((-50.0, -5.0, 10.0), (62.0, 72.0, 60.0), rotation_deg((0, 0, 1), -10.0)),
        Ellipsoid((20.0, -35.0, 25.0), (45.0, 35.0, 28.0), rotation_deg((0, 1, 0), 10.0)),
    ])


def _portal_veins() -> Union:
    """Portal trunk from the confluence to the hilum, right and left branches, segmentals."""
    return Union([
        Tube([(0, -15, -45), (-20, -8, -15), (-32, -4, -2)], [7.0, 6.8, 6.5]),
        Tube([(-32, -4, -2), (-55, 2, 5), (-75, 5, 10)], [5.0, 4.5, 3.5]),
        Tube([(-55, 2, 5), (-80, -15, 0), (-95, -35, -5)], [3.0, 2.5, 2.0]),
        Tube([(-75, 5, 10), (-90, 30, 5)], [3.0, 2.0]),
        Tube([(-32, -4, -2), (-10, -10, 8), (10, -25, 20), (30, -38, 28)], [4.5, 4.0, 3.5, 3.0]),
        Tube([(10, -25, 20), (20, -50, 35)], [2.5, 2.0]),
    ])


def _hepatic_veins() -> Union:
    """Right, middle and left hepatic veins converging on the IVC below the diaphragm."""
    return Union([
        Tube([(-85, 10, 30), (-50, 25, 55), (-26, 20, 70)], [2.5, 4.0, 5.0]),
        Tube([(-45, -40, 20), (-30, -10, 50), (-22, 18, 70)], [2.0, 3.5, 4.5]),
        Tube([(15, -35, 40), (0, -5, 58), (-18, 20, 70)], [2.0, 3.0, 4.0]),
    ])


def _vertebrae() -> Union:
    """Vertebral bodies with pedicles, lamina and spinous process, one per 35 mm."""
    parts: list[Shape] = []
    for z in VERTEBRA_Z_MM:
        parts.append(EllipticCylinder((0.0, 36.0, z), (22.0, 16.0), 12.4))
        parts.append(Box((0.0, 72.0, z + 2.0), (14.0, 4.0, 10.0)))  # lamina
        parts.append(Box((0.0, 84.0, z - 3.0), (3.5, 12.0, 9.0)))  # spinous, into lamina
        parts.extend(Box((s * 15.0, 60.0, z), (4.0, 12.0, 7.0)) for s in (1.0, -1.0))
    return Union(parts)


def build() -> PhantomSpec:
    """The liver phantom's analytic description (see module docstring)."""
    origin = -(np.asarray(GRID_SIZE) - 1) / 2.0 * np.asarray(SPACING_MM)
    geometry = ImageGeometry(GRID_SIZE, SPACING_MM, tuple(origin))
    long_mm = 100.0  # body and viscera leave the field in z
    kidneys = Union([
        Ellipsoid((-62.0, 42.0, -35.0), (26.0, 20.0, 38.0), rotation_deg((0, 0, 1), 20.0)),
        Ellipsoid((62.0, 44.0, -28.0), (25.0, 20.0, 38.0), rotation_deg((0, 0, 1), -20.0)),
    ], disjoint=True)
    vessel_role = Role.CRITICAL
    structures = (
        PhantomStructure("skin", Role.SKIN, 1, -80.0, 1,
                         EllipticCylinder((0.0, 0.0, 0.0), (124.0, 100.0), long_mm),
                         description="body outline; subcutaneous fat"),
        PhantomStructure("abdomen", Role.OTHER, 2, 30.0, 2,
                         EllipticCylinder((0.0, -4.0, 0.0), (112.0, 88.0), long_mm),
                         color=(0.75, 0.60, 0.50), description="muscle wall and bowel"),
        PhantomStructure("liver", Role.ORGAN, 3, 60.0, 3, _liver(),
                         color=(0.70, 0.35, 0.25), description="liver parenchyma, venous phase"),
        PhantomStructure("kidneys", Role.CRITICAL, 4, 160.0, 4, kidneys, margin_mm=2.0,
                         color=(0.80, 0.45, 0.55), description="left and right kidney"),
        PhantomStructure("vertebrae", Role.BONE, 5, 700.0, 5, _vertebrae(),
                         color=(0.93, 0.90, 0.80), core_hu=200.0, cortex_mm=1.5,
                         description="T11-L3 vertebrae: cortex 700 HU, cancellous 200 HU"),
        PhantomStructure("spinal cord", Role.CRITICAL, 6, 30.0, 6,
                         EllipticCylinder((0.0, 60.0, 0.0), (6.0, 5.0), 75.0),
                         margin_mm=2.0, color=(0.95, 0.95, 0.30), description="spinal cord"),
        PhantomStructure("aorta", vessel_role, 7, 170.0, 7,
                         Tube([(12.0, 8.0, -76.0), (12.0, 8.0, 76.0)], 11.0),
                         margin_mm=2.0, color=(0.90, 0.15, 0.15), description="aorta"),
        PhantomStructure("ivc", vessel_role, 8, 150.0, 8,
                         Tube([(-24.0, 12.0, -76.0), (-23.0, 16.0, 76.0)], 11.0),
                         margin_mm=2.0, color=(0.30, 0.35, 0.85),
                         description="inferior vena cava"),
        PhantomStructure("portal veins", vessel_role, 9, 190.0, 9, _portal_veins(),
                         margin_mm=2.0, color=(0.75, 0.30, 0.85),
                         description="portal vein and branches"),
        PhantomStructure("hepatic veins", vessel_role, 10, 170.0, 10, _hepatic_veins(),
                         margin_mm=2.0, color=(0.25, 0.45, 0.95),
                         description="right, middle and left hepatic veins"),
        PhantomStructure("tumour 1", Role.TARGET, 11, 35.0, 11,
                         Sphere((-65.0, -25.0, 20.0), 12.0), margin_mm=5.0,
                         description="hypodense metastasis, right lobe, 24 mm"),
        PhantomStructure("tumour 2", Role.TARGET, 12, 38.0, 12,
                         Ellipsoid((30.0, -47.0, 10.0), (10.0, 8.0, 9.0),
                                   rotation_deg((1, 0, 1), 25.0)),
                         margin_mm=5.0, color=(0.95, 0.65, 0.10),
                         description="hypodense lesion, left lobe, 16-20 mm"),
    )
    return PhantomSpec(
        name="liver",
        geometry=geometry,
        structures=structures,
        noise_sd_hu=10.0,
        window=(60.0, 350.0),
        description="SurgiPlan liver phantom (analytic ground truth)",
        body_part="ABDOMEN",
    )
