"""Automatic safest-path search: score a path from every outer-skin vertex to one target.

1. Candidates: the vertices of the skin structure's surface on the *outer* skin (the point
   2 mm outside along the normal is in no structure), optionally within an entry sphere, with
   the smooth outward normals of skin.py (within ~2 degrees of the analytic normal on the
   head phantom; the raw mesh normals erred by up to 40).
2. Every candidate (thousands) is scored by the compiled kernel against the *combined* critical map
   (voxel-wise minimum of the critical structures' signed distances): clearance and risk.
3. Rejected: longer than ``max_length_mm``, steeper than ``max_angle_deg`` to the skin normal,
   clearance < 0 (breach), or clearance not assessable (the path leaves the image, or passes
   nearer the edge that cuts a critical structure than that structure). An entry too long is
   not scored further (``rejected`` counts it as too long only; its heat-map values are NaN):
   so the maps and normals cover the entries in reach only, not the whole skin (memory).
   The rest are ranked by risk, then clearance, angle, length; the list keeps entries at least
   ``MIN_SEPARATION_MM`` apart so it offers real alternatives.
4. Pareto front over (clearance up, length down, angle down) of the feasible candidates.
5. The top few are re-checked with the exact point-to-mesh distance to each critical
   structure's surface (every 0.25 mm of the axis); one that breaches there is dropped.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from numba import njit

from surgiplan.model.structures import Role
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.simulation import (
    DisplayScalars,
    PathCandidate,
    PathSearchRequest,
    PathSearchResult,
    SimulationContext,
)
from surgiplan_trajectory.kernel import lps_to_zyx_matrix, score_paths
from surgiplan_trajectory.simulator import (
    box_touches_edge,
    edge_distance_mm,
    entry_angles_deg,
    skin_structure,
)
from surgiplan_trajectory.skin import skin_normals, skin_normals_within

MIN_SEPARATION_MM = 5.0
RECHECK_STEP_MM = 0.25

_combined_cache: dict[tuple, np.ndarray] = {}


def combined_critical_map(context: SimulationContext) -> np.ndarray:
    """Voxel-wise minimum of the critical structures' signed distance maps (mm, cached until
    the case changes; ``+inf`` everywhere without critical structures).

    Folded in one map at a time, so at most one structure's map is held besides the result.
    """
    names = tuple(s.name for s in context.by_role(Role.CRITICAL))
    key = (context.snapshot_key(), names)
    if key not in _combined_cache:
        _combined_cache.clear()
        combined: np.ndarray | None = None
        for name in names:
            dist = context.distance_map(name)
            if combined is None:
                combined = dist if len(names) == 1 else np.array(dist, dtype=np.float32)
            else:
                np.minimum(combined, dist, out=combined)
            del dist
        if combined is None:
            combined = np.full(context.geometry.shape_zyx, np.inf, dtype=np.float32)
        _combined_cache[key] = combined
    return _combined_cache[key]


def combined_critical_roi(context: SimulationContext, ends_lps: np.ndarray,
                          names: list[str] | None = None) -> tuple[np.ndarray, Any]:
    """(values, sub-geometry): the combined critical map (as :func:`combined_critical_map`;
    of ``names`` when given) on the box holding every path between the LPS points
    ``ends_lps`` only (two voxels padded, clipped to the grid). Each structure's map is its
    exact region-of-interest map covering that box, so sampling a path there gives the full
    maps' values without them."""
    if names is None:
        names = [s.name for s in context.by_role(Role.CRITICAL)]
    cover = _cover_box(context.geometry, ends_lps)
    from surgiplan.processing.crop import sub_geometry

    if len(names) == 1:  # its own region holds the box: no copy (same values there)
        roi = context.distance_roi(names[0], covering_lps=ends_lps)
        if roi.mask_box is not None:
            return roi.values, roi.sub_geometry
    geometry = sub_geometry(context.geometry, cover)
    combined: np.ndarray | None = None
    for name in names:
        roi = context.distance_roi(name, covering_lps=ends_lps)
        part = roi.values[tuple(slice(c.start - r.start, c.stop - r.start)
                                for c, r in zip(cover, roi.region, strict=True))]
        if combined is None:
            combined = np.array(part, dtype=np.float32)
        else:
            np.minimum(combined, part, out=combined)
        del roi, part
    if combined is None:
        combined = np.full(geometry.shape_zyx, np.inf, dtype=np.float32)
    return combined, geometry


