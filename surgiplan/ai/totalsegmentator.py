"""Run a locally installed TotalSegmentator in a child process and import its result by name.

Availability is decided without importing torch or TotalSegmentator: the ``TotalSegmentator``
executable must be found (``SURGIPLAN_TOTALSEG_BIN``, else the PATH, else next to this
Python), and its weights folder (``TOTALSEG_WEIGHTS_PATH``, else
``$TOTALSEG_HOME_DIR/nnunet/results``, else ``~/.totalsegmentator/nnunet/results``) must hold
at least one ``Dataset*`` model folder. A GPU is not needed (``device="cpu"`` works, slowly).
By default the task follows the image's modality (``total_mr`` for MR, ``total`` otherwise)
and the device is ``gpu`` when an NVIDIA GPU is present (``nvidia-smi`` on the PATH and a
``/dev/nvidia0`` device), else ``cpu``.

No download at run time: the child runs with HTTP(S) proxies pointed at a closed local port
(so TotalSegmentator's weight download and usage statistics fail instead of reaching the
network) and ``HF_HUB_OFFLINE=1``. Missing weights therefore end in an error, never a download.
The image goes to the child as NIfTI; the multi-label result comes back with the class names
TotalSegmentator embeds (v2), or the version's class table, and lands on the image grid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from surgiplan.errors import BadInputError
from surgiplan.io.atomic import write_bytes_atomic
from surgiplan.io.labelmaps import label_map_onto_image, nifti_bytes, read_label_map
from surgiplan.model.structures import Segmentation
from surgiplan.model.volume import ImageVolume
from surgiplan.progress import CancelToken, ProgressCallback, check, report

EXECUTABLE = "TotalSegmentator"
BLOCKED_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, connections fail
POLL_S = 0.5


@dataclass(frozen=True)
class Availability:
    """Whether TotalSegmentator can run here; ``reason`` says why not (shown in the menu)."""

    available: bool
    reason: str
    executable: Path | None = None
    weights_dir: Path | None = None


def weights_dir(env: dict[str, str] | None = None) -> Path:
    """Where TotalSegmentator looks for its weights (its own rules, see module docstring)."""
    env = dict(os.environ) if env is None else env
    if env.get("TOTALSEG_WEIGHTS_PATH"):
        return Path(env["TOTALSEG_WEIGHTS_PATH"])
    home = Path(env["TOTALSEG_HOME_DIR"]) if env.get("TOTALSEG_HOME_DIR") else (
        Path.home() / ".totalsegmentator")
    return home / "nnunet" / "results"


def find_executable(env: dict[str, str] | None = None) -> Path | None:
    """The TotalSegmentator command: ``SURGIPLAN_TOTALSEG_BIN``, the PATH, or beside python."""
    env = dict(os.environ) if env is None else env
    explicit = env.get("SURGIPLAN_TOTALSEG_BIN")
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    found = shutil.which(EXECUTABLE, path=env.get("PATH"))
    if found:
        return Path(found)
    beside = Path(sys.executable).parent / EXECUTABLE
    return beside if beside.is_file() else None


def availability(env: dict[str, str] | None = None) -> Availability:
    """Can TotalSegmentator run? Checks files only: nothing is imported or started."""
    exe = find_executable(env)
    if exe is None:
        return Availability(False, "TotalSegmentator is not installed (no 'TotalSegmentator' "
                            "command found; pip install TotalSegmentator and its weights, or "
                            "set SURGIPLAN_TOTALSEG_BIN)")
    weights = weights_dir(env)
    models = sorted(weights.glob("Dataset*")) if weights.is_dir() else []
    if not models:
        return Availability(False, f"no TotalSegmentator weights found at {weights} (install "
                            "them with totalseg_download_weights or set "
                            "TOTALSEG_WEIGHTS_PATH; SurgiPlan never downloads models)", exe,
                            weights)
    return Availability(True, f"TotalSegmentator at {exe}, {len(models)} model(s) in {weights}",
                        exe, weights)


def offline_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: the caller's, with every network route for downloads closed."""
    out = dict(os.environ) if env is None else dict(env)
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY",
                "all_proxy"):
        out[key] = BLOCKED_PROXY
    out["NO_PROXY"] = out["no_proxy"] = ""
    out["HF_HUB_OFFLINE"] = "1"
    out["TOTALSEG_WEIGHTS_PATH"] = str(weights_dir(env))
    return out


def task_for(modality: str) -> str:
    """TotalSegmentator's task for an image modality: ``total_mr`` for MR, else ``total``."""
    return "total_mr" if modality.upper() == "MR" else "total"


