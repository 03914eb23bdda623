"""Thin wrappers over the Linux system calls Bolt needs and Python 3.11 lacks.

prctl(PR_SET_CHILD_SUBREAPER), mount/umount2, unshare/setns, inotify, and process
identity (pid plus start time, so a recycled pid is never mistaken for the process we
started).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import sys
from functools import cache
from typing import TYPE_CHECKING, Any

from basis import process

if TYPE_CHECKING:
    import socket
    from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
PR_SET_NAME = 15
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MNT_DETACH = 2
IN_CLOSE_WRITE = 0x8
IN_MOVED_TO = 0x80
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


_SYS_OPENAT2 = 437  # the same number on every architecture (a syscall added after 5.1)
_RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


@cache
def _syscall() -> Any:
    """libc's ``syscall``, returning a long (a descriptor or -1)."""
    fn = _libc().syscall
    fn.restype = ctypes.c_long
    return fn


def stat_in_root(root_dir: str, path: str) -> os.stat_result | None:
    """``stat`` of ``path`` as a process whose ``/`` is ``root_dir`` sees it: every link,
    absolute ones too, is resolved inside ``root_dir`` (openat2's RESOLVE_IN_ROOT), so
    ``/proc/PID/root`` gives a container's own view, its mounts included.  None when
    nothing is there; OSError for anything else (ENOSYS before Linux 5.6)."""
    root_fd = os.open(root_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        how = _OpenHow(os.O_PATH | os.O_CLOEXEC, 0, _RESOLVE_IN_ROOT)
        fd = _syscall()(
            ctypes.c_long(_SYS_OPENAT2),
            ctypes.c_int(root_fd),
            path.encode(),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd < 0:
            err = ctypes.get_errno()
            if err in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return None
            raise OSError(err, f"openat2 {path}: {os.strerror(err)}")
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)


def set_child_subreaper() -> None:
    _check(_libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")


# What every container monitor calls itself (``/proc/PID/comm``), so that no other process
# (a caller still preparing a container, say) is ever taken for one.
MONITOR_NAME = "bolt-monitor"


def set_process_name(name: str) -> None:
    """This process's ``comm`` (at most 15 bytes), as ``ps`` and ``/proc`` show it."""
    _check(_libc().prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0), "prctl(PR_SET_NAME)")


def is_monitor(pid: int | None) -> bool:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() == MONITOR_NAME
    except (OSError, ValueError):
        return False


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    ret = _libc().mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        flags,
        data.encode() if data else None,
    )
    _check(ret, f"mount {target}")


def umount(target: str, detach: bool = False) -> bool:
    """Unmount ``target``; False if it was not mounted."""
    ret = _libc().umount2(target.encode(), MNT_DETACH if detach else 0)
    if ret != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return False
        raise OSError(err, f"umount {target}: {os.strerror(err)}")
    return True


