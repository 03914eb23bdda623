"""Mounting overlayfs with the new mount API (``fsopen``/``fsconfig``/``fsmount``/
``move_mount``), which takes each lower directory as its own ``lowerdir+`` parameter.

Why: ``mount(2)`` takes all options as one string of at most a page (4096 bytes), so a
stack of layers named by 64-hex-digit directories stops fitting at about 62 layers
(measured: 62 mount, 63 fail with a misleading ENOENT, since the kernel cuts the string).
``lowerdir+`` (Linux 6.8) has no such limit; overlayfs itself stacks up to 500 lower
directories.  :func:`mount_overlay` returns False where the kernel or C library lacks the
API, so the caller can fall back to ``mount(2)``.
"""

from __future__ import annotations

import ctypes
import errno
import os
from functools import cache

FSOPEN_CLOEXEC = 1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 1
MOVE_MOUNT_F_EMPTY_PATH = 4
AT_FDCWD = -100
MAX_LOWER = 500  # overlayfs' OVL_MAX_STACK
# the same numbers on every architecture (the new system calls are numbered in common)
_SYSCALLS = {"move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432}


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _call(name: str, *args: object) -> int:
    libc = _libc()
    fn = getattr(libc, name, None)
    ret = fn(*args) if fn is not None else libc.syscall(_SYSCALLS[name], *args)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")
    return int(ret)


def mount_overlay(
    lowers_top_first: list[str], upper: str, work: str, target: str, *, volatile: bool
) -> bool:
    """Mount overlayfs at ``target``; False if this kernel has no ``lowerdir+`` (nothing
    was mounted then).  Raises OSError for any other failure."""
    try:
        fs = _call("fsopen", b"overlay", FSOPEN_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOSYS:  # before Linux 5.2
            return False
        raise
    try:
        for lower in lowers_top_first:
            try:
                _set(fs, "lowerdir+", lower)
            except OSError as exc:
                if exc.errno == errno.EINVAL and lower == lowers_top_first[0]:
                    return False  # before Linux 6.8: the parameter is unknown
                raise
        _set(fs, "upperdir", upper)
        _set(fs, "workdir", work)
        if volatile:
            try:
                _call("fsconfig", fs, FSCONFIG_SET_FLAG, b"volatile", None, 0)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # kernels before 5.10: an ordinary mount
                    raise
        _call("fsconfig", fs, FSCONFIG_CMD_CREATE, None, None, 0)
        mnt = _call("fsmount", fs, FSMOUNT_CLOEXEC, 0)
        try:
            _call("move_mount", mnt, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH)
        finally:
            os.close(mnt)
    finally:
        os.close(fs)
    return True


def _set(fs: int, key: str, value: str) -> None:
    _call("fsconfig", fs, FSCONFIG_SET_STRING, key.encode(), value.encode(), 0)
