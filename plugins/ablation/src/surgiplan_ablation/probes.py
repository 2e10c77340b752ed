"""From an :class:`~surgiplan.simulation.AblationInput` to probes with their zones.

``device_id`` names a device table (the plug-in's data/ folder) and ``settings`` holds
``power_w`` and ``time_min``; or ``device_id = "custom"`` with ``settings`` ``long_mm``,
``short_mm`` and optionally ``tip_offset_mm`` (default 0: the zone is centred on the tip) and
``probe_diameter_mm`` (default 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.structures import Role
from surgiplan.simulation import AblationInput, SimulationContext
from surgiplan_ablation.devices import DeviceTable, ZoneSize, get_device
from surgiplan_ablation.zone import Zone

CUSTOM = "custom"
DEFAULT_PROBE_DIAMETER_MM = 2.0


@dataclass(frozen=True)
class Probe:
    """One probe: tip and shaft point (LPS mm), its zone size, device (None when custom)."""

    tip_lps: np.ndarray
    shaft_lps: np.ndarray
    size: ZoneSize
    modality: str
    diameter_mm: float
    device: DeviceTable | None = None

    @property
    def zone(self) -> Zone:
        return Zone.from_probe(self.tip_lps, self.shaft_lps, self.size)

    def label(self) -> str:
        if self.device is None:
            return f"custom {self.size.long_mm:g}x{self.size.short_mm:g} mm"
        return self.device.id


def resolve_probes(inputs: AblationInput, *, custom_modality: str = "microwave"
                   ) -> list[Probe]:
    """Every probe of ``inputs`` (the first, then ``extra_probes``) with its zone size."""
    return [_probe(p, custom_modality) for p in (inputs, *inputs.extra_probes)]


def _probe(p, custom_modality: str) -> Probe:
    tip, shaft = np.asarray(p.tip_lps, float), np.asarray(p.shaft_lps, float)
    s = dict(p.settings)
    if p.device_id == CUSTOM:
        try:
            size = ZoneSize(float(s["long_mm"]), float(s["short_mm"]),
                            float(s.get("tip_offset_mm", 0.0)))
        except KeyError as exc:
            raise BadInputError(f"a custom zone needs settings long_mm and short_mm, missing "
                                f"{exc}", action="give --zone LONGxSHORT") from exc
        if min(size.long_mm, size.short_mm) <= 0:
            raise BadInputError(f"zone axes must be > 0 mm, got {size.long_mm:g} x "
                                f"{size.short_mm:g}", action="give --zone LONGxSHORT in mm")
        return Probe(tip, shaft, size, custom_modality,
                     float(s.get("probe_diameter_mm", DEFAULT_PROBE_DIAMETER_MM)))
    device = get_device(p.device_id)
    if "power_w" not in s or "time_min" not in s:
        raise BadInputError(f"device {device.id} needs settings power_w and time_min",
                            action="give --power W and --time MIN")
    return Probe(tip, shaft, device.zone(s["power_w"], s["time_min"]), device.modality,
                 device.probe_diameter_mm, device)


def check_target_role(context: SimulationContext, name: str) -> None:
    """``BadInputError`` unless ``name`` has the role target: coverage and the 5/10 mm margins
    are tumour thresholds, meaningless for a vessel or an organ."""
    role = Role(context.structure(name).role)
    if role is not Role.TARGET:
        targets = [s.name for s in context.by_role(Role.TARGET)]
        raise BadInputError(
            f"{name!r} has the role {role.value}, not target: an ablation is judged against "
            f"tumour thresholds (targets here: {', '.join(targets) or 'none'})",
            action="give --target a structure with the role target, or mark the tumour as one")


def target_name(context: SimulationContext, inputs: AblationInput) -> str:
    """The tumour: the input's ``target_structure``, else the target-role structure nearest to
    the first tip (``BadInputError`` when there is none)."""
    if inputs.target_structure is not None:
        names = [s.name for s in context.structures]
        if inputs.target_structure not in names:
            raise BadInputError(f"no structure named {inputs.target_structure!r} (have "
                                f"{', '.join(names)})", action="give --target a structure")
        check_target_role(context, inputs.target_structure)
        return inputs.target_structure
    targets = context.by_role(Role.TARGET)
    if not targets:
        raise BadInputError("the case has no structure with the role target",
                            action="name the tumour with --target or mark it as a target")
    tip = np.asarray(inputs.tip_lps, float)[None]
    holding = [s for s in targets if s.name in context.structures_at(tip)[0]]
    if len(holding) == 1:  # the tip's own voxel: no distance map needed (live scoring)
        return holding[0].name
    return min(targets, key=lambda s: float(context.signed_distance_mm(s.name, tip)[0])).name
