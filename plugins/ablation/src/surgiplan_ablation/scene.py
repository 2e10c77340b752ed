"""What the kernel scores zones against, sampled once from a twin around the target.

* tumour sample points (sorted by ``s``): voxel centres in the region of interest whose signed
  distance to the target ``s`` is below ``max_offset_mm`` (``s < 0`` are the target's own
  voxels; the others let a Monte Carlo draw grow the tumour by a boundary offset ``e``: its
  voxels are ``s < e``);
* tumour surface points: voxel centres within one voxel of the target's surface projected onto
  the zero level of its distance map (``q - s(q) grad s(q)``), so margins are sub-voxel;
* critical structures (role ``critical``): their voxel centres in the region of interest
  (counted for volumes) and, for clearances, their surface points (as for the tumour; the
  zone's signed distance is convex, so its minimum over a structure lies on the structure's
  surface unless the structure holds the zone's centre, which the simulator checks);
* vessels (critical structures named like vessels, see :data:`VESSEL_WORDS`): centreline points
  (ridge voxels of the inner distance, ``-s >= `` every 26-neighbour) with the local radius
  ``rho``, kept when ``2 rho`` reaches the heat-sink diameter threshold. The distance map puts
  the surface ``h/2`` (largest spacing) inside ``D``, the distance to the nearest outside voxel
  centre. Across a curved vessel wall that nearest centre (the closest of many) lies on
  average a quarter step ``s`` (smallest spacing) beyond the wall, and the ridge voxel lies on
  average 0.38 ``s`` off the axis (mean distance of a random point in a square from its
  centre), so ``rho = -s_map + h/2 + (0.38 - 0.25) s`` (measured on the liver phantom's
  tubes: the plain ``-s_map`` is 0.86 mm low in radius, this 0.0 +/- 0.15 mm).
* ``fov_margin_mm``: how far the target's voxels stay from the edge of the image (0: the
  field of view cuts the target, whose extent beyond it is unknown).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from surgiplan.errors import BadInputError
from surgiplan.model.structures import Role
from surgiplan.simulation import SimulationContext

RIDGE_OFF_AXIS = 0.38  # mean distance of a ridge voxel centre from the axis, in steps
WALL_GAP = 0.25  # mean gap from a curved wall to the nearest outside voxel centre, in steps
VESSEL_WORDS = ("vessel", "vein", "venous", "arter", "aorta", "ivc", "vena", "cava", "portal",
                "hepatic v", "renal v", "renal a", "caval", "sinus")


def is_vessel(name: str) -> bool:
    """Whether a structure's name says it is a blood vessel (heat-sink candidate)."""
    low = name.lower()
    return any(word in low for word in VESSEL_WORDS)


@dataclass
class AblationScene:
    """Sampled target, critical structures and vessel centrelines (LPS mm) for the kernel."""

    target: str
    roi_lps: np.ndarray  # (2, 3) min, max
    voxel_ml: float
    tumour_lps: np.ndarray
    tumour_sd: np.ndarray
    surface_lps: np.ndarray
    critical_names: tuple[str, ...]
    critical_lps: np.ndarray
    critical_index: np.ndarray
    vessel_names: tuple[str, ...]
    vessel_lps: np.ndarray
    vessel_radius_mm: np.ndarray
    vessel_index: np.ndarray
    clearance_lps: np.ndarray
    clearance_index: np.ndarray
    fov_margin_mm: float
    critical_masks: tuple[np.ndarray, ...] = ()
    geometry: object = None
    # the target's distance map on the ROI, and the affine LPS -> (i, j, k) into it
    tumour_map: np.ndarray = field(default_factory=lambda: np.empty((0, 0, 0)))
    map_to_index: np.ndarray = field(default_factory=lambda: np.zeros((3, 4)))

    def centre_depth_mm(self, centres_lps: np.ndarray, semi_short_mm: np.ndarray
                        ) -> np.ndarray:
        """Per candidate and critical structure, ``-b`` of the deepest probe zone whose centre
        lies in the structure (the zone's minimal signed distance), else +inf: (n, c).

        ``centres_lps`` (n, k, 3), ``semi_short_mm`` (n, k)."""
        n, k = semi_short_mm.shape
        out = np.full((n, len(self.critical_masks)), np.inf)
        ijk = np.rint(self.geometry.lps_to_index(centres_lps.reshape(-1, 3))).astype(int)
        size = np.asarray(self.geometry.size)
        inside = np.all((ijk >= 0) & (ijk < size), axis=1)
        ijk = np.clip(ijk, 0, size - 1)
        depth = -semi_short_mm.reshape(-1)
        for c, mask in enumerate(self.critical_masks):
            hit = inside & (mask[ijk[:, 2], ijk[:, 1], ijk[:, 0]] != 0)
            out[:, c] = np.where(hit, depth, np.inf).reshape(n, k).min(axis=1)
        return out

    @property
    def tumour_volume_ml(self) -> float:
        return float(np.count_nonzero(self.tumour_sd < 0)) * self.voxel_ml

    def contains_box(self, bounds_lps: np.ndarray) -> bool:
        return bool(np.all(bounds_lps[0] >= self.roi_lps[0] - 1e-6)
                    and np.all(bounds_lps[1] <= self.roi_lps[1] + 1e-6))


