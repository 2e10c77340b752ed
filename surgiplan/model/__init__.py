"""The structural twin model: image geometry, volumes, structures, the twin itself (Qt-free)."""

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role, Segmentation, Structure
from surgiplan.model.twin import Provenance, Twin
from surgiplan.model.volume import ImageVolume

__all__ = [
    "ImageGeometry", "ImageVolume", "Provenance", "Role", "Segmentation", "Structure", "Twin",
]
