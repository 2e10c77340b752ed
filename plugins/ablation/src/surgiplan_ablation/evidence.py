"""The ablation simulator's stated error model and thresholds, each with its published source.

Placement (CT-guided percutaneous probe, freehand): Heerink WJ et al., "Robotic versus freehand
needle positioning in CT-guided ablation of liver tumors: a randomized controlled trial",
Radiology 2019;290(3):826-832 (doi 10.1148/radiol.2018181698). Freehand, in-plane targets:
lateral targeting error (distance of the target from the antenna, across it) 6.2 +/- 2.7 mm.
For a circular 2D Gaussian with per-axis SD ``s`` the radial error is Rayleigh with mean
``s sqrt(pi/2) = 1.2533 s``: ``s = 6.2 / 1.2533 = 4.9 mm``. The error along the antenna (depth)
is not reported; it is taken equal (isotropic, an assumption). The entry (skin) point error is
not reported either: 2 mm per axis is an assumption (a skin mark under CT with a grid).

Zone size (chart vs achieved zone): PubMed 27425001 (J Vasc Interv Radiol 2016), 93 liver
tumours, single microwave applicator: achieved long axis 58 +/- 13 mm, short 37 +/- 8 mm;
correlation with the manufacturer's chart r = 0.51 (95 % CI 0.34-0.65) long, 0.63 (0.49-0.74)
short. Residual SD once the chart has predicted: ``SD sqrt(1 - r^2)`` = 11.2 mm (19 % of 58 mm)
long, 6.2 mm (17 % of 37 mm) short.

The SDs themselves are uncertain (the model's hyper-uncertainty, log-normal factors on the
SDs; a probability computed with them inherits it):

* zone-size SDs: sampling error of an SD from n = 93 (relative SE ``1/sqrt(2 (n-1))`` = 0.074)
  combined with the CI of r (``sqrt(1 - r^2)`` moves by about +/-11 % over it, SE 0.056):
  ``sqrt(0.074^2 + 0.056^2)`` = 0.09 log-SD;
* placement SD: relative SE of a mean of about 10 freehand in-plane targets (the abstract gives
  47 tumours over two arms and two target kinds, not the exact count): ``2.7 / (6.2 sqrt 10)``
  = 0.14 log-SD;
* boundary SD (one voxel, the size of a segmentation's boundary ambiguity): an assumption, so
  a wide 0.35 log-SD (a factor of 2 either way at 95 %).

Boundary offsets are bounded (montecarlo.py): a visible surface lies within its partial-volume
layer, so an offset is a normal truncated at 2.5 nominal SDs (98.8 % of its mass; 7.5 mm on
3 mm slices), and the tumour shrinks by at most half its depth (a seen lesion cannot be
erased). The untruncated compound law moved a 7.1 ml lesion's boundary by -11.7 mm on a 3 mm
CT in one draw of 50 and erased it.

Discretisation: margins and clearances come from voxel distance maps whose zero level is within
half a voxel ``h/2`` of the true surface (surgiplan.processing.distance); the error is modelled
as uniform over that band, SD ``h / sqrt(12)``, one offset per surface per draw.

Tumour volume under a boundary move ``e`` (simulator.tumour_volume_law_mm): the tumour holds
the voxel centres whose signed distance to its surface is below ``e``; the volume is their
count times the voxel volume. The distance is Euclidean, to the tumour's sub-voxel surface
points (near-surface voxel centres projected onto the zero level; margins use them), not the
voxel distance map: the map holds ``D - min(h/2, D/2)`` with ``D`` the distance to the nearest
voxel centre across the boundary, and beyond a curved or in-plane surface that centre lies on
average well under ``h/2`` past it, so the map's magnitude is short. Measured on the liver
phantom's 12 mm tumour (1 x 1 x 1.5 mm grid) against the analytic distance: map -0.39 mm
(outside) / +0.46 mm (inside), surface points -0.01 +/- 0.19 mm. Counting the map moved the
surface by ``e`` plus about 0.4 mm (``e = +/-2`` mm gave the volume of a 12 +2.39 / -2.51 mm
sphere; the surface distance +1.96 / -2.04 mm), which widened the volume's 95 % interval to
98.0 % coverage (tests/verification/test_ablation_coverage.py; 96.0 % with this law).
No discretisation offset is applied to a volume: the voxelisation error of a count averages
out over the surface (a 12 mm sphere at random sub-voxel positions on that grid: SD 0.019 ml,
0.3 %; one uniform half-voxel shift of the whole surface, right for a distance, would be SD
0.78 ml); within half a voxel of the surface the count moves by whole voxel layers. The
boundary SD stays the stated one voxel (largest spacing) in every direction, for volumes as
for distances: it is the stated ambiguity of where a visible surface lies, not a grid error.

Ablative margin: Wang X, Sofocleous CT, Erinjeri JP et al., "Margin size is an independent
predictor of local tumor progression after ablation of colon cancer liver metastases",
Cardiovasc Intervent Radiol 2013;36(1):166-175 (PMID 22535243): 2-year local-progression-free
survival 26 / 46 / 74 / 80 % for minimal margins 0 / 1-5 / 6-10 / 11-15 mm; risk down 46 % per
5 mm. Hence the minimum 5 mm (below it progression is the likelier outcome) and the aim 10 mm.

Heat sink: Lu DSK et al., "Influence of large peritumoral vessels on
outcome of radiofrequency ablation of liver tumors", J Vasc Interv Radiol 2003;14(10):
1267-1274: vessels of 3 mm or more next to the tumour predict incomplete RF ablation (our
reading of the abstract; the proximity window of 10 mm from the zone used here is a stated
assumption, wider than "in contact", so a vessel just outside the planned zone counts).
"""