def build_scene(context: SimulationContext, target: str, roi_lps: np.ndarray, *,
                max_offset_mm: float = 0.0, vessel_min_diameter_mm: float = 3.0
                ) -> AblationScene:
    """Sample ``target`` and the critical structures inside the LPS box ``roi_lps`` (2, 3)."""
    _check_target(context, target)
    geometry = context.geometry
    box = _index_box(geometry, roi_lps)
    lo = np.array([s.start for s in box[::-1]], float)  # (i, j, k) of the box corner
    hi = np.array([s.stop - 1 for s in box[::-1]], float)
    corners = geometry.index_to_lps(np.array([lo, hi]))
    roi = np.vstack([corners.min(axis=0), corners.max(axis=0)])
    spacing = np.asarray(geometry.spacing_mm)
    sd_t = context.distance_in_box(target, box)  # the ROI only, not a full-grid map
    keep = sd_t < max(max_offset_mm, 0.0)
    order = np.argsort(sd_t[keep], kind="stable")  # the kernel stops at the first s >= e
    tumour = _centres(geometry, box, keep)[order]
    if not np.any(sd_t < 0):
        raise BadInputError(f"the target {target!r} has no voxels in the region scored",
                            action="check the target structure and the probe position")
    surface = _surface_points(context, target, geometry, box, sd_t, float(spacing.max()))
    critical = critical_structures(context, target)
    c_pts, c_idx, k_pts, k_idx = [], [], [], []
    for n, s in enumerate(critical):
        pts = _centres(geometry, box, context.mask(s.name)[box] != 0)
        c_pts.append(pts)
        c_idx.append(np.full(len(pts), n, np.int64))
        sd_s = context.distance_in_box(s.name, box)
        surf = _surface_points(context, s.name, geometry, box, sd_s, float(spacing.max())) \
            if np.any(sd_s < 0) else np.empty((0, 3))
        k_pts.append(surf)
        k_idx.append(np.full(len(surf), n, np.int64))
    vessels = [s.name for s in critical if is_vessel(s.name)]
    v_pts, v_rad, v_idx = [], [], []
    for n, name in enumerate(vessels):
        pts, rad = _centreline(context, name, geometry, box, vessel_min_diameter_mm)
        v_pts.append(pts)
        v_rad.append(rad)
        v_idx.append(np.full(len(pts), n, np.int64))
    return AblationScene(
        target=target, roi_lps=roi, voxel_ml=geometry.voxel_volume_mm3 / 1000.0,
        tumour_lps=_c(tumour), tumour_sd=_c(sd_t[keep].astype(float)[order]),
        surface_lps=_c(surface),
        critical_names=tuple(s.name for s in critical), critical_lps=_stack(c_pts),
        critical_index=_cat(c_idx), vessel_names=tuple(vessels), vessel_lps=_stack(v_pts),
        vessel_radius_mm=_c(np.concatenate(v_rad) if v_rad else np.empty(0)),
        vessel_index=_cat(v_idx), clearance_lps=_stack(k_pts), clearance_index=_cat(k_idx),
        fov_margin_mm=fov_margin_mm(context.mask(target), spacing),
        critical_masks=tuple(context.mask(s.name) for s in critical), geometry=geometry,
        tumour_map=np.ascontiguousarray(sd_t, dtype=float),
        map_to_index=_map_to_index(geometry, box))


