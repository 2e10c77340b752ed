"""What a phantom is made of: structures (shape, role, HU, priority) on an image grid."""

from __future__ import annotations

from dataclasses import dataclass, field

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import ROLE_COLORS, Role
from surgiplan.phantoms.primitives import Shape

PRIORITY_RULE = (
    "A voxel takes the label of the highest-priority structure whose shape contains its centre "
    "(signed distance <= 0); so the label region of a structure is its shape minus the shapes "
    "of every structure of higher priority. HU are composited in ascending priority with "
    "partial-volume fractions clip(0.5 - d / h, 0, 1), h = cube root of the voxel volume; a "
    "structure with core_hu takes that value where d < -cortex_mm (same partial-volume rule)."
)


@dataclass(frozen=True)
class PhantomStructure:
    """One anatomical structure: its analytic shape (LPS mm) and how it is imaged.

    ``priority``: a larger number wins where shapes overlap. ``hu``: the structure's CT value
    before noise. ``margin_mm``: the default safety margin simulators score against.
    ``core_hu`` / ``cortex_mm``: bone with a cortex; voxels deeper than ``cortex_mm`` below the
    surface (by the shape's signed distance) take ``core_hu`` (e.g. cancellous bone).
    """

    name: str
    role: Role
    label: int
    hu: float
    priority: int
    shape: Shape
    margin_mm: float = 0.0
    color: tuple[float, float, float] | None = None
    description: str = ""
    core_hu: float | None = None
    cortex_mm: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))
        if self.core_hu is not None and self.cortex_mm <= 0:
            raise ValueError(f"{self.name}: core_hu needs a positive cortex_mm")
        if not 0 < self.label < 256:
            raise ValueError(f"{self.name}: phantom labels are 1..255, got {self.label}")
        if self.color is None:
            object.__setattr__(self, "color", ROLE_COLORS[self.role])


@dataclass(frozen=True)
class PhantomSpec:
    """A whole phantom: grid, structures and imaging parameters (HU, noise SD in HU)."""

    name: str
    geometry: ImageGeometry
    structures: tuple[PhantomStructure, ...]
    noise_sd_hu: float = 10.0
    blur_sigma_mm: float = 0.0
    background_hu: float = -1000.0
    window: tuple[float, float] = (40.0, 400.0)
    description: str = ""
    body_part: str = ""
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for attr in ("name", "label", "priority"):
            values = [getattr(s, attr) for s in self.structures]
            if len(set(values)) != len(values):
                raise ValueError(f"phantom {self.name}: structure {attr}s must be unique")

    def by_priority(self) -> list[PhantomStructure]:
        """Structures from the lowest priority (painted first) to the highest."""
        return sorted(self.structures, key=lambda s: s.priority)

    def structure(self, name: str) -> PhantomStructure:
        for s in self.structures:
            if s.name == name:
                return s
        raise KeyError(f"phantom {self.name} has no structure {name!r}")