def _cover_box(geometry, ends_lps: np.ndarray) -> tuple[slice, slice, slice]:
    """The (z, y, x) box, clipped to the grid, that SimulationContext.distance_roi covers."""
    zyx = geometry.lps_to_index(np.asarray(ends_lps, float).reshape(-1, 3))[:, ::-1]
    lo = np.maximum(np.floor(zyx.min(axis=0)).astype(int) - 2, 0)
    hi = np.minimum(np.ceil(zyx.max(axis=0)).astype(int) + 3, geometry.shape_zyx)
    z, y, x = (slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    return z, y, x


def _entries_in_reach(context: SimulationContext, skin: str, target: np.ndarray,
                      request: PathSearchRequest) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertex ids, LPS points, outward normals) of the outer-skin candidates (in the entry
    region, when one is given). Normals are computed for entries within ``max_length_mm`` of
    the target only (NaN beyond: those are rejected as too long without further scoring)."""
    found = skin_normals_within(context, skin, target, request.max_length_mm)
    ids, entries, normals = found.ids, found.points_lps, found.normals
    if request.entry_region_centre_lps is not None and request.entry_region_radius_mm:
        near = np.linalg.norm(entries - np.asarray(request.entry_region_centre_lps), axis=1)
        inside = near <= request.entry_region_radius_mm
        ids, entries, normals = ids[inside], entries[inside], normals[inside]
    return ids, entries, normals


def outer_skin(context: SimulationContext, skin: str) -> tuple[np.ndarray, np.ndarray]:
    """(vertex ids, smooth outward normals) of the outer skin vertices (see skin.py)."""
    normals = skin_normals(context, skin)
    return normals.ids, normals.normals


@njit(cache=True)
def _pareto_sweep(clearance, length, angle, order):  # pragma: no cover - compiled
    """Non-dominated points; ``order`` sorts by (-clearance, length, angle), so a point can only
    be dominated by one visited before it."""
    keep = np.zeros(clearance.size, dtype=np.bool_)
    front = np.empty(clearance.size, dtype=np.int64)
    n_front = 0
    for i in order:
        dominated = False
        for f in range(n_front):
            j = front[f]
            if (clearance[j] >= clearance[i] and length[j] <= length[i] and angle[j] <= angle[i]
                    and (clearance[j] > clearance[i] or length[j] < length[i]
                         or angle[j] < angle[i])):
                dominated = True
                break
        if not dominated:
            keep[i] = True
            front[n_front] = i
            n_front += 1
    return keep


def mesh_distance_functions(context: SimulationContext) -> dict[str, Any]:
    """A VTK implicit signed-distance function per critical structure's surface mesh."""
    from vtkmodules.vtkFiltersCore import vtkImplicitPolyDataDistance

    from surgiplan.processing.mesh_convert import surface_to_polydata

    functions = {}
    for s in context.by_role(Role.CRITICAL):
        mesh = context.surface(s.name)
        if not mesh.is_empty():
            functions[s.name] = vtkImplicitPolyDataDistance()
            functions[s.name].SetInput(surface_to_polydata(mesh))
    return functions


