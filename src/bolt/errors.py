"""Errors users can act on, and the exit codes shared by ``bolt``, ``nvctl`` and ``nvsim``.

Every error carries what was wrong (a path, a name, a dotted key) and, where there is one,
what to do about it.  CLIs print ``error: <message>`` (+ ``hint: <hint>``) and exit with
``exit_code``; a traceback is shown only with ``--debug``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    INVALID_INPUT = 2  # rejected before anything changed
    UNSUPPORTED = 3  # not supported by this hardware or driver, or no driver
    PERMISSION = 4  # permission denied
    ROLLED_BACK = 5  # change rolled back


class BoltError(Exception):
    """Base class of every error Bolt reports to a user."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InvalidInput(BoltError):
    exit_code = ExitCode.INVALID_INPUT


class NotFound(InvalidInput):
    """A named thing (image, container, volume) does not exist."""


class Unsupported(BoltError):
    exit_code = ExitCode.UNSUPPORTED


class PermissionDenied(BoltError):
    exit_code = ExitCode.PERMISSION


def render(err: BoltError) -> str:
    """The text a CLI prints for an error (without traceback)."""
    text = f"error: {err.message}"
    if err.hint:
        text += f"\nhint: {err.hint}"
    return text
