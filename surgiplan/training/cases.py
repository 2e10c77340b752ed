"""Find (or make) the case of an exercise.

In order: an explicit ``case`` (a ``.surgiplan`` file or a folder holding one); the exercise's
``case.bundle`` (relative to the exercise file) if it exists; the project's
``sample_scans/NAME/NAME.surgiplan`` for seed 0; a cached copy in the user cache folder;
otherwise the phantom is generated into that cache (10-30 s).
"""

from __future__ import annotations

from pathlib import Path

from surgiplan.errors import BadInputError
from surgiplan.progress import CancelToken, ProgressCallback, check
from surgiplan.training.exercise import Exercise

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """Where generated exercise phantoms are kept (platform user cache)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("surgiplan", appauthor=False)) / "phantoms"


def _bundle_in(folder: Path, name: str) -> Path | None:
    path = folder / f"{name}.surgiplan"
    return path if path.is_file() else None


def case_bundle(exercise: Exercise, exercise_path: Path | None = None, *,
                case: str | Path | None = None, progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> Path:
    """The bundle path of the exercise's case (generating the phantom when needed)."""
    if case is not None:
        from surgiplan.io.case_files import bundle_path

        return bundle_path(Path(case))
    ref = exercise.case
    if ref.bundle:
        base = exercise_path.parent if exercise_path is not None else Path.cwd()
        path = (base / ref.bundle).resolve()
        if path.is_file():
            return path
        if ref.phantom is None:
            raise BadInputError("the exercise's case bundle is missing", path=path,
                                action="pass the case with --case")
    name = ref.phantom
    assert name is not None  # CaseRef holds a phantom whenever its bundle cannot be used
    if ref.seed == 0:
        found = _bundle_in(PROJECT_ROOT / "sample_scans" / name, name)
        if found:
            return found
    return phantom_bundle(name, ref.seed, progress=progress, cancel=cancel)


def phantom_bundle(name: str, seed: int = 0, *, progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None) -> Path:
    """The cached bundle of a generated phantom (with its demo plans), generated if missing."""
    folder = cache_dir() / f"{name}-seed{seed}"
    found = _bundle_in(folder, name)
    if found:
        return found
    check(cancel)
    from surgiplan.phantoms.sample_case import write_sample

    return write_sample(name, folder, seed=seed, progress=progress)
