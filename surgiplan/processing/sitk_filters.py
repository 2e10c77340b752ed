"""Running a SimpleITK filter with SurgiPlan progress reporting and cancellation."""

from __future__ import annotations

from typing import Any

import SimpleITK as sitk

from surgiplan.errors import CancelledError
from surgiplan.progress import CancelToken, ProgressCallback, check, report


def execute_filter(
    filt: sitk.ImageFilter,
    *inputs: sitk.Image,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    span: tuple[float, float] = (0.0, 1.0),
    text: str = "",
) -> Any:
    """``filt.Execute(*inputs)``, mapping ITK progress into ``span`` of the overall fraction.

    Cancelling the token aborts the ITK filter at its next progress event and raises
    :class:`~surgiplan.errors.CancelledError`.
    """
    check(cancel)
    lo, hi = span

    def on_progress() -> None:
        report(progress, lo + (hi - lo) * filt.GetProgress(), text)
        if cancel is not None and cancel.cancelled:
            filt.Abort()

    if progress is not None or cancel is not None:
        filt.AddCommand(sitk.sitkProgressEvent, on_progress)
    try:
        # SimpleITK declares Execute on every concrete filter, not on the ImageFilter base
        result = filt.Execute(*inputs)  # type: ignore[attr-defined]
    except RuntimeError:
        if cancel is not None and cancel.cancelled:
            raise CancelledError("cancelled by the user") from None
        raise
    finally:
        filt.RemoveAllCommands()
    report(progress, hi, text)
    return result