def pareto_mask(clearance: np.ndarray, length: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """True for the Pareto front: clearance maximised, length and angle minimised."""
    order = np.lexsort((angle, length, -clearance))
    return _pareto_sweep(clearance, length, angle, order)


def exact_clearance_mm(functions: dict[str, Any], entry: np.ndarray, target: np.ndarray,
                       radius_mm: float) -> dict[str, float]:
    """Min over the axis (0.25 mm steps) of the exact signed point-to-mesh distance - radius."""
    from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
    from vtkmodules.vtkCommonCore import vtkDoubleArray

    n = max(2, int(np.ceil(np.linalg.norm(target - entry) / RECHECK_STEP_MM)) + 1)
    axis = numpy_to_vtk(entry + np.linspace(0.0, 1.0, n)[:, None] * (target - entry), deep=True)
    out: dict[str, float] = {}
    for name, implicit in functions.items():
        values = vtkDoubleArray()
        implicit.FunctionValue(axis, values)
        out[name] = float(vtk_to_numpy(values).min() - radius_mm)
    return out


def unknown_clearance(context: SimulationContext, entries: np.ndarray, target: np.ndarray,
                      clearance: np.ndarray, radius_mm: float) -> np.ndarray:
    """True where a path's clearance cannot be known: it leaves the image, or a critical
    structure is cut by the image edge and the path is nearer that edge than to the visible
    structures (the unseen part may be nearer; see the simulator's module docstring)."""
    edge = edge_distance_mm(context.geometry, entries, np.broadcast_to(target, entries.shape))
    shape = context.geometry.shape_zyx  # structure boxes from their (cached) ROI maps
    cut = any(box_touches_edge(context.distance_roi(s.name).mask_box, shape)
              for s in context.by_role(Role.CRITICAL))
    return (edge < 0) | (cut & (np.abs(clearance + radius_mm) > edge))


def _reasons(length, angle, clearance, unknown, request, no_go=None
             ) -> tuple[np.ndarray, dict[str, int]]:
    too_long = length > request.max_length_mm
    too_steep = angle > request.max_angle_deg
    breach = clearance < 0
    no_go = np.zeros_like(breach) if no_go is None else no_go
    feasible = ~(too_long | too_steep | breach | unknown | no_go)
    return feasible, {"too_long": int(too_long.sum()), "too_steep": int(too_steep.sum()),
                      "breach": int(breach.sum()), "not_assessable": int(unknown.sum()),
                      "no_go": int(no_go.sum()), "feasible": int(feasible.sum())}


def no_go_mask(context: SimulationContext, request: PathSearchRequest, entries: np.ndarray,
               target: np.ndarray, radius_mm: float, parameters: dict[str, Any]) -> np.ndarray:
    """True for entries inside a no-go sphere or whose path (tool surface) enters a no-go
    structure (its signed distance map, the same kernel as the clearance)."""
    from surgiplan.errors import BadInputError

    hit = np.zeros(len(entries), dtype=bool)
    for *centre, r in request.no_go_spheres_lps:
        hit |= np.linalg.norm(entries - np.asarray(centre, float), axis=1) <= r
    names = {s.name for s in context.structures}
    for name in request.no_go_structures:
        if name not in names:
            raise BadInputError(f"no-go structure {name!r} is not in the case",
                                action=f"choose one of {sorted(names)}")
    if request.no_go_structures and len(entries):
        # region-of-interest maps covering every path (exact there), not full-grid maps
        combined, geometry = combined_critical_roi(context, np.vstack([entries, target]),
                                                   list(request.no_go_structures))
        inside, _, _ = score_paths(combined, lps_to_zyx_matrix(geometry), entries,
                                   target, radius_mm=radius_mm,
                                   band_mm=float(parameters["risk_band_mm"]),
                                   n_samples=int(parameters["path_samples"]))
        hit |= inside < 0
    return hit


def thin_critical_warning(context: SimulationContext) -> list[str]:
    """A warning when fewer than two critical structures guide the search."""
    critical = [s.name for s in context.by_role(Role.CRITICAL)]
    if len(critical) >= 2:
        return []
    listed = ", ".join(critical) or "none"
    return [f"only {len(critical)} critical structure(s) ({listed}) guide the search: it "
            "avoids nothing else (orbit, face, sinus, ear, vessels); segment them as critical "
            "or add no-go zones"]


def search_paths(
    context: SimulationContext,
    request: PathSearchRequest,
    parameters: dict[str, Any],
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> PathSearchResult:
    """Score every outer-skin entry for ``request.target_lps`` (see the module docstring)."""
    skin = skin_structure(context)
    if skin is None:
        from surgiplan.errors import BadInputError

        raise BadInputError("the case has no structure with the role skin",
                            action="segment the skin and set its role to skin")
    report(progress, 0.0, "preparing distance maps and the skin surface")
    target = np.asarray(request.target_lps, float)
    ids, entries, normals = _entries_in_reach(context, skin, target, request)
    check(cancel)
    started = time.perf_counter()
    if not len(entries):
        from surgiplan.errors import BadInputError

        raise BadInputError(f"the skin {skin!r} has no outer surface to enter through here (it "
                            "fills the image, or no entry lies in the entry region)",
                            action="check the skin structure and the entry region")
    vec = target - entries
    length = np.linalg.norm(vec, axis=1)
    reach = np.flatnonzero(length <= request.max_length_mm)  # the rest: too long, not scored
    report(progress, 0.2, f"scoring {len(reach)} of {len(ids)} candidate entries (in reach)")
    radius = request.diameter_mm / 2.0
    clearance, risk, angle = (np.full(len(ids), np.nan) for _ in range(3))
    unknown, no_go = np.zeros(len(ids), bool), np.zeros(len(ids), bool)
    if len(reach):
        near = entries[reach]
        combined, combined_geometry = combined_critical_roi(context, np.vstack([near, target]))
        clearance[reach], _, risk[reach] = score_paths(
            combined, lps_to_zyx_matrix(combined_geometry), near, target, radius_mm=radius,
            band_mm=float(parameters["risk_band_mm"]),
            n_samples=int(parameters["path_samples"]))
        del combined
        angle[reach] = entry_angles_deg(vec[reach] / length[reach, None], normals[reach])
        unknown[reach] = unknown_clearance(context, near, target, clearance[reach], radius)
        no_go[reach] = no_go_mask(context, request, near, target, radius, parameters)
    feasible, rejected = _reasons(length, angle, clearance, unknown, request, no_go)
    check(cancel)
    pareto = np.zeros(len(ids), dtype=bool)
    if feasible.any():
        pareto[feasible] = pareto_mask(clearance[feasible], length[feasible], angle[feasible])
    report(progress, 0.7, "re-checking the best candidates against the surface meshes")
    rows = dict(entries=entries, target=target, ids=ids, length=length, angle=angle,
                clearance=clearance, risk=risk, pareto=pareto)
    top = _top_candidates(context, rows, feasible, request, radius, cancel)
    front = [_candidate(rows, i, 0) for i in np.flatnonzero(pareto)]
    front.sort(key=lambda c: -c.clearance_mm)
    heat_risk = np.where(feasible, risk, np.nan)
    report(progress, 1.0, "search done")
    return PathSearchResult(
        n_candidates=len(ids), n_feasible=int(feasible.sum()),
        time_s=time.perf_counter() - started, candidates=top, pareto=front,
        heatmaps=[DisplayScalars("risk", skin, "", entries, heat_risk, ids),
                  DisplayScalars("clearance", skin, "mm", entries, clearance, ids)],
        rejected=rejected, warnings=thin_critical_warning(context))


def _candidate(rows: dict, i: int, rank: int, exact: dict | None = None) -> PathCandidate:
    return PathCandidate(
        rank=rank, entry_lps=tuple(float(v) for v in rows["entries"][i]),
        target_lps=tuple(float(v) for v in rows["target"]), length_mm=float(rows["length"][i]),
        angle_deg=float(rows["angle"][i]), clearance_mm=float(rows["clearance"][i]),
        risk=float(rows["risk"][i]), pareto=bool(rows["pareto"][i]), vertex=int(rows["ids"][i]),
        exact_clearance_mm=exact)


def _top_candidates(context, rows, feasible, request, radius, cancel) -> list[PathCandidate]:
    """Best by risk, then clearance (to 0.1 mm), then the shorter path, then the smaller
    skin angle; spread apart, each re-checked on the exact meshes. (Ties on clearance are
    common when the nearest critical structure is far: length then decides.)"""
    order = np.flatnonzero(feasible)
    keys = (rows["angle"][order], np.round(rows["length"][order], 0),
            -np.round(rows["clearance"][order], 1), rows["risk"][order])
    order = order[np.lexsort(keys)]
    functions = mesh_distance_functions(context)
    chosen: list[PathCandidate] = []
    picked: list[np.ndarray] = []
    for i in order:
        if len(chosen) >= request.top_k:
            break
        entry = rows["entries"][i]
        if any(np.linalg.norm(entry - p) < MIN_SEPARATION_MM for p in picked):
            continue
        check(cancel)
        exact = exact_clearance_mm(functions, entry, rows["target"], radius)
        picked.append(entry)
        if exact and min(exact.values()) < 0:
            continue  # breaches on the exact surface: not offered
        chosen.append(_candidate(rows, i, len(chosen) + 1, exact))
    return chosen
