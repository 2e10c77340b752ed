"""The trajectory simulator: risk of a straight tool to every critical structure, with 95 %
intervals, and an automatic safest-path search (see search.py).

Per critical structure (role ``critical``):

* ``min_distance_mm`` = min over the path of (signed distance from the axis point to the
  structure surface, + outside) - tool radius: negative means the tool enters the structure;
* the closest point (LPS) on the axis; ``risk``: the distance-weighted risk integral (kernel.py);
* ``breach_probability``: fraction of Monte Carlo draws with ``min_distance_mm < 0``;
* level: breach (< 0) / caution (< margin) / safe, against the structure's margin or, when it
  has none, ``default_margin_mm``.

Whole path: ``path_length_mm``, ``entry_angle_deg`` (between the path and the inward normal of
the smooth outer skin at the entry, skin.py), ``clearance_mm`` (the smallest
``min_distance_mm``) and the structures traversed (in order, from the label map).

Error model (``error_profile``, default robot-assisted SEEG, Cardinale 2013; every source is
reported in ``details["error_model"]``), per Monte Carlo draw:

* placement: Gaussian entry and target errors (the profile's or the user's SDs);
* segmentation boundary: one Gaussian offset of each structure's surface (``boundary_sd_mm``);
* discretisation: the voxel distance map misplaces a smooth surface; measured against exact
  spheres (radius 4-9 mm, random sub-voxel centres, 1 mm grid, 30,000 draws) the error at the
  closest point has mean -0.11 and SD 0.16 voxel (RMS ``DISCRETISATION_SD_VOXELS``); it enters
  the clearance and risk draws as a further Gaussian offset. For the breach probability it is
  a shift of the whole plan: on 291 other random sphere plans, the shift of the map's
  clearance draws that reproduces the exact probability had mean 0.05 voxel (the map is
  conservative: it under-estimates distances to convex surfaces) and SD 0.10 voxel
  (``DISCRETISATION_SHIFT_*``); the probability's confidence interval is centred for that
  mean, and the shift's 95 % range adds to the binomial noise (``breach_interval``);
* skin normal: the smooth normal errs by an RMS 0.69 degree against the analytic one on the
  head phantom, i.e. ``NORMAL_SD_DEG`` per tangential axis, drawn as a tilt of the normal.

Intervals: ``min_distance_mm``, ``risk``, ``clearance_mm``, ``path_length_mm`` and
``entry_angle_deg`` are prediction intervals (2.5th-97.5th percentile of the draws, widened to
hold the planned value); ``breach_probability`` a confidence interval. A metric whose inputs
leave the image, or any of whose draws cannot be evaluated, is not assessable, with the reason
and the share of failed draws: an entry or target outside the image; a structure cut by the
image edge with the path nearer the edge than to the visible structure (its unseen part may be
nearer; for the risk, within the risk band of the edge); an entry more than
``ENTRY_SKIN_TOLERANCE_MM`` from the outer skin (no skin normal there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from surgiplan.model.structures import Role
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.simulation import (
    Concern,
    DisplayGeometry,
    DisplayLine,
    DisplayPoint,
    IntervalKind,
    Kind,
    Level,
    Metric,
    Output,
    Parameter,
    PathSearchRequest,
    PathSearchResult,
    SimulationContext,
    SimulationResult,
    SimulatorSpec,
    Status,
    StructureLevel,
    TrajectoryInput,
    UncertaintyModel,
    level_for,
)
from surgiplan.simulation.path_search import DEFAULT_MAX_ANGLE_DEG
from surgiplan.simulation.uncertainty import (
    SEEG_ROBOT_PROFILE,
    draw_placements,
    interval95,
    probability95,
)
from surgiplan_trajectory import __version__
from surgiplan_trajectory.kernel import N_SAMPLES, lps_to_zyx_matrix, score_paths
from surgiplan_trajectory.skin import LOCAL_PAD_MM, skin_normals, skin_normals_near

DEFAULT_MARGIN_MM = 3.0  # lower end of the 2.5-7 mm vessel clearances of automated SEEG plans
MARGIN_SOURCE = ("vessel clearance of automated SEEG plans 2.5-7 mm (De Momi E et al., Int J "
                 "CARS 2014;9(6):1087-1097; Sparks R et al., Int J CARS 2017;12(1):123-136)")

SPEC = SimulatorSpec(
    id="trajectory",
    title="Straight trajectory (needle, SEEG electrode, DBS lead, catheter)",
    version=__version__,
    kind=Kind.TRAJECTORY,
    required_roles=(Role.CRITICAL,),
    capabilities=("search",),
    parameters=(
        Parameter(key="default_margin_mm", title="Safety margin for structures without one",
                  unit="mm", default=DEFAULT_MARGIN_MM, minimum=0.0, maximum=30.0,
                  source=MARGIN_SOURCE),
        Parameter(key="risk_band_mm", title="Risk band (distance-weighted risk is 0 beyond)",
                  unit="mm", default=10.0, minimum=0.5, maximum=50.0,
                  description="w(c) = 1 inside, (B - c)/B within B mm, 0 beyond"),
        Parameter(key="path_samples", title="Axis samples per path", type="int", unit="",
                  default=N_SAMPLES, minimum=11, maximum=4001),
    ),
    outputs=(
        Output(key="path_length_mm", title="Path length", unit="mm"),
        Output(key="entry_angle_deg", title="Angle to skin normal at entry", unit="deg"),
        Output(key="clearance_mm", title="Smallest clearance to any critical structure",
               unit="mm"),
        Output(key="min_distance_mm", title="Minimum distance", unit="mm", per_structure=True),
        Output(key="risk", title="Distance-weighted risk", unit="", per_structure=True),
        Output(key="breach_probability", title="Probability of breach", unit="",
               per_structure=True),
    ),
    description="Risk of a straight tool to critical structures with Monte Carlo 95 % "
                "intervals; automatic safest-entry search over the skin.",
)


# Systematic error terms (see the module docstring); voxel = the largest grid spacing.
DISCRETISATION_SD_VOXELS = 0.2  # per-draw map error at the closest point (RMS, voxels)
DISCRETISATION_SHIFT_MEAN_VOXELS = 0.05  # per-plan clearance shift for P(breach): mean
DISCRETISATION_SHIFT_SD_VOXELS = 0.10  # ... and SD (voxels)
NORMAL_SD_DEG = 0.5  # smooth skin normal error per tangential axis (deg)
ENTRY_SKIN_TOLERANCE_MM = 3.0  # an entry farther from the outer skin has no skin normal
BREACH_CONCERN_PROBABILITY = 0.05  # P(breach) at or above this is a caution concern
SYSTEMATIC_SOURCES = {
    "discretisation_sd_voxels": "measured: voxel distance map vs exact spheres (simulator.py)",
    "discretisation_shift_voxels": "calibrated: the shift that maps the voxel map's breach "
                                   "probability onto the exact one (spheres, 291 plans)",
    "normal_sd_deg": "measured: smooth skin normal vs analytic normal, head phantom (skin.py)",
}


def skin_structure(context: SimulationContext) -> str | None:
    skins = context.by_role(Role.SKIN)
    return skins[0].name if skins else None


def entry_angles_deg(directions: np.ndarray, outward_normals: np.ndarray) -> np.ndarray:
    """Angle (deg) between unit path directions (entry -> target) and the inward normals."""
    cos = np.einsum("ij,ij->i", directions, -outward_normals)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def edge_distance_mm(geometry, entries_lps: np.ndarray, targets_lps: np.ndarray) -> np.ndarray:
    """Smallest distance (mm) from each straight path to the image's voxel-extent boundary,
    negative when an end lies outside (the extent is a box: the minimum is at an end)."""
    size = np.asarray(geometry.size, float)
    spacing = np.asarray(geometry.spacing_mm, float)
    out = []
    for ends in (entries_lps, targets_lps):
        ijk = geometry.lps_to_index(np.atleast_2d(ends))
        out.append((np.minimum(ijk + 0.5, size - 0.5 - ijk) * spacing).min(axis=1))
    return np.minimum(*out)


def touches_image_edge(mask: np.ndarray) -> bool:
    """True when a (nz, ny, nx) mask has a voxel on the grid's outer faces (cut by the view)."""
    return bool(mask[[0, -1]].any() or mask[:, [0, -1]].any() or mask[:, :, [0, -1]].any())


