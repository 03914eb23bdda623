"""Errors of the GPU-control layer (they extend nvcontrol's user-facing errors)."""

from __future__ import annotations

from basis.errors import ExitCode, InvalidInput
from nvcontrol.errors import NvctlError


class RolledBack(NvctlError):
    """A change was undone: the GPUs are back to their state before the transaction."""

    exit_code = ExitCode.ROLLED_BACK

    def __init__(self, cause: str, *, hint: str | None = None, report: object = None) -> None:
        super().__init__(f"rolled back: {cause}", hint=hint)
        self.cause = cause
        self.report = report


class Busy(InvalidInput):
    """Another live transaction already owns one of the GPUs; nothing was changed."""


class SnapshotError(InvalidInput):
    """A snapshot name, file or content is wrong; nothing was changed."""