def add_named_netns(directory: str, name: str) -> str:
    """``ip netns add``, without a process: a new network namespace kept alive by a bind
    mount at ``directory/name``; its path.  As iproute2 does, ``directory`` is made a
    shared mount first, so the namespace shows in mount namespaces made later."""
    import threading

    os.makedirs(directory, mode=0o755, exist_ok=True)
    try:
        mount("", directory, "", MS_SHARED | MS_REC)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: not a mount point yet
            raise
        mount(directory, directory, "", MS_BIND | MS_REC)
        mount("", directory, "", MS_SHARED | MS_REC)
    path = os.path.join(directory, name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
    failed: list[OSError] = []

    def enter_and_pin() -> None:  # a network namespace is per thread: only this one moves
        try:
            _check(_libc().unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, "", MS_BIND)
        except OSError as exc:
            failed.append(exc)

    worker = threading.Thread(target=enter_and_pin, name="bolt-netns")
    worker.start()
    worker.join()
    if failed:
        os.unlink(path)
        raise failed[0]
    return path


def delete_named_netns(path: str) -> None:
    """``ip netns delete``: unpin the namespace (it ends with its last user) and remove
    the file; nothing if it is gone."""
    umount(path, detach=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def private_mount_namespace_without_cgroup2() -> None:
    """Move this process into a mount namespace that follows the host's (slave) but has
    no cgroup2 hierarchy mounted at /sys/fs/cgroup/unified.

    crun 1.8 refuses hosts with hybrid cgroups; hiding the v2 mount makes it use v1 only.
    Call only in a single-threaded process (a fresh child before exec).
    """
    _check(_libc().unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    mount("none", "/", "", MS_REC | MS_SLAVE)
    umount("/sys/fs/cgroup/unified", detach=True)


def leave_mount_namespace_without_cgroup2() -> int:
    """``private_mount_namespace_without_cgroup2`` for this process itself; returns a
    descriptor of the namespace it left, for ``return_to_mount_namespace``.

    Cheaper than doing it in a child before exec: no Python code runs between fork and
    exec, so the runtime can be started with posix_spawn (vfork).
    """
    host = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        private_mount_namespace_without_cgroup2()
    except BaseException:
        os.close(host)
        raise
    return host


def return_to_mount_namespace(fd: int) -> None:
    """Re-enter the mount namespace ``fd`` names (and close it); single-threaded only."""
    try:
        _check(_libc().setns(fd, CLONE_NEWNS), "setns(CLONE_NEWNS)")
    finally:
        os.close(fd)


def recv_fds(sock: socket.socket, size: int, flags: int = 0) -> tuple[bytes, list[int]]:
    """Up to ``size`` bytes and at most one descriptor, close-on-exec: none may leak into
    the runtime a monitor spawns (``socket.recv_fds`` of Python 3.11 drops ``flags``, and
    received descriptors are inheritable without MSG_CMSG_CLOEXEC)."""
    import array
    import socket

    fds = array.array("i")
    msg, ancdata, _, _ = sock.recvmsg(
        size, socket.CMSG_LEN(fds.itemsize), flags | socket.MSG_CMSG_CLOEXEC
    )
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds)


def watch_directory(path: str) -> int:
    """An inotify descriptor (non-blocking) that reports files in ``path`` written and
    closed, or renamed into it; read them with ``written_names``."""
    libc = _libc()
    fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        _check(-1, "inotify_init1")
    if libc.inotify_add_watch(fd, path.encode(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0:
        os.close(fd)
        _check(-1, f"inotify_add_watch {path}")
    return int(fd)


def written_names(fd: int) -> list[str]:
    """The file names ``watch_directory``'s descriptor reported since the last call."""
    names: list[str] = []
    while True:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return names
        at = 0
        while at + 16 <= len(data):  # struct inotify_event: wd, mask, cookie, len, name
            length = int.from_bytes(data[at + 12 : at + 16], sys.byteorder)
            names.append(data[at + 16 : at + 16 + length].rstrip(b"\0").decode())
            at += 16 + length


# Process identity lives in the neutral base; these names stay for the runtime's callers.
proc_start_time = process.start_time
proc_state = process.state
process_alive = process.alive


class _StatFs(ctypes.Structure):
    # struct statfs on 64-bit Linux: f_type first, the rest is not needed here
    _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 112)]


TMPFS_MAGIC = 0x01021994


def fs_magic(path: str) -> int | None:
    """The file system type (``statfs``'s f_type) that ``path`` is on; None if it is not
    there."""
    buf = _StatFs()
    if _libc().statfs(path.encode(), ctypes.byref(buf)) != 0:
        return None
    return buf.f_type & 0xFFFFFFFF


def unmount_below(path: Path | str) -> None:
    """Detach every mount at or below ``path``, deepest first (``umount -R`` only starts
    from a path that is itself a mount point; this also finds mounts inside a plain
    directory, such as those a killed tool left in its scratch tree)."""
    try:
        with open("/proc/self/mountinfo") as f:
            text = f.read()
    except OSError:
        return
    top = os.path.abspath(path)
    points = {
        fields[4].replace("\\040", " ")
        for fields in (line.split() for line in text.splitlines())
        if len(fields) > 4 and (fields[4] == top or fields[4].startswith(top + "/"))
    }
    for point in sorted(points, key=len, reverse=True):
        with contextlib.suppress(OSError):
            while umount(point, detach=True):  # stacked mounts come off one by one
                pass


def is_mountpoint(path: str) -> bool:
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                if line.split()[4] == path:
                    return True
    except OSError:
        return False
    return False
