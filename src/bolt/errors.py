"""Errors users can act on, and the exit codes shared by ``bolt``, ``nvctl`` and ``nvsim``.

Every error carries what was wrong (a path, a name, a dotted key) and, where there is one,
what to do about it.  CLIs print ``error: <message>`` (+ ``hint: <hint>``) and exit with
``exit_code``; a traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


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


@contextlib.contextmanager
def fs_errors(path: Path | str) -> Iterator[None]:
    """File-system errors inside the block become user errors that name the path."""
    try:
        yield
    except PermissionError as err:
        raise PermissionDenied(
            f"permission denied: {err.filename or path}",
            hint="run as root, or use --root DIR with a directory you own",
        ) from err
    except OSError as err:
        raise BoltError(f"{err.filename or path}: {err.strerror or err}") from err