def _map_to_index(geometry, box) -> np.ndarray:
    """(3, 4) affine from LPS to continuous (i, j, k) indices of the ROI box's array."""
    m = np.array(geometry.lps_to_index_matrix[:3], float)
    m[:, 3] -= np.array([box[2].start, box[1].start, box[0].start], float)
    return np.ascontiguousarray(m)


def fov_margin_mm(mask: np.ndarray, spacing_mm: np.ndarray) -> float:
    """Smallest distance (mm) from a mask's voxels to the image edge along the grid axes
    (0: the mask reaches the first or last voxel of an axis, the field of view cuts it)."""
    idx = np.argwhere(mask)
    if idx.size == 0:
        return 0.0
    shape = np.asarray(mask.shape)
    sp = np.asarray(spacing_mm, float)[::-1]  # (z, y, x)
    low = idx.min(0) * sp
    high = (shape - 1 - idx.max(0)) * sp
    return float(min(low.min(), high.min()))


def critical_structures(context: SimulationContext, target: str) -> list:
    """The critical structures scored against the zone (every one but the target)."""
    return [s for s in context.by_role(Role.CRITICAL) if s.name != target]


def _check_target(context: SimulationContext, target: str) -> None:
    names = [s.name for s in context.structures]
    if target not in names:
        raise BadInputError(f"no structure named {target!r} to ablate (have "
                            f"{', '.join(names)})", action="give --target an existing structure")


def _index_box(geometry, roi_lps: np.ndarray) -> tuple[slice, slice, slice]:
    """(z, y, x) slices of the voxels whose centres may fall in the LPS box (clipped)."""
    lo, hi = np.asarray(roi_lps, float)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                        for z in (lo[2], hi[2])])
    ijk = geometry.lps_to_index(corners)
    size = np.asarray(geometry.size)
    start = np.clip(np.floor(ijk.min(axis=0)).astype(int), 0, size - 1)
    stop = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 1, 1, size)
    return (slice(start[2], stop[2]), slice(start[1], stop[1]), slice(start[0], stop[0]))


def _centres(geometry, box, keep: np.ndarray) -> np.ndarray:
    zyx = np.argwhere(keep)
    offset = np.array([s.start for s in box])
    return geometry.index_to_lps((zyx + offset)[:, ::-1].astype(float))


def _surface_points(context, target, geometry, box, sd_roi, h: float) -> np.ndarray:
    """Near-surface voxel centres projected onto the zero level of the target's distance."""
    near = _centres(geometry, box, np.abs(sd_roi) <= h)
    step = 0.25 * min(geometry.spacing_mm)
    with np.errstate(invalid="ignore"):
        for _ in range(2):  # Newton steps onto the interpolated zero level
            d = context.signed_distance_mm(target, near)
            grad = np.stack([(context.signed_distance_mm(target, near + step * e)
                              - context.signed_distance_mm(target, near - step * e))
                             / (2 * step) for e in np.eye(3)], axis=1)
            norm2 = np.maximum(np.einsum("ij,ij->i", grad, grad), 1e-12)
            near = near - (d / norm2)[:, None] * grad
    return near[np.all(np.isfinite(near), axis=1)]  # off the grid: no surface known there


def _centreline(context, name, geometry, box, min_diameter_mm):
    """Ridge voxels of the vessel's inner distance: centreline points and radii (mm)."""
    pad = 2
    size = np.asarray(geometry.shape_zyx)
    big = tuple(slice(max(s.start - pad, 0), min(s.stop + pad, n)) for s, n in zip(box, size,
                                                                                 strict=True))
    spacing = np.asarray(geometry.spacing_mm, float)
    depth = -np.asarray(context.distance_in_box(name, big), dtype=float)
    depth[~np.isfinite(depth)] = -1.0
    ridge = (depth > 0) & (depth >= ndimage.maximum_filter(depth, size=3))
    depth = depth + spacing.max() / 2.0 + (RIDGE_OFF_AXIS - WALL_GAP) * spacing.min()
    ridge &= 2.0 * depth >= min_diameter_mm
    inner = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(box, big,
                                                                             strict=True))
    ridge = ridge[inner]
    return _centres(geometry, box, ridge), depth[inner][ridge].astype(float)


def _c(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=float)


def _stack(parts: list[np.ndarray]) -> np.ndarray:
    return _c(np.vstack(parts) if parts else np.empty((0, 3)))


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.ascontiguousarray(np.concatenate(parts) if parts else np.empty(0, np.int64),
                                dtype=np.int64)
