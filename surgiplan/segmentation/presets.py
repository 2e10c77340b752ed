"""One-click assisted presets per anatomy: STARTING POINTS that the user then corrects.

``"ct-bone-skin-vessels"`` (CT in HU):

* skin: the body mask (air/skin boundary > -300 HU, table detached, holes filled);
* bone: >= 300 HU cortex (islands < 200 mm3 dropped), gaps closed by 3 mm, holes filled per
  axial slice and in 3D; then marrow islands of the 150-500 HU range that are mostly enclosed
  by bone join it (vertebral bodies whose cortex is open at the basivertebral foramen);
* vessels: 150-500 HU inside the body, more than 2 mm from bone, without the thick organs,
  islands >= 1 ml. The thick organs are what enhances as much as the blood but is no tube:
  the enhancing voxels closed by ``VESSEL_CLOSE_MM`` and filled per axial slice; where a
  ``VESSEL_MAX_RADIUS_MM`` ball fits (wider than a vessel: the kidneys, the spleen, the heart's
  chambers), that ball grown by ``VESSEL_ORGAN_RIM_MM`` (the organ's rim and its hilum) is
  left out (SimpleITK Maurer distances, on a ~2 mm in-plane grid). With contrast this keeps
  the abdominal aorta, the large veins and their branches; the kidneys, spleen and heart
  chambers are not "vessels" (the kidneys' and spleen's own finders are in ``ct-liver``), nor
  is the descending aorta where it runs within the rim of the heart or spleen.

``"mr-head"`` (T1-weighted):

* head (skin role): above half of Otsu's level, largest island, gaps closed, holes filled;
* brain (organ role): a skull-stripping heuristic (``surgiplan.segmentation.head.brain_mask``):
  grey/white-matter intensities shrunk by 5 mm to cut the bridges to scalp, orbits and neck,
  largest island, grown back geodesically up to the inner skull, sulci closed, cut at the
  foramen magnum. Check the skull base.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role
from surgiplan.model.volume import ImageVolume
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.segmentation.islands import remove_small_islands
from surgiplan.segmentation.morphology import fill_holes, grow_mask, shrink_mask
from surgiplan.segmentation.threshold import body_mask, mr_head_mask

if TYPE_CHECKING:
    from surgiplan.segmentation.editor import SegmentEditor
    from surgiplan.twin import Twin


@dataclass(frozen=True)
class PresetStructure:
    """One structure a preset proposes."""

    name: str
    role: Role
    mask: np.ndarray = field(repr=False)
    description: str = ""
    opacity: float = 1.0  # display opacity (0..1); see-through for regions around the plan


@dataclass(frozen=True)
class Preset:
    name: str
    modality: str
    title: str
    build: Callable[..., list[PresetStructure]] = field(repr=False)


def _step(progress: ProgressCallback | None, cancel: CancelToken | None, fraction: float,
          text: str) -> None:
    check(cancel)
    report(progress, fraction, text)


def _enclosed_islands(candidates: np.ndarray, bone: np.ndarray, *, min_share: float) -> np.ndarray:
    """The islands of ``candidates`` whose one-voxel outer shell lies mostly in ``bone``."""
    labels, n = ndimage.label(candidates)
    if n == 0:
        return np.zeros_like(candidates)
    shell_labels = ndimage.grey_dilation(labels, size=(3, 3, 3))
    shell = (labels == 0) & (shell_labels > 0)
    total = np.bincount(shell_labels[shell], minlength=n + 1)
    in_bone = np.bincount(shell_labels[shell & bone], minlength=n + 1)
    keep = in_bone >= min_share * np.maximum(total, 1)
    keep[0] = False
    return keep[labels]


def ct_bone_mask(image: np.ndarray, geometry: ImageGeometry, body: np.ndarray) -> np.ndarray:
    """Bone for the CT preset (see the module docstring)."""
    cortex = remove_small_islands((image >= 300) & body, geometry, min_volume_mm3=200.0)
    closed = shrink_mask(grow_mask(cortex, geometry, 3.0), geometry, 3.0) | cortex
    bone = fill_holes(fill_holes(closed, per_slice_axis=0))
    marrow = (image >= 150) & (image <= 500) & body & ~bone
    return bone | _enclosed_islands(marrow, bone, min_share=0.6)


VESSEL_CLOSE_MM = 5.0
VESSEL_MAX_RADIUS_MM = 12.0
VESSEL_ORGAN_RIM_MM = 9.0


def thick_enhancing(enhancing: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """Where ``enhancing`` (closed and filled) holds a ball wider than a vessel, grown by the
    organ's rim (see the module docstring): kidneys, spleen, heart chambers. Found on a grid
    of about 2 mm in-plane (the majority of each block; the radii are 5-21 mm)."""
    nz, ny, nx = enhancing.shape
    sx, sy, sz = geometry.spacing_mm
    step = max(1, round(2.0 / max(sx, sy)))
    cy, cx = ny // step, nx // step
    small = enhancing[:, :cy * step, :cx * step].reshape(nz, cy, step, cx, step).mean(
        axis=(2, 4)) >= 0.5
    coarse = ImageGeometry((cx, cy, nz), (sx * step, sy * step, sz), geometry.origin_lps,
                           geometry.direction)
    solid = fill_holes(shrink_mask(grow_mask(small, coarse, VESSEL_CLOSE_MM), coarse,
                                   VESSEL_CLOSE_MM) | small, per_slice_axis=0)
    core = shrink_mask(solid, coarse, VESSEL_MAX_RADIUS_MM)
    thick = grow_mask(core, coarse, VESSEL_MAX_RADIUS_MM + VESSEL_ORGAN_RIM_MM)
    out = np.zeros_like(enhancing)
    out[:, :cy * step, :cx * step] = np.repeat(np.repeat(thick, step, axis=1), step, axis=2)
    return out


def ct_vessel_mask(image: np.ndarray, geometry: ImageGeometry, body: np.ndarray,
                   bone: np.ndarray) -> np.ndarray:
    """Contrast-enhanced vessels for the CT preset (see the module docstring)."""
    near_bone = grow_mask(bone, geometry, 2.0)
    enhancing = (image >= 150) & (image <= 500) & body & ~near_bone
    vessels = enhancing & ~thick_enhancing(enhancing, geometry)
    return remove_small_islands(vessels, geometry, min_volume_mm3=1000.0)


def _ct_bone_skin_vessels(volume: ImageVolume, progress: ProgressCallback | None,
                          cancel: CancelToken | None) -> list[PresetStructure]:
    image, geometry = volume.array, volume.geometry
    _step(progress, cancel, 0.0, "skin")
    body = body_mask(image, geometry)
    _step(progress, cancel, 0.35, "bone")
    bone = ct_bone_mask(image, geometry, body)
    _step(progress, cancel, 0.7, "vessels")
    vessels = ct_vessel_mask(image, geometry, body, bone)
    report(progress, 1.0, "preset done")
    note = "preset starting point: check and correct"
    return [PresetStructure("skin", Role.SKIN, body, note),
            PresetStructure("bone", Role.BONE, bone, note),
            PresetStructure("vessels", Role.CRITICAL, vessels, note)]


def _ct_spine(volume: ImageVolume, progress: ProgressCallback | None,
              cancel: CancelToken | None) -> list[PresetStructure]:
    """Skin, the spinal canal (critical), one bone structure per vertebra named by level
    (``surgiplan.segmentation.spine``), the sacrum, and the aorta and inferior vena cava in
    front (critical, ``surgiplan.segmentation.great_vessels``; contrast CT) where found; an
    IVC track that never leaves the liver is dropped, as in ``ct-liver``
    (``abdomen.without_ivc_inside_liver``)."""
    from surgiplan.segmentation import great_vessels
    from surgiplan.segmentation.abdomen import without_ivc_inside_liver
    from surgiplan.segmentation.spine import METHOD, segment_spine

    image, geometry = volume.array, volume.geometry
    _step(progress, cancel, 0.0, "skin")
    body = body_mask(image, geometry)
    _step(progress, cancel, 0.3, "vertebrae and canal")
    spine = segment_spine(image, geometry, body)
    _step(progress, cancel, 0.7, "aorta and inferior vena cava")
    vessels = great_vessels.segment_aorta_ivc(image, geometry, body, spine.canal, spine.bone())
    vessels = without_ivc_inside_liver(vessels, image, geometry, body)
    report(progress, 1.0, "preset done")
    note = (f"automatic ({METHOD}; levels from the {spine.level_source}); quality: "
            f"{spine.quality}: check and correct")
    vessel_note = (f"automatic ({great_vessels.METHOD}); quality: automatic, unreviewed: "
                   "check and correct")
    blood = np.zeros_like(body)
    for mask in vessels.values():
        blood |= mask
    out = [PresetStructure("skin", Role.SKIN, body, note),
           PresetStructure("spinal canal", Role.CRITICAL, spine.canal, note)]
    out += [PresetStructure(name, Role.BONE, mask, note)
            for name, mask in spine.vertebra_masks(without=blood).items()]
    out += [PresetStructure(name, Role.CRITICAL, mask, vessel_note)
            for name, mask in vessels.items()]
    if spine.sacrum is not None:
        out.append(PresetStructure("sacrum", Role.BONE, spine.sacrum, note))
    return out


def _ct_liver(volume: ImageVolume, progress: ProgressCallback | None,
              cancel: CancelToken | None) -> list[PresetStructure]:
    """Skin, the liver (organ) with its hepatic and portal veins (critical), the spleen,
    kidneys and gallbladder (organs), and the aorta and inferior vena cava (critical) where
    found, each kept out of the others (``surgiplan.segmentation.abdomen``; contrast CT).
    Lesions are added from a seed click (``liver.lesion_from_seed``)."""
    from surgiplan.segmentation.abdomen import abdomen_structures

    image, geometry = volume.array, volume.geometry
    _step(progress, cancel, 0.0, "skin")
    body = body_mask(image, geometry)
    _step(progress, cancel, 0.2, "liver, its veins, spleen, kidneys, gallbladder, aorta, IVC")
    found = abdomen_structures(image, geometry, body)
    report(progress, 1.0, "preset done")
    return [PresetStructure("skin", Role.SKIN, body, "preset starting point: check and correct")
            ] + [PresetStructure(f.name, f.role, f.mask, f.note) for f in found]


def mr_brain_mask(image: np.ndarray, geometry: ImageGeometry, head: np.ndarray) -> np.ndarray:
    """Brain for the MR head presets (skull stripping: ``surgiplan.segmentation.head``)."""
    from surgiplan.segmentation.head import brain_mask

    return brain_mask(image, geometry, head)


def _mr_head(volume: ImageVolume, progress: ProgressCallback | None,
             cancel: CancelToken | None) -> list[PresetStructure]:
    image, geometry = volume.array, volume.geometry
    _step(progress, cancel, 0.0, "head")
    head = mr_head_mask(image, geometry)
    _step(progress, cancel, 0.4, "brain")
    brain = mr_brain_mask(image, geometry, head) & head
    report(progress, 1.0, "preset done")
    from surgiplan.segmentation.head import BRAIN_METHOD

    note = "preset starting point: check and correct"
    brain_note = (f"automatic ({BRAIN_METHOD}); quality: automatic, unreviewed: check and "
                  "correct the skull base")
    return [PresetStructure("head", Role.SKIN, head, note),
            PresetStructure("brain", Role.ORGAN, brain, brain_note)]


# No-go entry regions (face, orbits, sinuses, ears) cover the skin where a path starts: drawn
# see-through so the trajectory and its entry stay visible in 3D and on the slices.
NO_GO_OPACITY = 0.35


def _mr_head_planning(volume: ImageVolume, progress: ProgressCallback | None,
                      cancel: CancelToken | None) -> list[PresetStructure]:
    """``mr-head`` plus the ventricles and the no-go regions for an entry (orbits, face,
    sinuses, ears), all critical (``surgiplan.segmentation.head``), so the safest-path search
    avoids them."""
    from surgiplan.segmentation.head import METHOD, segment_head

    out = _mr_head(volume, progress, cancel)
    head, brain = out[0].mask, out[1].mask
    _step(progress, cancel, 0.7, "ventricles and no-go regions")
    found = segment_head(volume.array, volume.geometry, head, brain)
    report(progress, 1.0, "preset done")
    note = f"automatic ({METHOD}); quality: automatic, unreviewed: check and correct"
    out.append(PresetStructure("ventricles", Role.CRITICAL, found.ventricles, note))
    out += [PresetStructure(name, Role.CRITICAL, mask, note, opacity=NO_GO_OPACITY)
            for name, mask in found.no_go.items()]
    return out


PRESETS: dict[str, Preset] = {
    p.name: p for p in (
        Preset("ct-bone-skin-vessels", "CT", "CT: bone + skin + contrast vessels",
               _ct_bone_skin_vessels),
        Preset("ct-spine", "CT", "CT spine: vertebrae by level + spinal canal + skin",
               _ct_spine),
        Preset("ct-liver", "CT", "CT liver (contrast): liver + its veins + spleen + kidneys + "
               "gallbladder + aorta/IVC "
               "+ skin", _ct_liver),
        Preset("mr-head", "MR", "MR head: head + brain mask", _mr_head),
        Preset("mr-head-planning", "MR", "MR head planning: head + brain + ventricles + no-go "
               "regions (orbits, face, sinuses, ears)", _mr_head_planning),
    )
}


def preset_masks(volume: ImageVolume, name: str, *, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> list[PresetStructure]:
    """The structures a preset proposes for ``volume`` (nothing is added anywhere)."""
    if name not in PRESETS:
        raise BadInputError(f"unknown segmentation preset {name!r}",
                            action=f"use one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    if preset.modality == "CT" and volume.modality not in ("CT", "OT"):
        raise BadInputError(f"preset {name!r} needs a CT in HU, the image is "
                            f"{volume.modality}", action="pick a preset for this modality")
    return preset.build(volume, progress, cancel)


def apply_preset(twin: Twin, name: str, *, editor: SegmentEditor | None = None,
                 progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> list[str]:
    """Run a preset and bring its structures into ``twin``; returns the names added or updated.

    A name the twin has already is updated when an automatic run made it and nobody touched it
    since, and kept (the proposal dropped) when a person drew, edited or reviewed it
    (:mod:`surgiplan.segmentation.preset_merge`). With ``editor`` it is one undoable step.
    Default colour and margin come from the anatomy name list. Each structure added or updated
    is recorded in the twin's provenance as automatic (method, quality flag unreviewed).
    """
    from surgiplan.segmentation.anatomy_names import lookup_anatomy
    from surgiplan.segmentation.preset_merge import KEEP, UPDATE, merge_action

    proposals = preset_masks(twin.image, name, progress=progress, cancel=cancel)
    check(cancel)
    added: list[str] = []

    def add_all() -> None:
        for p in proposals:
            entry = lookup_anatomy(p.name)
            props: dict[str, Any] = {"role": p.role, "description": p.description,
                                     "color": entry.color if entry else None,
                                     "margin_mm": entry.margin_mm if entry else 0.0}
            action = merge_action(twin, p.name)
            if action == KEEP:
                continue
            if action == UPDATE and editor is not None:
                editor.replace_mask(p.name, p.mask, overwrite_others=False,
                                    label=f"preset {name}: {p.name}")
            elif action == UPDATE:
                twin.set_structure_mask(p.name, p.mask)
            else:
                adder = editor.add_structure if editor is not None else twin.add_structure
                adder(p.name, p.mask, **props)
                if p.opacity != 1.0:
                    setter = (editor.set_properties if editor is not None
                              else twin.set_structure_properties)
                    setter(p.name, opacity=p.opacity)
            twin.provenance.record_automatic(p.name, f"preset {name}: {p.description}")
            added.append(p.name)

    if editor is not None:
        with editor.stroke(f"preset {name}"):
            add_all()
    else:
        add_all()
    return added