def box_touches_edge(box: tuple[slice, slice, slice] | None, shape_zyx) -> bool:
    """True when a structure's voxel bounding box ``(z, y, x)`` (None: no voxels) reaches the
    grid's outer faces: the same answer as :func:`touches_image_edge` on its mask, without the
    full-grid mask."""
    return box is not None and any(b.start == 0 or b.stop == n
                                   for b, n in zip(box, shape_zyx, strict=True))


def tilted(normals: np.ndarray, sd_deg: float, rng: np.random.Generator) -> np.ndarray:
    """Unit normals tilted by a Gaussian small-angle rotation, ``sd_deg`` per tangential axis."""
    kick = rng.normal(0.0, np.radians(sd_deg), normals.shape)
    kick -= np.einsum("ij,ij->i", kick, normals)[:, None] * normals
    out = normals + kick
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def prediction(value: float, draws: np.ndarray) -> tuple[float, float]:
    """The draws' central 95 % interval, widened to hold the planned ``value``."""
    low, high = interval95(draws)
    return (min(low, value), max(high, value))


def breach_interval(clearances: np.ndarray, shift_mean_mm: float,
                    shift_sd_mm: float) -> tuple[float, float]:
    """95 % confidence interval of P(clearance < 0) from Monte Carlo ``clearances`` (mm).

    The voxel map shifts a whole plan's clearances by a systematic error s (mean
    ``shift_mean_mm``, SD ``shift_sd_mm``). Centre: p = P(c + mean < 0). Shift part: p at
    s = mean -+ 1.96 SD (how far p moves each way); binomial part: the Wilson score interval
    of p over the draws. The two independent half-widths add in quadrature on each side; the
    interval is widened to hold the raw fraction of breaching draws (the reported value).
    """
    raw = np.asarray(clearances, float)
    z = 1.959964
    p = float(np.mean(raw + shift_mean_mm < 0))
    p_far = float(np.mean(raw + shift_mean_mm + z * shift_sd_mm < 0))
    p_near = float(np.mean(raw + shift_mean_mm - z * shift_sd_mm < 0))
    _, (w_low, w_high) = probability95(raw + shift_mean_mm < 0)
    low = p - math.hypot(p - p_far, p - w_low)
    high = p + math.hypot(p_near - p, w_high - p)
    p_raw = float(np.mean(raw < 0))
    return (max(0.0, min(low, p_raw)), min(1.0, max(high, p_raw)))


