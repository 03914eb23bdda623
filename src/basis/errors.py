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
    GPU_LOST = 6  # a GPU fell off the bus; the healthy ones were still shown or handled
    # A container's command (``bolt run``, ``surge run``/``exec``), as a shell and docker say:
    CANNOT_INVOKE = 126  # it exists but cannot be executed (permissions, a directory)
    COMMAND_NOT_FOUND = 127  # no such file, or not found in the container's $PATH


class UserError(Exception):
    """Base class of every error a user is shown (message, optional hint, exit code)."""

    exit_code: int = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InvalidInput(UserError):
    exit_code = ExitCode.INVALID_INPUT


class NotFound(InvalidInput):
    """A named thing (image, container, volume, GPU) does not exist."""


class Unsupported(UserError):
    exit_code = ExitCode.UNSUPPORTED


class PermissionDenied(UserError):
    exit_code = ExitCode.PERMISSION


class CannotInvoke(UserError):
    """The runtime found a container's command but could not execute it."""

    exit_code = ExitCode.CANNOT_INVOKE


class CommandNotFound(UserError):
    """The runtime found no container command by that name or path."""

    exit_code = ExitCode.COMMAND_NOT_FOUND


class ExecError(UserError):
    """A command run inside a container (or a service) exited non-zero.

    ``exit_code`` here is the command's own status, which the ``exec`` front ends pass
    through; ``output`` is what it printed (stdout and stderr, interleaved as they came).
    """

    def __init__(self, command: str, returncode: int, output: str = "") -> None:
        super().__init__(f"{command!r} exited with code {returncode}")
        self.command = command
        self.returncode = returncode
        self.output = output
        # the command's own code passes through to the CLI's exit status
        self.exit_code = returncode if 0 < returncode < 256 else int(ExitCode.FAILURE)


def from_exit_code(code: int, message: str, hint: str | None = None) -> UserError:
    """The error of the class that exits ``code``: what a user error becomes once it has
    crossed a process boundary as message, hint and code (a monitor's ERROR frame)."""
    classes = (InvalidInput, Unsupported, PermissionDenied, CannotInvoke, CommandNotFound)
    for cls in classes:
        if cls.exit_code == code:
            return cls(message, hint=hint)
    err = UserError(message, hint=hint)
    err.exit_code = code
    return err


def render(err: UserError) -> str:
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
            hint="run as root, or use a state directory you own",
        ) from err
    except OSError as err:
        raise UserError(f"{err.filename or path}: {err.strerror or err}") from err
