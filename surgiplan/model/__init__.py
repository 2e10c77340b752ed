"""The structural twin's building blocks (Qt-free): image geometry, volumes, structures and
their label layers, surfaces, provenance and events. The twin itself, which adds the derived
surfaces and distance maps computed by :mod:`surgiplan.processing`, is :mod:`surgiplan.twin`."""

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.provenance import Provenance
from surgiplan.model.structures import Role, Segmentation, Structure
from surgiplan.model.volume import ImageVolume

__all__ = ["ImageGeometry", "ImageVolume", "Provenance", "Role", "Segmentation", "Structure"]
