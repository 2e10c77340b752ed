"""A phantom as a ready case: the DICOM series, ground truth, and a twin bundle with scored demo
plans (what ``surgiplan sample`` writes, and what training exercises open)."""

from __future__ import annotations

from pathlib import Path


def write_sample(name: str, out_dir: Path, *, seed: int = 0, progress=None) -> Path:
    """Generate phantom ``name`` in ``out_dir`` and save its twin; returns the bundle path."""
    from surgiplan.io.bundle import save_bundle
    from surgiplan.io.twin_build import build_twin
    from surgiplan.phantoms.generate import generate_phantom, phantom_spec
    from surgiplan.progress import report

    phantom_spec(name)  # unknown names fail before anything is written
    files = generate_phantom(
        name, out_dir, seed=seed,
        progress=None if progress is None else lambda f, t: report(progress, 0.7 * f, t),
    )
    report(progress, 0.7, "building the twin")
    twin = build_twin(files.dicom_dir, labels=[files.labels_nrrd], label_names=files.labels_json)
    twin.provenance.notes.append(f"SurgiPlan {name} phantom, seed {seed}; truth: truth.json")
    _add_demo_plans(name, twin, progress)
    path = save_bundle(twin, Path(out_dir) / f"{name}.surgiplan")
    report(progress, 1.0, f"saved {path}")
    return path


def _add_demo_plans(name: str, twin, progress) -> None:
    """Scored candidate plans for the phantom (surgiplan.plans.demo), kept in the bundle."""
    from surgiplan.plans.demo import demo_plans
    from surgiplan.plans.store import store_in_twin
    from surgiplan.progress import report

    report(progress, 0.75, "scoring the demo plans")
    plan_set, skipped = demo_plans(
        name, twin, progress=None if progress is None else
        lambda f, t: report(progress, 0.75 + 0.2 * f, t))
    if skipped:
        twin.provenance.notes.append(skipped)
    elif len(plan_set):
        store_in_twin(twin, plan_set)
