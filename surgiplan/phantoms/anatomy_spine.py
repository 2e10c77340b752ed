"""Lumbar spine phantom (L3-L5), patient supine: vertebrae, discs, cauda equina, nerve roots,
aorta with its bifurcation, psoas and paraspinal muscles, abdomen and skin.

Vertebrae have a 1.5 mm cortex (700 HU) around cancellous bone (200 HU), the bands a pedicle
screw simulator reads. Grid: 0.8 mm in-plane, 1 mm axial slices, 360 x 260 x 126 voxels.
LPS: +x patient left, +y posterior, +z superior; the spine's axis is x = 0, y = 0.
Voxel centres sit on half-millimetre z positions so no flat surface passes through a centre.
"""

from __future__ import annotations

import numpy as np

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role
from surgiplan.phantoms.primitives import Box, EllipticCylinder, Shape, Tube, Union, rotation_deg
from surgiplan.phantoms.spec import PhantomSpec, PhantomStructure

GRID_SIZE = (360, 260, 126)
SPACING_MM = (0.8, 0.8, 1.0)
GRID_CENTRE_LPS = (0.0, -5.0, 0.0)
LEVELS_Z_MM = {"L3": 36.0, "L4": 0.0, "L5": -36.0}
BODY_SEMI_MM = (24.0, 17.0)  # vertebral body: L-R, A-P
BODY_HALF_HEIGHT_MM = 13.0
DISC_HALF_HEIGHT_MM = 4.9  # 0.1 mm clear of each endplate
CORTEX_MM = 1.5

_AXIAL = np.eye(3)  # elliptic cylinders along S
_ALONG_P = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]]).T  # columns: L, S, P


def _vertebra(z: float) -> Shape:
    """Body, pedicles, lamina, spinous and transverse processes of one lumbar vertebra."""
    parts: list[Shape] = [
        EllipticCylinder((0.0, 0.0, z), BODY_SEMI_MM, BODY_HALF_HEIGHT_MM, _AXIAL),
        Box((0.0, 38.0, z + 2.0), (15.0, 3.5, 10.0)),  # lamina
        Box((0.0, 52.0, z - 3.0), (3.0, 17.0, 9.0)),  # spinous process, rooted in the lamina
    ]
    for side in (1.0, -1.0):
        pedicle_axes = rotation_deg((0, 0, 1), -side * 10.0) @ _ALONG_P
        parts.append(EllipticCylinder((side * 15.0, 23.0, z), (4.5, 7.0), 13.0, pedicle_axes))
        parts.append(Box((side * 28.0, 30.0, z), (14.0, 3.5, 5.0)))  # transverse process
    return Union(parts)


def _discs() -> Union:
    centres = (54.0, 18.0, -18.0, -54.0)  # L2-3, L3-4, L4-5, L5-S1
    return Union(
        [EllipticCylinder((0.0, 0.0, z), BODY_SEMI_MM, DISC_HALF_HEIGHT_MM, _AXIAL)
         for z in centres],
        disjoint=True,
    )


def _nerve_roots() -> Union:
    """Exiting roots below each pedicle, through the foramen, laterally, forwards and down."""
    roots = []
    for z in LEVELS_Z_MM.values():
        for side in (1.0, -1.0):
            roots.append(Tube(
                [(side * 8, 26, z - 12), (side * 22, 23, z - 16), (side * 40, 14, z - 22)],
                [2.2, 2.5, 2.5],
            ))
    return Union(roots)


def _aorta() -> Union:
    """Abdominal aorta anterior-left of the bodies, dividing into the iliacs at L4.

    Its rounded ends stay inside the field so its label is exactly its shape.
    """
    fork = (13.0, -31.0, 4.0)
    return Union([
        Tube([(14.0, -31.0, 51.0), fork], [10.0, 9.5]),
        Tube([fork, (38.0, -24.0, -55.0)], [6.5, 5.5]),
        Tube([fork, (-22.0, -24.0, -55.0)], [6.5, 5.5]),
    ])


def _pair(x: float, y: float, semi: tuple[float, float], half: float) -> Union:
    return Union(
        [EllipticCylinder((s * x, y, 0.0), semi, half, _AXIAL) for s in (1.0, -1.0)],
        disjoint=True,
    )


def build() -> PhantomSpec:
    """The lumbar spine phantom's analytic description (see module docstring)."""
    origin = np.asarray(GRID_CENTRE_LPS) - (np.asarray(GRID_SIZE) - 1) / 2 * np.asarray(SPACING_MM)
    geometry = ImageGeometry(GRID_SIZE, SPACING_MM, tuple(origin))
    long_mm = 80.0  # longer than the grid: body and muscles leave the field
    vertebrae = tuple(
        PhantomStructure(
            level, Role.BONE, 6 + n, 700.0, 6 + n, _vertebra(z), margin_mm=0.0,
            color=(0.93, 0.90, 0.80), core_hu=200.0, cortex_mm=CORTEX_MM,
            description=f"{level} vertebra: cortical shell 700 HU, cancellous 200 HU",
        )
        for n, (level, z) in enumerate(LEVELS_Z_MM.items())
    )
    structures = (
        PhantomStructure("skin", Role.SKIN, 1, -90.0, 1,
                         EllipticCylinder((0.0, -5.0, 0.0), (140.0, 100.0), long_mm, _AXIAL),
                         description="body outline; subcutaneous fat"),
        PhantomStructure("abdomen", Role.OTHER, 2, 35.0, 2,
                         EllipticCylinder((0.0, -50.0, 0.0), (112.0, 52.0), long_mm, _AXIAL),
                         color=(0.75, 0.60, 0.50), description="abdominal viscera"),
        PhantomStructure("psoas", Role.OTHER, 3, 50.0, 3, _pair(42.0, 2.0, (13.0, 17.0), long_mm),
                         color=(0.80, 0.35, 0.30), description="left and right psoas"),
        PhantomStructure("paraspinal muscles", Role.OTHER, 4, 50.0, 4,
                         _pair(32.0, 60.0, (20.0, 22.0), long_mm),
                         color=(0.75, 0.30, 0.30), description="erector spinae"),
        PhantomStructure("discs", Role.OTHER, 5, 90.0, 5, _discs(),
                         color=(0.60, 0.80, 0.70), description="intervertebral discs"),
        *vertebrae,
        PhantomStructure("nerve roots", Role.CRITICAL, 9, 30.0, 9, _nerve_roots(), margin_mm=2.0,
                         color=(0.95, 0.80, 0.20), description="exiting L3-L5 roots"),
        PhantomStructure("cauda equina", Role.CRITICAL, 10, 12.0, 10,
                         EllipticCylinder((0.0, 27.0, 0.0), (9.0, 7.0), 60.0, _AXIAL),
                         margin_mm=2.0, color=(0.95, 0.95, 0.30),
                         description="thecal sac with the cauda equina"),
        PhantomStructure("aorta", Role.CRITICAL, 11, 300.0, 11, _aorta(), margin_mm=2.0,
                         color=(0.90, 0.15, 0.15), description="aorta and iliac arteries"),
    )
    return PhantomSpec(
        name="spine",
        geometry=geometry,
        structures=structures,
        noise_sd_hu=12.0,
        window=(300.0, 1500.0),
        description="SurgiPlan lumbar spine phantom (analytic ground truth)",
        body_part="LSPINE",
    )
