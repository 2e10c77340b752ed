"""Monte Carlo uncertainty: stated error sources, seeded draws, 95 % intervals.

Error sources (all zero-mean Gaussian, independent):

* **placement error at entry and at target**: an isotropic 3D error with per-axis SD
  ``entry_sd_mm`` / ``target_sd_mm``. Defaults from robot-assisted SEEG in 500 procedures
  (Cardinale F et al., Neurosurgery 2013;72(3):353-366): median entry-point error 0.78 mm and
  target-point error 1.77 mm (Euclidean). For an isotropic 3D Gaussian the Euclidean error
  follows a Maxwell law whose median is 1.538 SD, giving per-axis SDs of 0.51 and 1.15 mm.
* **structure-boundary uncertainty**: each structure's surface moves along its normal by one
  Gaussian offset per draw (SD ``boundary_sd_mm``; default one voxel, the largest spacing,
  the size of a segmentation's boundary ambiguity). Its signed distance becomes ``d + e``.

Each metric's 95 % interval is the 2.5th-97.5th percentile of its values over the draws (a
prediction interval for the value the placed tool will have); a probability (e.g. of a breach)
is the fraction of draws, with a Wilson 95 % score interval. The draws come from
``numpy.random.default_rng(seed)``: same seed, same answer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from surgiplan.errors import BadInputError

MAXWELL_MEDIAN_PER_SD = 1.5382  # median of |N(0, I3)|
CARDINALE_2013 = ("Cardinale F et al. Stereoelectroencephalography: surgical methodology, "
                  "safety, and stereotactic application accuracy in 500 procedures. "
                  "Neurosurgery 2013;72(3):353-366")
DEFAULT_ENTRY_SD_MM = round(0.78 / MAXWELL_MEDIAN_PER_SD, 2)   # 0.51 mm, Cardinale 2013
DEFAULT_TARGET_SD_MM = round(1.77 / MAXWELL_MEDIAN_PER_SD, 2)  # 1.15 mm, Cardinale 2013
DEFAULT_SAMPLES = 1000
DEFAULT_SEED = 20240605


@dataclass(frozen=True)
class ErrorProfile:
    """A rehearsal kind's default placement-error model with its cited source.

    Each simulator declares its own (a SEEG robot is not a freehand pedicle screw or a CT-guided
    ablation probe): per-axis SDs in mm at entry and at target, the citation, and how the SDs
    were derived from the published figure. ``extra`` holds kind-specific SDs (e.g. zone-size
    chart error) with their sources in ``extra_sources``.
    """

    name: str
    entry_sd_mm: float
    target_sd_mm: float
    source: str
    derivation: str = ""
    extra: tuple[tuple[str, float], ...] = ()
    extra_sources: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict:
        return {"name": self.name, "entry_sd_mm": self.entry_sd_mm,
                "target_sd_mm": self.target_sd_mm, "source": self.source,
                "derivation": self.derivation, "extra": dict(self.extra),
                "extra_sources": dict(self.extra_sources)}


SEEG_ROBOT_PROFILE = ErrorProfile(
    name="robot-assisted SEEG (Cardinale 2013)", entry_sd_mm=DEFAULT_ENTRY_SD_MM,
    target_sd_mm=DEFAULT_TARGET_SD_MM, source=CARDINALE_2013,
    derivation="median Euclidean errors 0.78 mm (entry) and 1.77 mm (target) divided by the "
               "Maxwell median 1.538 of an isotropic 3D Gaussian")


@dataclass(frozen=True)
class UncertaintyModel:
    """The error model of one run. ``boundary_sd_mm=None`` means one voxel of the twin's grid.

    ``entry_sd_mm`` / ``target_sd_mm`` ``None`` mean "the simulator's own default profile"
    (:class:`ErrorProfile`, the simulator's ``error_profile`` attribute): the runner fills them
    in with :meth:`resolved_for` before the simulator runs, and ``profile`` then names it. A user
    who types their own SDs gets ``profile="user"``.
    ``samples=0`` switches Monte Carlo off (nominal values only, no intervals).
    """

    entry_sd_mm: float | None = None
    target_sd_mm: float | None = None
    boundary_sd_mm: float | None = None
    samples: int = DEFAULT_SAMPLES
    seed: int = DEFAULT_SEED
    profile: str = ""
    sources: tuple[tuple[str, str], ...] = ()

    @classmethod
    def for_profile(cls, profile: ErrorProfile, **overrides: Any) -> UncertaintyModel:
        """The model with a kind's default SDs (``overrides`` replace any field)."""
        fields: dict[str, Any] = {"entry_sd_mm": profile.entry_sd_mm,
                                  "target_sd_mm": profile.target_sd_mm, "profile": profile.name,
                                  "sources": _profile_sources(profile)}
        fields.update(overrides)
        return cls(**fields)

    def resolved_for(self, simulator: Any) -> UncertaintyModel:
        """This model with unset SDs taken from ``simulator.error_profile``.

        A simulator that declares no profile gets the SEEG-robot profile, and the model says so.
        SDs that were set explicitly are kept and attributed to the user.
        """
        profile = getattr(simulator, "error_profile", None)
        if not isinstance(profile, ErrorProfile):
            profile = SEEG_ROBOT_PROFILE
        return self.resolved(profile)

    def resolved(self, profile: ErrorProfile) -> UncertaintyModel:
        """This model with unset SDs (None) filled in from ``profile``."""
        if self.entry_sd_mm is not None and self.target_sd_mm is not None and self.profile:
            return self
        sources = dict(_profile_sources(profile))
        user = "set by the user"
        for name in ("entry_sd_mm", "target_sd_mm"):
            if getattr(self, name) is not None:
                sources[name] = user
        name = profile.name if self.entry_sd_mm is None or self.target_sd_mm is None else "user"
        return replace(
            self,
            entry_sd_mm=profile.entry_sd_mm if self.entry_sd_mm is None else self.entry_sd_mm,
            target_sd_mm=profile.target_sd_mm if self.target_sd_mm is None else self.target_sd_mm,
            profile=self.profile or name, sources=tuple(sources.items()))

    @property
    def entry_sd(self) -> float:
        """Entry SD in mm, the SEEG-robot default when unresolved."""
        return DEFAULT_ENTRY_SD_MM if self.entry_sd_mm is None else float(self.entry_sd_mm)

    @property
    def target_sd(self) -> float:
        """Target SD in mm, the SEEG-robot default when unresolved."""
        return DEFAULT_TARGET_SD_MM if self.target_sd_mm is None else float(self.target_sd_mm)

    def __post_init__(self) -> None:
        for name in ("entry_sd_mm", "target_sd_mm", "boundary_sd_mm"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0 <= value <= 50):
                raise BadInputError(f"{name} must be between 0 and 50 mm, got {value}",
                                    action="give a standard deviation in mm")
        if not 0 <= int(self.samples) <= 1_000_000:
            raise BadInputError(f"the sample count must be 0..1000000, got {self.samples}",
                                action="use e.g. --samples 1000")
        object.__setattr__(self, "sources", tuple((str(k), str(v)) for k, v in
                                                  dict(self.sources).items()))

    def boundary_sd_for(self, spacing_mm: tuple[float, float, float]) -> float:
        """The boundary SD in mm (one voxel, the largest spacing, when not given)."""
        return max(spacing_mm) if self.boundary_sd_mm is None else float(self.boundary_sd_mm)

    def to_json(self, spacing_mm: tuple[float, float, float] | None = None) -> dict:
        data = asdict(self)
        data["entry_sd_mm"] = self.entry_sd
        data["target_sd_mm"] = self.target_sd
        if spacing_mm is not None:
            data["boundary_sd_mm"] = self.boundary_sd_for(spacing_mm)
        data["profile"] = self.profile or SEEG_ROBOT_PROFILE.name
        data["model"] = ("isotropic Gaussian placement error at entry and target (per-axis SD); "
                         "Gaussian structure-boundary offset along the normal")
        sources = {"entry_sd_mm": CARDINALE_2013, "target_sd_mm": CARDINALE_2013,
                   "boundary_sd_mm": "one voxel (segmentation boundary ambiguity)"}
        sources.update(dict(self.sources))
        data["sources"] = sources
        data["interval"] = "2.5th-97.5th percentile over draws; Wilson score for probabilities"
        return data


def _profile_sources(profile: ErrorProfile) -> tuple[tuple[str, str], ...]:
    cited = f"{profile.source} ({profile.derivation})" if profile.derivation else profile.source
    return (("entry_sd_mm", cited), ("target_sd_mm", cited)) + tuple(profile.extra_sources)


@dataclass(frozen=True)
class PlacementDraws:
    """``entries`` and ``targets`` (n, 3) LPS mm; ``boundary`` (n, n_structures) mm offsets."""

    entries: np.ndarray
    targets: np.ndarray
    boundary: np.ndarray


def draw_placements(
    model: UncertaintyModel,
    entry_lps: np.ndarray,
    target_lps: np.ndarray,
    *,
    n_structures: int,
    spacing_mm: tuple[float, float, float],
) -> PlacementDraws:
    """``model.samples`` perturbed (entry, target) pairs and per-structure boundary offsets."""
    rng = np.random.default_rng(model.seed)
    n = int(model.samples)
    entries = np.asarray(entry_lps, float) + rng.normal(0.0, model.entry_sd, (n, 3))
    targets = np.asarray(target_lps, float) + rng.normal(0.0, model.target_sd, (n, 3))
    boundary = rng.normal(0.0, model.boundary_sd_for(spacing_mm), (n, n_structures))
    return PlacementDraws(entries, targets, boundary)


def interval95(values: np.ndarray) -> tuple[float, float]:
    """The central 95 % interval (2.5th, 97.5th percentiles) of Monte Carlo values."""
    finite = np.asarray(values, float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return (math.nan, math.nan)
    low, high = np.percentile(finite, [2.5, 97.5])
    return (float(low), float(high))


def probability95(hits: np.ndarray) -> tuple[float, tuple[float, float]]:
    """Fraction of True draws and its Wilson 95 % score interval."""
    hits = np.asarray(hits, bool)
    n = hits.size
    if n == 0:
        return (math.nan, (math.nan, math.nan))
    p = hits.mean()
    z = 1.959964
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if p == 0 else max(0.0, centre - half)
    high = 1.0 if p == 1 else min(1.0, centre + half)
    return (float(p), (float(low), float(high)))