@dataclass
class _Draws:
    """One run's Monte Carlo draws and which of them stay in the image."""

    entries: np.ndarray
    targets: np.ndarray
    boundary: np.ndarray  # (n, structures) segmentation offsets, mm
    discretisation: np.ndarray  # (n, structures) map error offsets, mm
    normal_rng: np.random.Generator
    edge_mm: np.ndarray  # per draw: path's distance to the image edge (< 0: an end outside)

    @property
    def n(self) -> int:
        return len(self.entries)


def _share(failed: np.ndarray) -> float:
    return float(np.mean(failed)) if failed.size else 0.0


class TrajectorySimulator:
    """The trajectory plug-in (entry point ``trajectory``)."""

    spec = SPEC
    error_profile = SEEG_ROBOT_PROFILE

    def run(
        self,
        context: SimulationContext,
        inputs: TrajectoryInput,
        parameters: dict[str, Any],
        *,
        uncertainty: UncertaintyModel,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> SimulationResult:
        entry = np.asarray(inputs.entry_lps, float)
        target = np.asarray(inputs.target_lps, float)
        critical = context.by_role(Role.CRITICAL)
        warnings = _input_warnings(context, entry, target, critical)
        draws = self._draws(context, uncertainty, entry, target, len(critical))
        scorer = _Scorer(context, entry, target, inputs.radius_mm, parameters, draws)
        metrics: list[Metric] = []
        levels: list[StructureLevel] = []
        points = [DisplayPoint("entry", tuple(entry)), DisplayPoint("target", tuple(target))]
        per_draw: list[np.ndarray] = []
        for k, s in enumerate(critical):
            check(cancel)
            report(progress, 0.1 + 0.8 * k / max(1, len(critical)), f"scoring {s.name}")
            margin = s.margin_mm if s.margin_mm > 0 else float(parameters["default_margin_mm"])
            found, level, closest, dk = scorer.structure(k, s.name, margin)
            metrics += found
            levels.append(level)
            per_draw.append(dk)
            if closest is not None:
                points.append(DisplayPoint(f"closest to {s.name}", tuple(closest)))
        metrics += self._path_metrics(context, entry, target, draws, warnings)
        if levels:
            metrics.append(_clearance_metric(levels, per_draw, draws))
        n_path = int(parameters["path_samples"])
        path = entry + np.linspace(0, 1, n_path)[:, None] * (target - entry)
        report(progress, 1.0, "trajectory scored")
        geometry = DisplayGeometry(
            lines=[DisplayLine("tool", (tuple(entry), tuple(target)), inputs.radius_mm)],
            points=points)
        return SimulationResult(
            status=Status.OK, metrics=metrics, levels=levels, geometry=geometry,
            warnings=warnings, concerns=_concerns(metrics, levels, parameters),
            details={"traversed": _ordered_unique(context.structures_at(path)),
                     "error_model": self._error_model(context, uncertainty)})

    def _error_model(self, context: SimulationContext, model: UncertaintyModel) -> dict:
        """The default profile, the model actually used and the systematic error terms."""
        h = max(context.geometry.spacing_mm)
        return {"profile": self.error_profile.to_json(),
                "used": model.to_json(context.geometry.spacing_mm),
                "systematic": {"discretisation_sd_mm": DISCRETISATION_SD_VOXELS * h,
                               "discretisation_shift_mean_mm":
                                   DISCRETISATION_SHIFT_MEAN_VOXELS * h,
                               "discretisation_shift_sd_mm": DISCRETISATION_SHIFT_SD_VOXELS * h,
                               "normal_sd_deg": NORMAL_SD_DEG, "sources": SYSTEMATIC_SOURCES}}

    @staticmethod
    def _draws(context, model, entry, target, n_structures) -> _Draws | None:
        if model.samples <= 0:
            return None
        spacing = context.geometry.spacing_mm
        placed = draw_placements(model, entry, target, n_structures=n_structures,
                                 spacing_mm=spacing)
        rng = np.random.default_rng([int(model.seed), 1])
        disc = rng.normal(0.0, DISCRETISATION_SD_VOXELS * max(spacing),
                          placed.boundary.shape)
        return _Draws(placed.entries, placed.targets, placed.boundary, disc, rng,
                      edge_distance_mm(context.geometry, placed.entries, placed.targets))

    def _path_metrics(self, context, entry, target, draws, warnings) -> list[Metric]:
        length = float(np.linalg.norm(target - entry))
        if draws is None:
            out = [Metric("path_length_mm", "Path length", "mm", length,
                          interval=IntervalKind.NONE, no_interval_reason=NO_DRAWS)]
        else:
            lengths = np.linalg.norm(draws.targets - draws.entries, axis=1)
            out = [Metric("path_length_mm", "Path length", "mm", length,
                          prediction(length, lengths), interval=IntervalKind.PREDICTION,
                          failed_draw_share=0.0)]
        if skin_structure(context) is None:
            warnings.append("no structure has the role skin: the entry angle is not computed")
            return out
        return out + [_angle_metric(context, entry, target, draws, warnings)]

    def search(
        self,
        context: SimulationContext,
        request: PathSearchRequest,
        parameters: dict[str, Any],
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> PathSearchResult:
        from surgiplan_trajectory.search import search_paths

        return search_paths(context, request, parameters, progress=progress, cancel=cancel)


NO_DRAWS = "Monte Carlo off (samples = 0): no interval"
ANGLE_TITLE = "Angle to the skin normal at entry"


class _Scorer:
    """Scores one path (and its draws) against one critical structure at a time."""

    def __init__(self, context, entry, target, radius_mm, parameters, draws) -> None:
        self.context, self.entry, self.target = context, entry, target
        self.radius = float(radius_mm)
        self.band = float(parameters["risk_band_mm"])
        self.n_path = int(parameters["path_samples"])
        self.draws = draws
        self.edge = float(edge_distance_mm(context.geometry, entry[None], target[None])[0])
        h = max(context.geometry.spacing_mm)
        self.shift = (DISCRETISATION_SHIFT_MEAN_VOXELS * h, DISCRETISATION_SHIFT_SD_VOXELS * h)

    def _path_ends(self) -> np.ndarray:
        """Entries and targets (LPS mm) of the nominal path and every draw."""
        ends = [np.atleast_2d(self.entry), np.atleast_2d(self.target)]
        if self.draws is not None:
            ends += [np.atleast_2d(self.draws.entries), np.atleast_2d(self.draws.targets)]
        return np.concatenate(ends)

    def structure(self, k: int, name: str, margin: float):
        """(metrics, level, closest point or None, per-draw clearances or None)."""
        # Only the region the paths cross (and the structure's): exact values, far less memory
        # than a full-grid map on a big CT.
        roi = self.context.distance_roi(name, covering_lps=self._path_ends())
        dist, m = roi.values, lps_to_zyx_matrix(roi.sub_geometry)
        cut = box_touches_edge(roi.mask_box, self.context.geometry.shape_zyx)
        d0, t0, r0 = score_paths(dist, m, self.entry, self.target, radius_mm=self.radius,
                                 band_mm=self.band, n_samples=self.n_path)
        d0, r0 = float(d0[0]), float(r0[0])
        why_d = self._unknown(self.edge, d0 + self.radius, cut, name)
        why_r = why_d or self._unknown_risk(self.edge, cut, name)
        closest = self.entry + t0[0] * (self.target - self.entry)
        if self.draws is None:
            return self._nominal_only(name, margin, d0, r0, closest, why_d, why_r)
        dr = self.draws
        offsets = dr.boundary[:, k] + dr.discretisation[:, k]
        dk, _, rk = score_paths(dist, m, dr.entries, dr.targets, radius_mm=self.radius,
                                band_mm=self.band, offsets_mm=offsets, n_samples=self.n_path)
        visible = dk - offsets + self.radius
        failed = self._failed(dr.edge_mm, visible, cut)
        failed_r = failed | (cut & (dr.edge_mm < self.band + self.radius))
        metrics = [
            self._metric("min_distance_mm", f"Minimum distance to {name}", "mm", name, d0,
                         why_d, failed, lambda: prediction(d0, dk)),
            self._metric("risk", f"Risk ({name})", "", name, r0, why_r, failed_r,
                         lambda: prediction(r0, rk)),
        ]
        no_disc = dk - dr.discretisation[:, k]
        p_breach = float(np.mean(no_disc < 0))
        metrics.append(self._metric(
            "breach_probability", f"Probability of breaching {name}", "", name, p_breach,
            why_d, failed, lambda: breach_interval(no_disc, *self.shift),
            kind=IntervalKind.CONFIDENCE))
        bad = bool(why_d) or bool(failed.any())
        level = _level(name, d0, margin, bad, None if bad else p_breach, closest, why_d,
                       self.inside(d0))
        return metrics, level, None if why_d else closest, None if bad else dk

    def _nominal_only(self, name, margin, d0, r0, closest, why_d, why_r):
        metrics = [
            self._metric("min_distance_mm", f"Minimum distance to {name}", "mm", name, d0,
                         why_d, None, None),
            self._metric("risk", f"Risk ({name})", "", name, r0, why_r, None, None),
        ]
        level = _level(name, d0, margin, bool(why_d), None, closest, why_d, self.inside(d0))
        return metrics, level, None if why_d else closest, None

    @staticmethod
    def _metric(key, title, unit, name, value, why, failed, interval, *,
                kind=IntervalKind.PREDICTION) -> Metric:
        share = None if failed is None else _share(failed)
        if why:
            return Metric.unassessable(key, title, unit, why, structure=name,
                                       failed_draw_share=share)
        if failed is not None and failed.any():
            return Metric.unassessable(
                key, title, unit, f"{100 * share:.1f} % of the Monte Carlo draws leave the "
                "image or come nearer its edge than the visible structure (anatomy there is "
                "unknown)", structure=name, failed_draw_share=share)
        if interval is None:
            return Metric(key, title, unit, value, structure=name, interval=IntervalKind.NONE,
                          no_interval_reason=NO_DRAWS)
        return Metric(key, title, unit, value, interval(), name, interval=kind,
                      failed_draw_share=0.0)

    def inside(self, d0: float) -> bool:
        """The planned tool, within the image, visibly enters the structure."""
        return self.edge >= 0 and d0 + self.radius < 0

    @staticmethod
    def _failed(edge_mm: np.ndarray, visible_mm: np.ndarray, cut: bool) -> np.ndarray:
        failed = edge_mm < 0
        return failed | (np.abs(visible_mm) > edge_mm) if cut else failed

    @staticmethod
    def _unknown(edge: float, visible: float, cut: bool, name: str) -> str:
        if edge < 0:
            return "the path leaves the image: anatomy outside it is unknown"
        if not math.isfinite(visible):
            return f"{name} has no voxels: segment it or remove its critical role"
        if cut and visible < -edge:
            return (f"{name} is cut by the image edge and the path enters it {-visible:.1f} mm "
                    f"deep, deeper than its distance to the edge ({edge:.1f} mm): the unseen "
                    "part may reach deeper")
        if cut and visible > edge:
            return (f"{name} is cut by the image edge and the path comes {edge:.1f} mm from the "
                    f"edge, nearer than to the visible {name} ({visible:.1f} mm): its unseen "
                    "part may be nearer")
        return ""

    def _unknown_risk(self, edge: float, cut: bool, name: str) -> str:
        if cut and edge < self.band + self.radius:
            return (f"{name} is cut by the image edge and the path comes within the risk band "
                    f"({self.band:g} mm) of the edge ({edge:.1f} mm)")
        return ""


def _level(name, d0, margin, bad, p_breach, closest, why, inside) -> StructureLevel:
    """Level from the nominal clearance; never safe when something is not assessable; a
    breach when the planned axis visibly enters the structure (``inside``), even when how
    deep is not assessable."""
    value = math.nan if why else d0
    level = Level.BREACH if inside else level_for(value, margin)
    if bad and level is Level.SAFE:
        level = Level.CAUTION
    return StructureLevel(name, level, value, margin, p_breach,
                          None if why else tuple(float(v) for v in closest))


def _clearance_metric(levels, per_draw, draws) -> Metric:
    key, title = "clearance_mm", "Smallest clearance to any critical structure"
    unknown = [lv.structure for lv in levels if not math.isfinite(lv.min_distance_mm)]
    if unknown:
        return Metric.unassessable(key, title, "mm", "not assessable for " + ", ".join(unknown))
    nominal = min(lv.min_distance_mm for lv in levels)
    if draws is None:
        return Metric(key, title, "mm", nominal, interval=IntervalKind.NONE,
                      no_interval_reason=NO_DRAWS)
    failed = [lv.structure for lv, dk in zip(levels, per_draw, strict=True) if dk is None]
    if failed:
        return Metric.unassessable(key, title, "mm", "Monte Carlo draws failed for "
                                   + ", ".join(failed))
    return Metric(key, title, "mm", nominal, prediction(nominal, np.min(per_draw, axis=0)),
                  interval=IntervalKind.PREDICTION, failed_draw_share=0.0)


def _angle_metric(context, entry, target, draws, warnings) -> Metric:
    """Angle between the path and the inward normal of the smooth outer skin at the entry."""
    skin = skin_structure(context)
    if context.has_surface(skin):  # in memory (the app's): its normals, cached per mesh
        normals, exact_to = skin_normals(context, skin), math.inf
    else:  # the skin near the entries only, not the whole skin surface (memory, skin.py)
        near = entry[None] if draws is None else np.vstack([entry[None], draws.entries])
        normals, exact_to = skin_normals_near(context, skin, near), LOCAL_PAD_MM
    normal, gap = normals.at(entry)
    if gap[0] > ENTRY_SKIN_TOLERANCE_MM or not context.geometry.contains_lps(entry):
        # distances up to LOCAL_PAD_MM are exact (every vertex that near is in the local box)
        far = f"{gap[0]:.1f} mm" if gap[0] <= exact_to else f"more than {exact_to:g} mm"
        where = "outside the image" if not context.geometry.contains_lps(entry) else \
            f"{far} from the outer skin ({skin})"
        warnings.append(f"the entry is {where}: the entry angle is not assessable")
        return Metric.unassessable("entry_angle_deg", ANGLE_TITLE, "deg",
                                   f"the entry is {where}")
    direction = (target - entry) / max(float(np.linalg.norm(target - entry)), 1e-9)
    angle = float(entry_angles_deg(direction[None], normal)[0])
    if draws is None:
        return Metric("entry_angle_deg", ANGLE_TITLE, "deg", angle,
                      interval=IntervalKind.NONE, no_interval_reason=NO_DRAWS)
    d_normals, d_gap = normals.at(draws.entries)
    failed = (d_gap > ENTRY_SKIN_TOLERANCE_MM) | ~context.geometry.contains_lps(draws.entries)
    if failed.any():
        share = _share(failed)
        return Metric.unassessable(
            "entry_angle_deg", ANGLE_TITLE, "deg", f"{100 * share:.1f} % of the drawn entries "
            "leave the image or the outer skin", failed_draw_share=share)
    dirs = draws.targets - draws.entries
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    angles = entry_angles_deg(dirs, tilted(d_normals, NORMAL_SD_DEG, draws.normal_rng))
    return Metric("entry_angle_deg", ANGLE_TITLE, "deg", angle, prediction(angle, angles),
                  interval=IntervalKind.PREDICTION, failed_draw_share=0.0)


def _concerns(metrics, levels, parameters) -> list[Concern]:
    """An entry steeper than the search's angle limit; a breach probability >= 5 %."""
    out = []
    for m in metrics:
        if m.key == "entry_angle_deg" and m.assessable and m.value > DEFAULT_MAX_ANGLE_DEG:
            out.append(Concern(Level.CAUTION, f"entry angle {m.value:.1f} deg to the skin "
                               f"normal exceeds {DEFAULT_MAX_ANGLE_DEG:g} deg (drill skid)",
                               "entry_angle_deg"))
        if (m.key == "breach_probability" and m.assessable
                and m.value >= BREACH_CONCERN_PROBABILITY
                and levels and all(lv.level is not Level.BREACH for lv in levels
                                   if lv.structure == m.structure)):
            out.append(Concern(Level.CAUTION, f"{m.structure}: breach probability "
                               f"{100 * m.value:.1f} % under the stated errors",
                               "breach_probability"))
    return out


def _input_warnings(context, entry, target, critical) -> list[str]:
    warnings = []
    inside = context.geometry.contains_lps(np.vstack([entry, target]))
    for name, ok in zip(("entry", "target"), inside, strict=True):
        if not ok:
            warnings.append(f"the {name} lies outside the image; anatomy there is unknown: "
                            "the path leaves the image")
    if not critical:
        warnings.append("no structure has the role critical: nothing to score risk against")
    return warnings


def _ordered_unique(names_per_point: list[list[str]]) -> list[str]:
    seen: list[str] = []
    for names in names_per_point:
        seen += [n for n in names if n not in seen]
    return seen
