"""Bolt's user errors: the neutral vocabulary of :mod:`basis.errors` under Bolt's names.

``BoltError`` is :class:`basis.errors.UserError`; everything else is re-exported so that
Bolt modules keep importing from one place.
"""

from __future__ import annotations

from basis.errors import (
    CannotInvoke,
    CommandNotFound,
    ExecError,
    ExitCode,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unsupported,
    UserError,
    fs_errors,
    render,
)

BoltError = UserError

__all__ = [
    "BoltError",
    "CannotInvoke",
    "CommandNotFound",
    "ExecError",
    "ExitCode",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "Unsupported",
    "UserError",
    "fs_errors",
    "render",
]
