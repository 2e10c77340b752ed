"""Rigid CT <-> MR registration of the head phantom, as a ratio to a bare SimpleITK run.

* ``register_volumes`` (surgiplan.registration.engine: moments start, Mattes MI, conjugate
  gradient line search, pyramid scaled to the grid, metric before/after, progress) vs the same
  ``ImageRegistrationMethod`` set up by hand with the same settings (pyramid, seeded sampling,
  optimiser scales, one ITK thread) on the same images, in the same run (goal: <= 1.2x), per
  optimiser iteration, in CPU time (both run ITK on one thread, so CPU time does not follow
  the shared machine's load as wall time does);
* its absolute time on this machine (goal: <= 30 s): wall time and CPU time (on a shared
  machine the wall time follows the load average, printed with it);
* repeatability: the two runs' transforms (largest matrix element difference);
* its accuracy: target registration error at every structure centroid against the known
  transform (goal: <= 1 mm) and the residual rotation.

The pair is ``synthetic_pair("head", ct_spacing_mm=SPACING_MM)``: by default the full phantom
grid, CT 180x220x190 at 1 mm, and an MR-like series (T1-like intensities) at 1.2x1.2x1 mm,
moved by 5/-4/7 degrees and 8/-6/10 mm; registered on a pyramid of 8, 4 and 2 mm voxels
(``RegistrationSettings.finest_mm`` = 2), one ITK thread (``repeatable``).
``SURGIPLAN_BENCH_REG_SPACING=2.0`` renders the pair at 2 mm instead (pyramid 8/4/2 mm too).
"""

from __future__ import annotations

import os
import time

import numpy as np

SPACING_MM = float(os.environ.get("SURGIPLAN_BENCH_REG_SPACING", "1.0"))


def _bare(pair, settings) -> tuple[float, int]:
    """The same registration with SimpleITK only; returns (CPU seconds, iterations)."""
    import SimpleITK as sitk

    from surgiplan.registration.engine import (
        _itk_threads,
        physical_shift_scales,
        sampling_per_level,
    )

    t0 = time.process_time()
    settings = settings.for_grid(pair.ct.geometry.spacing_mm)  # the same pyramid as ours
    fixed = sitk.GetImageFromArray(pair.ct.array.astype(np.float32))
    moving = sitk.GetImageFromArray(pair.mr.array.astype(np.float32))
    for image, g in ((fixed, pair.ct.geometry), (moving, pair.mr.geometry)):
        image.SetSpacing(g.spacing_mm)
        image.SetOrigin(g.origin_lps)
        image.SetDirection(tuple(g.direction.reshape(-1)))
    init = sitk.CenteredTransformInitializer(fixed, moving, sitk.Euler3DTransform(),
                                             sitk.CenteredTransformInitializerFilter.MOMENTS)
    reg = sitk.ImageRegistrationMethod()
    if settings.threads > 0:
        reg.SetNumberOfThreads(settings.threads)
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=settings.histogram_bins)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentagePerLevel(
        sampling_per_level(settings, pair.ct.geometry.n_voxels), settings.seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsConjugateGradientLineSearch(
        learningRate=1.0, numberOfIterations=settings.iterations, convergenceMinimumValue=1e-6,
        convergenceWindowSize=10, estimateLearningRate=reg.Once,
        maximumStepSizeInPhysicalUnits=settings.max_step_mm)
    reg.SetOptimizerScales(physical_shift_scales(fixed, init))  # seeded: repeatable runs
    reg.SetShrinkFactorsPerLevel(list(settings.shrink_factors))
    reg.SetSmoothingSigmasPerLevel(list(settings.smoothing_mm))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(init, inPlace=False)
    count = [0]
    reg.AddCommand(sitk.sitkIterationEvent, lambda: count.__setitem__(0, count[0] + 1))
    with _itk_threads(1 if settings.repeatable else 0):  # the same threads as ours
        reg.Execute(fixed, moving)
    return time.process_time() - t0, count[0]


def run() -> list[dict]:
    from surgiplan.registration.engine import RegistrationSettings, register_volumes
    from surgiplan.registration.synthetic import synthetic_pair

    pair = synthetic_pair("head", ct_spacing_mm=SPACING_MM)
    settings = RegistrationSettings()
    ours, bare, whole, cpu, errors, matrices = [], [], [], [], [], []
    for _ in range(2):  # interleaved, the faster of two each (a noisy shared machine)
        t0, c0 = time.perf_counter(), time.process_time()
        result = register_volumes(pair.ct, pair.mr, settings, progress=lambda f, t: None)
        whole.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        ours.append(cpu[-1] / result.iterations)
        matrices.append(result.transform.matrix_to_reference)
        seconds, iterations = _bare(pair, settings)
        bare.append(seconds / iterations)
        errors.append({n: float(np.linalg.norm(result.transform.from_reference(c)
                                               - pair.true_transform.from_reference(c)))
                       for n, c in pair.centroids_lps.items()})
    worst = max(max(e.values()) for e in errors)
    size = "x".join(map(str, pair.ct.geometry.size))
    residual = result.transform.matrix_from_reference @ pair.true_transform.matrix_to_reference
    from surgiplan.model.series_transform import rotation_angle_deg

    return [
        {"name": "registration rigid CT-MR vs bare SimpleITK, CPU per iteration",
         "value": min(ours) / min(bare), "unit": "x", "goal": 1.2,
         "detail": f"head phantom CT {size} at {SPACING_MM:g} mm; {1000 * min(ours):.0f} ms vs "
         f"{1000 * min(bare):.0f} ms per iteration"},
        {"name": "registration rigid CT-MR time", "value": min(whole), "unit": "s",
         "goal": 30.0, "detail": f"wall, faster of two; CPU {min(cpu):.1f} s; "
         f"{result.iterations} optimiser iterations; pyramid "
         f"{result.transform.settings['shrink_factors_used']} x {SPACING_MM:g} mm; "
         f"load average {os.getloadavg()[0]:.1f} at the end"},
        {"name": "registration repeatability (two runs, largest matrix difference)",
         "value": float(np.abs(matrices[0] - matrices[1]).max()), "unit": "",
         "goal": 1e-6, "detail": f"repeatable={settings.repeatable}"},
        {"name": "registration TRE worst structure centroid", "value": worst, "unit": "mm",
         "goal": 1.0, "detail": ", ".join(f"{n} {v:.2f}" for n, v in errors[-1].items())},
        {"name": "registration residual rotation", "value": rotation_angle_deg(residual[:3, :3]),
         "unit": "deg", "goal": 1.0, "detail": "last run"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