from __future__ import annotations

import math

from surgiplan.simulation.uncertainty import ErrorProfile

HEERINK_2019 = ("Heerink WJ et al. Robotic versus freehand needle positioning in CT-guided "
                "ablation of liver tumors: a randomized controlled trial. Radiology "
                "2019;290(3):826-832, doi 10.1148/radiol.2018181698")
CHART_2016 = ("chart-predicted vs achieved microwave zones in 93 liver tumours, J Vasc Interv "
              "Radiol 2016 (PubMed 27425001)")
WANG_2013 = ("Wang X, Sofocleous CT et al. Margin size is an independent predictor of local "
             "tumor progression after ablation of colon cancer liver metastases. Cardiovasc "
             "Intervent Radiol 2013;36(1):166-175 (PMID 22535243)")
LU_2003 = ("Lu DSK et al. Influence of large peritumoral vessels on outcome of radiofrequency "
           "ablation of liver tumors. J Vasc Interv Radiol 2003;14(10):1267-1274")

RAYLEIGH_MEAN_PER_SD = math.sqrt(math.pi / 2)
TARGET_SD_MM = round(6.2 / RAYLEIGH_MEAN_PER_SD, 1)  # 4.9 mm
ENTRY_SD_MM = 2.0  # assumption, see the module docstring
ZONE_LONG_SD_PCT = 19.0
ZONE_SHORT_SD_PCT = 17.0
ZONE_SD_LOG_SD = 0.09
PLACEMENT_SD_LOG_SD = 0.14
BOUNDARY_SD_LOG_SD = 0.35
MIN_MARGIN_MM = 5.0
AIM_MARGIN_MM = 10.0
HEAT_SINK_MIN_DIAMETER_MM = 3.0
HEAT_SINK_REACH_MM = 10.0
BOUNDARY_TRUNCATION_SD = 2.5  # boundary offsets within 2.5 nominal SDs (montecarlo.py)
MAX_SHRINK_SHARE = 0.5  # the tumour shrinks by at most half its depth (montecarlo.py)

ZONE_SD_SOURCE = (f"residual SD of achieved vs chart-predicted zones: long 13 mm x "
                  f"sqrt(1 - 0.51^2) = 11.2 mm of 58 mm, short 8 mm x sqrt(1 - 0.63^2) = "
                  f"6.2 mm of 37 mm; {CHART_2016}")
MARGIN_SOURCE = (f"2-year local-progression-free survival 26/46/74/80 % for minimal margins "
                 f"0/1-5/6-10/11-15 mm: minimum 5 mm, aim 10 mm; {WANG_2013}")
HEAT_SINK_SOURCE = (f"vessels >= 3 mm next to the tumour predict incomplete RF ablation "
                    f"({LU_2003}); counted within 10 mm of the zone (assumption)")

VOLUME_LAW = ("tumour volume after a boundary move e: voxel centres within e of its sub-voxel "
              "surface (Euclidean distance to the surface points; the voxel distance map is "
              "short by up to h/2); no discretisation offset: a voxel count's error averages "
              "out over the surface (12 mm sphere on 1 x 1 x 1.5 mm: SD 0.019 ml)")

ABLATION_PROFILE = ErrorProfile(
    name="CT-guided freehand probe placement (Heerink 2019)",
    entry_sd_mm=ENTRY_SD_MM, target_sd_mm=TARGET_SD_MM, source=HEERINK_2019,
    derivation="freehand in-plane lateral targeting error 6.2 mm (mean) divided by the "
               "Rayleigh mean sqrt(pi/2) = 1.253 of a circular 2D Gaussian: 4.9 mm per axis, "
               "assumed isotropic (depth error not reported); entry SD 2 mm is an assumption "
               "(not reported)",
    extra=(("zone_long_sd_pct", ZONE_LONG_SD_PCT), ("zone_short_sd_pct", ZONE_SHORT_SD_PCT),
           ("zone_sd_log_sd", ZONE_SD_LOG_SD), ("placement_sd_log_sd", PLACEMENT_SD_LOG_SD),
           ("boundary_sd_log_sd", BOUNDARY_SD_LOG_SD),
           ("boundary_truncation_sd", BOUNDARY_TRUNCATION_SD),
           ("max_tumour_shrink_share", MAX_SHRINK_SHARE)),
    extra_sources=(("zone_long_sd_pct", ZONE_SD_SOURCE), ("zone_short_sd_pct", ZONE_SD_SOURCE),
                   ("zone_sd_log_sd", "SE of an SD from n = 93 with the CI of r, "
                                      f"{CHART_2016}"),
                   ("placement_sd_log_sd", f"SE of a mean of ~10 targets, {HEERINK_2019}"),
                   ("boundary_sd_log_sd", "assumption: one voxel known to a factor of 2"),
                   ("boundary_truncation_sd", "a visible surface lies within its "
                                              "partial-volume layer: offsets truncated at "
                                              "2.5 SD (98.8 % of a Gaussian's mass)"),
                   ("max_tumour_shrink_share", "a lesion seen on the image exists: its "
                                               "boundary moves inward by at most half its "
                                               "depth (largest inside distance to its "
                                               "surface)"),
                   ("discretisation", "uniform within half a voxel of the surface, "
                                      "SD h/sqrt(12) (surgiplan.processing.distance)"),
                   ("target_volume", VOLUME_LAW)),
)