def default_device(env: dict[str, str] | None = None, *,
                   device_node: Path = Path("/dev/nvidia0")) -> str:
    """``"gpu"`` when an NVIDIA GPU is present (driver tool and device node), else ``"cpu"``."""
    path = (env if env is not None else os.environ).get("PATH")
    return "gpu" if shutil.which("nvidia-smi", path=path) and device_node.exists() else "cpu"


def command(exe: Path, image: Path, output: Path, *, task: str, device: str,
            fast: bool) -> list[str]:
    """The TotalSegmentator command line (multi-label output file)."""
    cmd = [str(exe), "-i", str(image), "-o", str(output), "--ml", "--task", task,
           "--device", device]
    return [*cmd, "--fast"] if fast else cmd


def _run(cmd: list[str], env: dict[str, str], log: Path, *, progress: ProgressCallback | None,
         cancel: CancelToken | None, timeout_s: float) -> None:
    import time

    start = time.monotonic()
    with open(log, "wb") as out:
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                 stdin=subprocess.DEVNULL)
        try:
            while child.poll() is None:
                elapsed = time.monotonic() - start
                report(progress, 0.1 + 0.8 * min(0.99, elapsed / max(timeout_s, 1.0)),
                       f"TotalSegmentator running ({elapsed:.0f} s)")
                check(cancel)
                if elapsed > timeout_s:
                    raise BadInputError(f"TotalSegmentator did not finish in {timeout_s:.0f} s",
                                        action="Use --fast, a GPU, or a longer timeout")
                time.sleep(POLL_S)
        finally:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
    if child.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise BadInputError(f"TotalSegmentator failed (exit {child.returncode}: {tail[0]})",
                            path=cmd[0], action="Check its installation and weights")


def import_result(
    path: Path, image: ImageVolume, *, label_names: str = "totalsegmentator-v2",
    warnings_out: list[str] | None = None,
) -> Segmentation:
    """A TotalSegmentator multi-label file as named structures on the image grid.

    Names come from the file's embedded label table when present, else from ``label_names``
    (the class table of the version that wrote it).
    """
    from surgiplan.io.totalsegmentator import embedded_label_names
    from surgiplan.io.totalsegmentator import label_names as table
    from surgiplan.io.twin_build import add_label_map

    labels, geometry = read_label_map(path)
    on_grid = label_map_onto_image(labels, geometry, image.geometry, path=path,
                                   warnings_out=warnings_out)
    names = embedded_label_names(path) or table(label_names)
    seg = Segmentation(geometry=image.geometry)
    noisy: list[str] = []  # TotalSegmentator lists every class; absent ones are not news
    add_label_map(seg, on_grid, names, source=path, warnings=noisy)
    if warnings_out is not None:
        warnings_out += [w for w in noisy if "no voxel" not in w]
    return seg


def run_totalsegmentator(
    image: ImageVolume,
    *,
    task: str | None = None,
    device: str | None = None,
    fast: bool = False,
    timeout_s: float = 3600.0,
    env: dict[str, str] | None = None,
    warnings_out: list[str] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Segmentation:
    """Segment ``image`` with the local TotalSegmentator in a child process (offline).

    ``task`` defaults to :func:`task_for` the image's modality, ``device`` to
    :func:`default_device`; each structure's description is :func:`method_text`. Raises
    ``BadInputError`` with :func:`availability`'s reason when it cannot run.
    """
    task = task or task_for(image.modality)
    device = device or default_device(env)
    state = availability(env)
    if not state.available or state.executable is None:
        raise BadInputError(state.reason, action="See the SurgiPlan AI plug-in documentation")
    keyword = "totalsegmentator-v2-mr" if task == "total_mr" else "totalsegmentator-v2"
    with tempfile.TemporaryDirectory(prefix="surgiplan-totalseg-") as folder:
        work = Path(folder)
        source = write_bytes_atomic(work / "image.nii.gz",
                                    nifti_bytes(image.array, image.geometry, gzipped=True))
        output = work / "segmentation.nii.gz"
        report(progress, 0.1, "TotalSegmentator starting")
        _run(command(state.executable, source, output, task=task, device=device, fast=fast),
             offline_environment(env), work / "log.txt", progress=progress, cancel=cancel,
             timeout_s=timeout_s)
        if not output.is_file():
            raise BadInputError("TotalSegmentator wrote no result file", path=state.executable,
                                action="Check its installation and weights")
        seg = import_result(output, image, label_names=keyword, warnings_out=warnings_out)
    for structure in seg.structures:  # the method, for the twin's provenance and the report
        structure.description = method_text(task, device, fast=fast)
    report(progress, 1.0, "TotalSegmentator result imported")
    return seg


def method_text(task: str, device: str, *, fast: bool = False) -> str:
    """How a structure was made, for provenance: ``TotalSegmentator (task total_mr, gpu)``."""
    return f"TotalSegmentator (task {task}, {device}{', fast' if fast else ''})"
