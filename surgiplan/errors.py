"""The project's exception types.

``BadInputError`` is the one exception raised for input a user gave us that cannot make a
correct result (broken DICOM, wrong plan files, mismatched label maps...). Its message is one
human line naming the file, what is wrong and what to do. The CLI maps it to exit code 2, the
GUI to a dialog. Anything else escaping is an internal error (exit code 1, log file).
"""

from __future__ import annotations

from pathlib import Path


class SurgiPlanError(Exception):
    """Base class of every exception SurgiPlan raises on purpose."""


class BadInputError(SurgiPlanError):
    """Input that cannot produce a correct result.

    ``str(err)`` is one line: ``"<path>: <problem>. <what to do>"`` (path omitted when None).
    """

    def __init__(self, problem: str, *, path: str | Path | None = None, action: str = "") -> None:
        self.path = None if path is None else str(path)
        self.problem = " ".join(problem.split())
        self.action = " ".join(action.split())
        super().__init__(self._line())

    def _line(self) -> str:
        text = self.problem.rstrip(".")
        if self.path:
            text = f"{self.path}: {text}"
        text += "."
        if self.action:
            text += f" {self.action.rstrip('.')}."
        return text


class CancelledError(SurgiPlanError):
    """A long operation was cancelled by the user through its cancel token."""
